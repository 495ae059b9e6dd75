"""Idempotency-Key at the edge (services/gateway/idempotency.py), on real PostgreSQL.

The rules are the middleware's, whatever the route: a small authenticated route added to the
real app counts how often it really ran, can be held in flight, and answers 201 with a
`Location`, as a creating route does. The same rules end to end, with real services, a second
gateway process and a connection dropped after the commit, are in tests/e2e/test_idempotency.py.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi import FastAPI, Response
from pydantic import BaseModel
from sqlalchemy import Connection, func, inspect, select, update

from services.gateway.app import create_app
from services.gateway.auth import CurrentCaller
from services.gateway.idempotency import (
    ANONYMOUS,
    PUBLIC_PATHS,
    IdempotencyStore,
    fingerprint,
    parse_key,
)
from services.gateway.models import MIGRATIONS_DIR, Base, IdempotencyKey
from services.gateway.settings import GatewaySettings
from services.kit.db import alembic_config, create_engine, upgrade
from services.kit.identity_client import connect_identity
from services.kit.testing import DatabaseServer, scaled
from tests.gateway.conftest import RefusingServer, SigningKeys
from tests.gateway.test_problems import assert_problem

THINGS = "/v1/test-things"
PUBLIC = "/v1/test-public-registrations"


class ThingBody(BaseModel):
    name: str
    size: int = 1


@dataclass
class Things:
    """What the test route did: every run, and a gate a test closes to hold runs in flight."""

    runs: list[tuple[str, str]] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    status: int = 201

    def __post_init__(self) -> None:
        self.gate.set()


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now


def add_things_route(app: FastAPI, things: Things) -> None:
    async def create_thing(
        body: ThingBody, caller: CurrentCaller, response: Response
    ) -> dict[str, Any]:
        things.runs.append((caller.principal.subject, body.name))
        await things.gate.wait()
        thing_id = str(uuid.uuid4())
        response.status_code = things.status
        response.headers["Location"] = f"{THINGS}/{thing_id}"
        return {"id": thing_id, "name": body.name}

    async def register_publicly(body: ThingBody, response: Response) -> dict[str, Any]:
        things.runs.append((ANONYMOUS, body.name))
        response.status_code = 201
        return {"id": str(uuid.uuid4()), "name": body.name}

    app.add_api_route(THINGS, create_thing, methods=["POST"])
    app.add_api_route(PUBLIC, register_publicly, methods=["POST"])
    if not any(p.pattern == f"^{PUBLIC}$" for p in PUBLIC_PATHS):  # open to strangers, as those
        PUBLIC_PATHS.append(re.compile(f"^{PUBLIC}$"))


@pytest.fixture(scope="module")
async def gateway_db(pg: DatabaseServer) -> str:
    url = await pg.migrated_database(MIGRATIONS_DIR, "gateway")
    return url


@pytest.fixture
async def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(gateway_db: str, clock: Clock) -> AsyncIterator[IdempotencyStore]:
    engine = create_engine(gateway_db, pool_size=4)
    yield IdempotencyStore(
        engine, ttl=timedelta(hours=24), lease=timedelta(seconds=60), clock=clock
    )
    await engine.dispose()


GatewayFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def gateway(refusing_identity: RefusingServer) -> GatewayFactory:
    @asynccontextmanager
    async def build(
        store: IdempotencyStore | None, things: Things
    ) -> AsyncIterator[httpx.AsyncClient]:
        settings = GatewaySettings(identity_addr=refusing_identity.address, grpc_default_timeout=2)
        link = connect_identity(settings)
        app = create_app(settings, identity=link, idempotency=store)
        add_things_route(app, things)
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield client
        finally:
            await link.close()

    return build


@pytest.fixture
async def http(
    gateway: GatewayFactory, store: IdempotencyStore
) -> AsyncIterator[tuple[httpx.AsyncClient, Things]]:
    things = Things()
    async with gateway(store, things) as client:
        yield client, things


def auth(keys: SigningKeys, subject: str, key: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {keys.token(subject=subject)}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


async def test_a_retry_gets_the_first_answer_again_and_nothing_runs_twice(
    http: tuple[httpx.AsyncClient, Things], keys: SigningKeys
) -> None:
    client, things = http
    user, key = str(uuid.uuid4()), str(uuid.uuid4())
    first = await client.post(
        THINGS, json={"name": "Groupe A", "size": 2}, headers=auth(keys, user, key)
    )
    # The same request rebuilt by the client: another key order, other spacing.
    again = await client.post(
        THINGS,
        content=b'{ "size": 2,\n  "name": "Groupe A" }',
        headers={**auth(keys, user, key), "content-type": "application/json"},
    )
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert (
        again.headers["location"] == first.headers["location"] == f"{THINGS}/{first.json()['id']}"
    )
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert again.headers["x-request-id"] != first.headers["x-request-id"]
    assert things.runs == [(user, "Groupe A")]
    # Without a key, every request runs.
    plain = await client.post(
        THINGS, json={"name": "Groupe A", "size": 2}, headers=auth(keys, user)
    )
    assert plain.status_code == 201 and plain.json()["id"] != first.json()["id"]
    assert len(things.runs) == 2


async def test_the_same_key_with_another_request_is_422_and_runs_nothing(
    http: tuple[httpx.AsyncClient, Things], keys: SigningKeys
) -> None:
    client, things = http
    user, key = str(uuid.uuid4()), str(uuid.uuid4())
    first = await client.post(THINGS, json={"name": "Groupe A"}, headers=auth(keys, user, key))
    assert first.status_code == 201
    other_body = await client.post(THINGS, json={"name": "Groupe B"}, headers=auth(keys, user, key))
    problem = assert_problem(other_body, 422)
    assert problem["type"].endswith("/idempotency_key_reused")
    other_query = await client.post(
        THINGS, params={"x": "1"}, json={"name": "Groupe A"}, headers=auth(keys, user, key)
    )
    assert_problem(other_query, 422)
    assert things.runs == [(user, "Groupe A")]


async def test_a_second_request_while_the_first_runs_is_409_then_gets_the_answer(
    http: tuple[httpx.AsyncClient, Things], keys: SigningKeys
) -> None:
    client, things = http
    user, key = str(uuid.uuid4()), str(uuid.uuid4())
    things.gate.clear()
    body = {"name": "Lent"}
    first = asyncio.create_task(client.post(THINGS, json=body, headers=auth(keys, user, key)))
    while not things.runs:
        await asyncio.sleep(0.01)
    second = await client.post(THINGS, json=body, headers=auth(keys, user, key))
    problem = assert_problem(second, 409)
    assert problem["type"].endswith("/idempotency_key_in_flight")
    assert 1 <= int(second.headers["retry-after"]) <= 5
    things.gate.set()
    answered = await first
    assert answered.status_code == 201
    third = await client.post(THINGS, json=body, headers=auth(keys, user, key))
    assert third.json() == answered.json() and third.headers["idempotent-replayed"] == "true"
    assert len(things.runs) == 1


async def test_two_requests_racing_with_one_key_run_once(
    http: tuple[httpx.AsyncClient, Things], keys: SigningKeys
) -> None:
    """Eight at once: the database's upsert lets one win; the others are 409 (or, if they come
    after it finished, its answer)."""
    client, things = http
    user, key = str(uuid.uuid4()), str(uuid.uuid4())
    answers = await asyncio.gather(
        *(
            client.post(THINGS, json={"name": "Course"}, headers=auth(keys, user, key))
            for _ in range(8)
        )
    )
    assert len(things.runs) == 1
    created = [a for a in answers if a.status_code == 201]
    assert created and len({a.json()["id"] for a in created}) == 1
    assert all(a.status_code in (201, 409) for a in answers)


async def test_keys_are_each_callers_own(
    http: tuple[httpx.AsyncClient, Things], keys: SigningKeys
) -> None:
    client, things = http
    key = str(uuid.uuid4())
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    for_alice = await client.post(THINGS, json={"name": "Même"}, headers=auth(keys, alice, key))
    for_bob = await client.post(THINGS, json={"name": "Même"}, headers=auth(keys, bob, key))
    assert for_alice.status_code == for_bob.status_code == 201
    assert for_alice.json()["id"] != for_bob.json()["id"]
    assert "idempotent-replayed" not in for_bob.headers
    # Bob's other request under Alice's key is no mismatch of Alice's: it is his own first use.
    bob_other = await client.post(
        THINGS, json={"name": "Autre"}, headers=auth(keys, bob, "b-" + key)
    )
    assert bob_other.status_code == 201
    assert things.runs == [(alice, "Même"), (bob, "Même"), (bob, "Autre")]


async def test_keys_expire_and_are_purged(
    http: tuple[httpx.AsyncClient, Things],
    keys: SigningKeys,
    store: IdempotencyStore,
    clock: Clock,
) -> None:
    client, things = http
    user, key = str(uuid.uuid4()), str(uuid.uuid4())
    first = await client.post(THINGS, json={"name": "Vieux"}, headers=auth(keys, user, key))
    clock.now += timedelta(hours=23, minutes=59)
    kept = await client.post(THINGS, json={"name": "Vieux"}, headers=auth(keys, user, key))
    assert kept.json() == first.json(), "a key lives 24 hours at least"
    clock.now += timedelta(minutes=2)
    # Expired: the key is free again, even for another request, and this one runs.
    fresh = await client.post(THINGS, json={"name": "Neuf"}, headers=auth(keys, user, key))
    assert fresh.status_code == 201 and "idempotent-replayed" not in fresh.headers
    assert [name for _, name in things.runs] == ["Vieux", "Neuf"]

    async def count() -> int:
        async with store.engine.connect() as connection:
            return int(
                await connection.scalar(
                    select(func.count())
                    .select_from(IdempotencyKey)
                    .where(IdempotencyKey.key == key)
                )
                or 0
            )

    assert await count() == 1
    clock.now += timedelta(hours=25)
    assert await store.purge(batch=1) >= 1
    assert await count() == 0


async def test_answers_worth_retrying_are_not_kept(
    http: tuple[httpx.AsyncClient, Things], keys: SigningKeys
) -> None:
    client, things = http
    user, key = str(uuid.uuid4()), str(uuid.uuid4())
    things.status = 503
    failed = await client.post(THINGS, json={"name": "Panne"}, headers=auth(keys, user, key))
    assert failed.status_code == 503
    things.status = 201
    retried = await client.post(THINGS, json={"name": "Panne"}, headers=auth(keys, user, key))
    assert retried.status_code == 201 and "idempotent-replayed" not in retried.headers
    assert len(things.runs) == 2


async def test_a_claim_abandoned_past_its_lease_can_be_taken_again(
    http: tuple[httpx.AsyncClient, Things],
    keys: SigningKeys,
    store: IdempotencyStore,
    clock: Clock,
) -> None:
    """A replica that died mid-request leaves a claim: 409 while its lease runs, then free."""
    client, things = http
    user, key = str(uuid.uuid4()), str(uuid.uuid4())
    body = {"name": "Orphelin"}
    request = httpx.Request("POST", f"http://test{THINGS}", json=body)
    claim = await store.claim(
        principal=user,
        key=key,
        fingerprint=fingerprint(
            "POST", THINGS, b"", request.headers["content-type"], request.read()
        ),
        method="POST",
        path=THINGS,
    )
    assert type(claim).__name__ == "Claimed"
    assert (await client.post(THINGS, json=body, headers=auth(keys, user, key))).status_code == 409
    clock.now += timedelta(seconds=61)
    taken = await client.post(THINGS, json=body, headers=auth(keys, user, key))
    assert taken.status_code == 201
    assert len(things.runs) == 1


async def test_two_gateways_share_the_keys(
    gateway: GatewayFactory, gateway_db: str, keys: SigningKeys
) -> None:
    """Two app instances, each with its own engine on the one database (as two replicas)."""
    engines = [create_engine(gateway_db, pool_size=2) for _ in range(2)]
    things = Things()
    try:
        async with (
            gateway(IdempotencyStore(engines[0]), things) as one,
            gateway(IdempotencyStore(engines[1]), things) as two,
        ):
            user, key = str(uuid.uuid4()), str(uuid.uuid4())
            first = await one.post(THINGS, json={"name": "Partagé"}, headers=auth(keys, user, key))
            again = await two.post(THINGS, json={"name": "Partagé"}, headers=auth(keys, user, key))
            other = await two.post(THINGS, json={"name": "Autre"}, headers=auth(keys, user, key))
            assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
            assert_problem(other, 422)
            assert len(things.runs) == 1
    finally:
        for engine in engines:
            await engine.dispose()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("8e03978e-40d5-43e8-bc93-6894a57f9324", "8e03978e-40d5-43e8-bc93-6894a57f9324"),
        ('"8e03978e-40d5-43e8-bc93-6894a57f9324"', "8e03978e-40d5-43e8-bc93-6894a57f9324"),
        ("01HZX3J8Q6W7", "01HZX3J8Q6W7"),
        ("", None),
        (" x", None),
        ("has space", None),
        ('"unbalanced', None),
        ('"a"b"', None),
        ("x" * 256, None),
        ("é", None),
    ],
)
def test_keys_are_tokens_or_quoted_tokens(value: str, expected: str | None) -> None:
    assert parse_key(value) == expected


async def test_a_malformed_key_is_400_naming_the_header(
    http: tuple[httpx.AsyncClient, Things], keys: SigningKeys
) -> None:
    client, things = http
    user = str(uuid.uuid4())
    for bad in ("has space", "x" * 300):
        refused = await client.post(THINGS, json={"name": "X"}, headers=auth(keys, user, bad))
        problem = assert_problem(refused, 400)
        assert [(e["field"], e["code"]) for e in problem["errors"]] == [
            ("Idempotency-Key", "string_pattern_mismatch")
        ]
    twice = await client.post(
        THINGS,
        json={"name": "X"},
        headers=[*auth(keys, user).items(), ("Idempotency-Key", "a1"), ("Idempotency-Key", "a2")],
    )
    assert_problem(twice, 400)
    assert things.runs == []


async def test_a_refused_token_is_the_routes_401_and_keeps_nothing(
    http: tuple[httpx.AsyncClient, Things], store: IdempotencyStore
) -> None:
    client, things = http
    key = str(uuid.uuid4())
    for _ in range(2):
        refused = await client.post(
            THINGS,
            json={"name": "X"},
            headers={"Authorization": "Bearer not-a-token", "Idempotency-Key": key},
        )
        assert_problem(refused, 401)
    anonymous = await client.post(THINGS, json={"name": "X"}, headers={"Idempotency-Key": key})
    assert_problem(anonymous, 401)
    async with store.engine.connect() as connection:
        kept = await connection.scalar(
            select(func.count()).select_from(IdempotencyKey).where(IdempotencyKey.key == key)
        )
    assert kept == 0 and things.runs == []
    assert ANONYMOUS == "anonymous"


async def test_without_a_database_a_keyed_request_is_refused_not_run(
    gateway: GatewayFactory, keys: SigningKeys
) -> None:
    things = Things()
    async with gateway(None, things) as client:
        user = str(uuid.uuid4())
        keyed = await client.post(THINGS, json={"name": "X"}, headers=auth(keys, user, "k-1"))
        assert_problem(keyed, 503)
        plain = await client.post(THINGS, json={"name": "X"}, headers=auth(keys, user))
        assert plain.status_code == 201
    assert len(things.runs) == 1


async def test_credential_routes_take_no_key(
    http: tuple[httpx.AsyncClient, Things],
    store: IdempotencyStore,
    refusing_identity: RefusingServer,
) -> None:
    """Their bodies carry passwords and tokens: nothing of them goes to the store."""
    client, _ = http
    key = str(uuid.uuid4())
    for _ in range(2):
        response = await client.post(
            "/v1/password/forgot", json={"login": "jean"}, headers={"Idempotency-Key": key}
        )
        assert response.status_code == 202
        assert "idempotent-replayed" not in response.headers
    async with store.engine.connect() as connection:
        assert (
            await connection.scalar(
                select(func.count()).select_from(IdempotencyKey).where(IdempotencyKey.key == key)
            )
            == 0
        )
    assert len(refusing_identity.servicer.metadata) == 2


def test_every_writing_post_declares_the_header_once_as_a_shared_parameter() -> None:
    document = create_app(GatewaySettings(identity_addr="127.0.0.1:9")).openapi()
    parameter = document["components"]["parameters"]["IdempotencyKey"]
    assert parameter["in"] == "header" and parameter["name"] == "Idempotency-Key"
    assert parameter["required"] is False
    keyed, free = [], []
    for path, item in document["paths"].items():
        operation = item.get("post")
        if operation is None:
            continue
        refs = [
            p
            for p in operation.get("parameters", [])
            if p.get("$ref", "").endswith("/IdempotencyKey")
        ]
        inline = [p for p in operation.get("parameters", []) if p.get("name") == "Idempotency-Key"]
        assert not inline, f"{path} declares its own Idempotency-Key"
        if refs:
            assert len(refs) == 1
            assert {"409", "422"} <= set(operation["responses"]), path
            keyed.append(path)
        else:
            free.append(path)
    assert sorted(free) == sorted(
        p
        for p in document["paths"]
        if p.startswith(("/v1/auth/", "/v1/password/", "/v1/registrations"))
        and "post" in document["paths"][p]
    )
    assert "/v1/providers/{provider_id}/groups" in keyed
    assert "/v1/associations/{association_id}/trainings/{training_id}/registrations" in keyed
    assert len(keyed) >= 60


async def test_the_header_is_allowed_cross_origin(http: tuple[httpx.AsyncClient, Things]) -> None:
    client, _ = http
    preflight = await client.options(
        THINGS,
        headers={
            "Origin": "http://localhost:3000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "idempotency-key",
        },
    )
    assert preflight.status_code == 200
    assert "idempotency-key" in preflight.headers["access-control-allow-headers"].lower()


async def test_lost_claims_do_not_overwrite_a_new_owner(
    store: IdempotencyStore, clock: Clock
) -> None:
    """A replica whose lease ran out completes nothing: the key went to another claim."""
    from services.gateway.idempotency import Answer, Claimed

    user, key = str(uuid.uuid4()), str(uuid.uuid4())
    first = await store.claim(
        principal=user, key=key, fingerprint="f" * 64, method="POST", path="/x"
    )
    assert isinstance(first, Claimed)
    clock.now += timedelta(minutes=5)
    second = await store.claim(
        principal=user, key=key, fingerprint="f" * 64, method="POST", path="/x"
    )
    assert isinstance(second, Claimed)
    late = await store.complete(
        principal=user, key=key, lease=first.lease, answer=Answer(201, [], b"{}")
    )
    assert late is False
    assert await store.complete(
        principal=user, key=key, lease=second.lease, answer=Answer(201, [], b"{}")
    )
    async with store.engine.begin() as connection:
        await connection.execute(
            update(IdempotencyKey).where(IdempotencyKey.key == key).values(expires_at=clock.now)
        )


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_the_migrations_build_the_models_schema_and_go_down_and_up(
    pg: DatabaseServer,
) -> None:
    url = await pg.new_database("gateway_schema")
    await upgrade(MIGRATIONS_DIR, url)
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
        await asyncio.to_thread(command.downgrade, alembic_config(MIGRATIONS_DIR, url), "base")
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        assert set(tables) <= {"alembic_version"}
        await upgrade(MIGRATIONS_DIR, url)
    finally:
        await engine.dispose()


async def test_the_gateway_will_not_serve_without_its_database() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.gateway",
        env={**env, "HTTP_PORT": "0"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=scaled(30))
    assert process.returncode == 2
    assert "DATABASE_URL: required" in stderr.decode()


async def test_public_creating_routes_take_keys_too(
    http: tuple[httpx.AsyncClient, Things], keys: SigningKeys
) -> None:
    """A civilian registering for a training has no account: their keys are the anonymous
    caller's, still replayed, never mixed with a signed-in user's."""
    client, things = http
    key = str(uuid.uuid4())
    first = await client.post(PUBLIC, json={"name": "Civil"}, headers={"Idempotency-Key": key})
    again = await client.post(PUBLIC, json={"name": "Civil"}, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    signed_in = await client.post(
        PUBLIC, json={"name": "Civil"}, headers=auth(keys, str(uuid.uuid4()), key)
    )
    assert signed_in.status_code == 201 and "idempotent-replayed" not in signed_in.headers
    assert len(things.runs) == 2


async def test_without_a_token_a_protected_route_is_401_even_with_a_strangers_key(
    http: tuple[httpx.AsyncClient, Things],
) -> None:
    """ "anonymous" keys are the public routes' only: a stranger's key reused without a token on
    a route that needs one is the route's 401, not a shared key's 422 (schemathesis ST203)."""
    client, things = http
    key = str(uuid.uuid4())
    first = await client.post(PUBLIC, json={"name": "A"}, headers={"Idempotency-Key": key})
    assert first.status_code == 201
    protected = await client.post(THINGS, json={"name": "B"}, headers={"Idempotency-Key": key})
    assert_problem(protected, 401)
    assert things.runs[-1] == (ANONYMOUS, "A")
