"""Two gateway processes, one identity: the brakes are one, and never turn on the known device.

Issue #26 replayed through HTTP: failed sign-ins for a username spread over two gateway replicas
and many addresses lock that username for unknown devices on both replicas, with `Retry-After`,
exactly as for a username that does not exist; the owner's browser, holding the device cookie of
an earlier sign-in, still signs in. The per-address brake of the routes that mail is shared the
same way. Each gateway runs as its own process (`python -m services.gateway`), trusting one proxy
hop so that the test can speak for many addresses.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.cookiejar import DefaultCookiePolicy
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from services.gateway.models import MIGRATIONS_DIR as GATEWAY_MIGRATIONS
from services.identity.models import Membership, Organisation, User, UserStatus
from services.identity.passwords import Passwords
from services.identity.servicer import SPEC
from services.identity.settings import IdentitySettings
from services.kit.mail import new_sealing_key
from services.kit.ports import free_port
from services.kit.runtime import start_service
from services.kit.testing import DatabaseServer, wait_until
from tests.identity.harness import PASSWORD, unique

CLIENT = ("gateway", "gateway-secret-for-shared-brakes-0123")
HOME = "203.0.113.50"


@dataclass
class Replicas:
    a: httpx.AsyncClient
    b: httpx.AsyncClient
    settings: IdentitySettings
    add_user: Any

    def either(self, n: int) -> httpx.AsyncClient:
        return self.a if n % 2 == 0 else self.b


async def _gateway(
    identity_addr: str, database_url: str
) -> tuple[asyncio.subprocess.Process, httpx.AsyncClient]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(port),
        "IDENTITY_ADDR": identity_addr,
        "SERVICE_CLIENT_ID": CLIENT[0],
        "SERVICE_CLIENT_SECRET": CLIENT[1],
        "TRUSTED_PROXY_COUNT": "1",
        "DEVICE_COOKIE_SECURE": "false",
        "LOG_LEVEL": "WARNING",
        "SHUTDOWN_GRACE": "0",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.gateway", env=env, stdout=asyncio.subprocess.DEVNULL
    )
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30)
    # Every request of this module says which device (and address) it comes from: no jar.
    client.cookies.jar.set_policy(DefaultCookiePolicy(allowed_domains=[]))

    async def ready() -> bool:
        assert process.returncode is None, "a gateway exited early"
        try:
            return (await client.get("/readyz")).status_code == 200
        except httpx.TransportError:
            return False

    await wait_until(ready, what="a gateway process to be ready", within=60)
    return process, client


@pytest.fixture(scope="module")
async def replicas(
    pg: DatabaseServer, temporal_env: WorkflowEnvironment
) -> AsyncIterator[Replicas]:
    url = await pg.migrated_database(SPEC.migrations_dir, "identity")
    settings = IdentitySettings(
        service_name="identity",
        database_url=url,
        grpc_host="127.0.0.1",
        grpc_port=0,
        shutdown_grace=0,
        log_json=False,
        temporal_address=temporal_env.client.service_client.config.target_host,
        temporal_task_queue=f"brakes-{uuid.uuid4()}",
        mail_sealing_key=new_sealing_key(),
        service_clients="=".join(CLIENT),
    )
    context, server = await start_service(SPEC, settings)
    passwords = Passwords(memory_cost_kib=1024, time_cost=1, parallelism=1)
    organisation_id = uuid.uuid4()
    now = datetime.now(UTC)
    async with context.sessions.begin() as session:
        session.add(
            Organisation(
                id=organisation_id, kind="association", name=unique("Asso "), created_at=now
            )
        )

    async def add_user() -> str:
        username = unique("replica.")
        async with context.sessions.begin() as session:
            user_id = uuid.uuid4()
            session.add(
                User(
                    id=user_id,
                    organisation_id=organisation_id,
                    username=username,
                    email=f"{username}@example.org",
                    email_verified=True,
                    password_hash=await passwords.hash(PASSWORD),
                    status=UserStatus.ACTIVE,
                    created_at=now,
                    updated_at=now,
                    memberships=[
                        Membership(organisation_id=organisation_id, role="member", created_at=now)
                    ],
                )
            )
        return username

    address = f"127.0.0.1:{server.port}"
    # The replicas share one gateway database (their Idempotency-Key store), as in production.
    gateway_url = await pg.migrated_database(GATEWAY_MIGRATIONS, "gateway")
    first, second = await asyncio.gather(
        _gateway(address, gateway_url), _gateway(address, gateway_url)
    )
    try:
        yield Replicas(first[1], second[1], settings, add_user)
    finally:
        for process, client in (first, second):
            await client.aclose()
            process.terminate()
            await process.wait()
        await server.stop()
        await context.exit_stack.aclose()


def sign_in(
    client: httpx.AsyncClient, username: str, password: str, address: str, device: str = ""
) -> Any:
    headers = {"x-forwarded-for": address}
    if device:
        headers["cookie"] = f"guichet_device={device}"
    return client.post(
        "/v1/auth/token", json={"username": username, "password": password}, headers=headers
    )


def assert_429(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 429, response.text
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return body


async def test_the_lock_out_attack_spares_the_known_device_on_every_replica(
    replicas: Replicas,
) -> None:
    owner = await replicas.add_user()
    first = await sign_in(replicas.a, owner, PASSWORD, HOME)
    assert first.status_code == 200, first.text
    set_cookie = first.headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie.replace("Strict", "strict")
    assert "Path=/v1/auth" in set_cookie
    device = first.cookies["guichet_device"]
    # The attack: five failures, alternating replicas, each from another address.
    threshold = replicas.settings.lockout_threshold
    for n in range(threshold):
        wrong = await sign_in(replicas.either(n), owner, "wrong password", f"198.51.100.{n + 1}")
        assert wrong.status_code == 401, wrong.text
    # Both replicas now hold the username back for unknown devices, the owner's new ones too...
    for client in (replicas.a, replicas.b):
        assert_429(await sign_in(client, owner, PASSWORD, "198.51.100.200"))
        assert_429(await sign_in(client, owner, PASSWORD, HOME))
    # ... and the owner's known browser signs in on either, at once.
    for client in (replicas.a, replicas.b):
        known = await sign_in(client, owner, PASSWORD, HOME, device=device)
        assert known.status_code == 200, known.text


async def test_a_locked_unknown_username_answers_exactly_like_a_locked_account(
    replicas: Replicas,
) -> None:
    owner = await replicas.add_user()
    ghost = unique("ghost.")
    bodies = []
    for username in (owner, ghost):
        for n in range(replicas.settings.lockout_threshold):
            await sign_in(replicas.either(n), username, "wrong password", f"198.51.100.{n + 50}")
        refused = await sign_in(replicas.b, username, PASSWORD, "198.51.100.99")
        body = assert_429(refused)
        bodies.append({k: v for k, v in body.items() if k not in ("request_id", "trace_id")})
    assert bodies[0] == bodies[1]


async def test_the_route_brake_is_shared_by_the_replicas(replicas: Replicas) -> None:
    """The mailing routes: a burst per address, counted across replicas, then 429s."""
    address = "198.18.7.7"
    burst = replicas.settings.auth_rate_limit_burst
    for n in range(burst):
        answer = await replicas.either(n).post(
            "/v1/password/forgot", json={"login": "nobody"}, headers={"x-forwarded-for": address}
        )
        assert answer.status_code == 202, answer.text
    for client in (replicas.a, replicas.b):
        refused = await client.post(
            "/v1/password/forgot", json={"login": "nobody"}, headers={"x-forwarded-for": address}
        )
        assert_429(refused)
    # Another address is not held back.
    other = await replicas.b.post(
        "/v1/password/forgot", json={"login": "nobody"}, headers={"x-forwarded-for": "198.18.7.8"}
    )
    assert other.status_code == 202


async def test_successful_sign_ins_behind_one_address_are_never_braked(
    replicas: Replicas,
) -> None:
    office = "192.0.2.90"
    colleagues = [await replicas.add_user() for _ in range(10)]
    answers = await asyncio.gather(
        *(
            sign_in(replicas.either(n), colleague, PASSWORD, office)
            for n, colleague in enumerate(colleagues * 3)
        )
    )
    assert [a.status_code for a in answers] == [200] * 30
