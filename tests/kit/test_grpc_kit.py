"""The kit's gRPC edges on a real server: auth, error mapping, deadlines, health."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc_health.v1 import health_pb2, health_pb2_grpc
from jwt.algorithms import OKPAlgorithm

from services.kit.auth import (
    ALGORITHM,
    AUDIENCE,
    ISSUER,
    TokenVerifier,
    current_principal,
    remaining_time,
)
from services.kit.errors import (
    InvalidArgument,
    NotFound,
    RemoteProblem,
    ResourceExhausted,
)
from services.kit.grpcclient import create_channel
from services.kit.grpcserver import RunningServer, start_server

SERVICE = "test.v1.ProbeService"


class Keys:
    def __init__(self) -> None:
        self.kid = uuid.uuid4().hex
        self.private = Ed25519PrivateKey.generate()

    def jwks(self) -> str:
        public = json.loads(OKPAlgorithm.to_jwk(self.private.public_key()))
        public.update(kid=self.kid, use="sig", alg=ALGORITHM)
        return json.dumps({"keys": [public]})

    def token(self, **claims: Any) -> str:
        now = int(time.time())
        payload = {
            "sub": "user-1",
            "typ": "user",
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 60,
            "orgs": {"org-a": ["member"]},
            **claims,
        }
        return jwt.encode(payload, self.private, algorithm=ALGORITHM, headers={"kid": self.kid})


def _handler(behaviour: Any) -> grpc.RpcMethodHandler:
    return grpc.unary_unary_rpc_method_handler(
        behaviour, request_deserializer=lambda b: b, response_serializer=lambda b: b
    )


async def whoami(request: bytes, context: Any) -> bytes:
    principal = current_principal()
    return f"{principal.subject}:{sorted(principal.roles_in('org-a'))}".encode()


async def invalid(request: bytes, context: Any) -> bytes:
    raise InvalidArgument({"username": "is required", "email": "is not an e-mail address"})


async def missing(request: bytes, context: Any) -> bytes:
    raise NotFound("no such group")


async def throttled(request: bytes, context: Any) -> bytes:
    raise ResourceExhausted("too many attempts", retry_after_seconds=42)


async def crash(request: bytes, context: Any) -> bytes:
    raise RuntimeError("secret internals /etc/passwd")


async def deadline(request: bytes, context: Any) -> bytes:
    left = remaining_time()
    return b"none" if left is None else f"{left:.3f}".encode()


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture(scope="module")
async def server(keys: Keys) -> AsyncIterator[RunningServer]:
    async def load() -> str:
        return keys.jwks()

    handlers = {
        "WhoAmI": _handler(whoami),
        "Invalid": _handler(invalid),
        "Missing": _handler(missing),
        "Throttled": _handler(throttled),
        "Crash": _handler(crash),
        "Deadline": _handler(deadline),
    }

    def register(server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))

    running = await start_server(
        register=register,
        service_names=[SERVICE],
        verifier=TokenVerifier(load),
        public_methods=[f"/{SERVICE}/Deadline"],
        port=0,
        host="127.0.0.1",
    )
    yield running
    await running.stop()


async def call(
    server: RunningServer, method: str, token: str | None, timeout: float | None = 5
) -> bytes:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        metadata = (("authorization", f"Bearer {token}"),) if token else None
        stub = channel.unary_unary(f"/{SERVICE}/{method}")
        result: bytes = await stub(b"", metadata=metadata, timeout=timeout)
        return result


async def problem(server: RunningServer, method: str, token: str | None) -> RemoteProblem:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(server, method, token)
    return RemoteProblem.from_rpc_error(caught.value)


async def test_verified_principal_reaches_the_handler(server: RunningServer, keys: Keys) -> None:
    assert await call(server, "WhoAmI", keys.token()) == b"user-1:['member']"


async def test_missing_token_is_unauthenticated(server: RunningServer) -> None:
    assert (await problem(server, "WhoAmI", None)).code == grpc.StatusCode.UNAUTHENTICATED


async def test_expired_token_is_unauthenticated(server: RunningServer, keys: Keys) -> None:
    expired = keys.token(exp=int(time.time()) - 120, iat=int(time.time()) - 300)
    found = await problem(server, "WhoAmI", expired)
    assert found.code == grpc.StatusCode.UNAUTHENTICATED
    assert found.message == "token expired"


async def test_token_of_another_signer_is_refused(server: RunningServer) -> None:
    stranger = Keys()
    found = await problem(server, "WhoAmI", stranger.token())
    assert found.code == grpc.StatusCode.UNAUTHENTICATED


async def test_wrong_audience_is_refused(server: RunningServer, keys: Keys) -> None:
    found = await problem(server, "WhoAmI", keys.token(aud="someone-else"))
    assert found.code == grpc.StatusCode.UNAUTHENTICATED


async def test_invalid_argument_carries_every_field_violation(
    server: RunningServer, keys: Keys
) -> None:
    found = await problem(server, "Invalid", keys.token())
    assert found.code == grpc.StatusCode.INVALID_ARGUMENT
    assert found.reason == "invalid_argument"
    assert found.violations == [
        ("username", "is required"),
        ("email", "is not an e-mail address"),
    ]


async def test_domain_errors_keep_their_status(server: RunningServer, keys: Keys) -> None:
    assert (await problem(server, "Missing", keys.token())).code == grpc.StatusCode.NOT_FOUND
    throttled = await problem(server, "Throttled", keys.token())
    assert throttled.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert throttled.retry_after_seconds == 42


async def test_unexpected_error_leaks_nothing(server: RunningServer, keys: Keys) -> None:
    found = await problem(server, "Crash", keys.token())
    assert found.code == grpc.StatusCode.INTERNAL
    assert found.message == "internal error"
    assert "passwd" not in found.message


async def test_public_method_needs_no_token_and_sees_the_deadline(server: RunningServer) -> None:
    left = float(await call(server, "Deadline", None, timeout=3))
    assert 0 < left <= 3.1


async def test_client_channel_always_sets_a_deadline(server: RunningServer) -> None:
    channel = create_channel(f"127.0.0.1:{server.port}", default_timeout=2.5)
    async with channel:
        stub = channel.unary_unary(f"/{SERVICE}/Deadline")
        left = float(await stub(b""))
    assert 0 < left <= 2.6  # the default, give or take the clock granularity


async def test_health_reports_serving_then_not_serving_on_drain(keys: Keys) -> None:
    async def load() -> str:
        return keys.jwks()

    running = await start_server(
        register=lambda s: None,
        service_names=[SERVICE],
        verifier=TokenVerifier(load),
        port=0,
        host="127.0.0.1",
        grace=0.5,
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=2)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        await running.health.enter_graceful_shutdown()
        reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=2)
        assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
    await asyncio.wait_for(running.server.stop(0.5), timeout=5)


def test_text_postgres_cannot_store_is_found_in_nested_messages() -> None:
    from guichet.identity.v1 import identity_pb2

    from services.kit.grpcserver import unstorable_text

    request = identity_pb2.CompleteProfileRequest(
        profile=identity_pb2.Profile(first_name="Ann\x00e", city="Lyon")
    )
    assert unstorable_text(request) == ["profile.first_name"]
    members = identity_pb2.ListOrganisationMembersRequest(roles=["member", "x\x00"])
    assert unstorable_text(members) == ["roles[1]"]
    assert unstorable_text(identity_pb2.LoginRequest(username="élodie")) == []


async def many_bad_fields(request: bytes, context: Any) -> bytes:
    raise InvalidArgument([(f"items[{i}].name", "is required " * 5) for i in range(5000)])


async def test_thousands_of_violations_still_arrive_as_invalid_argument(keys: Keys) -> None:
    async def load() -> str:
        return keys.jwks()

    def register(server: grpc.aio.Server) -> None:
        handlers = {"Many": _handler(many_bad_fields)}
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))

    running = await start_server(
        register=register,
        service_names=[SERVICE],
        verifier=TokenVerifier(load),
        port=0,
        host="127.0.0.1",
    )
    try:
        found = await problem(running, "Many", keys.token())
    finally:
        await running.stop()
    assert found.code == grpc.StatusCode.INVALID_ARGUMENT
    assert len(found.violations) == 50
    assert found.violations[0][0] == "items[0].name"
