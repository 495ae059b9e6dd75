"""Fixtures for the gateway tests that need no identity service.

`refusing_identity` is a real gRPC server of the identity contract that only ever refuses: it
publishes a test JWKS and aborts each call with the status a test asks for. It exists to check
the gRPC → HTTP table and the edge behaviour (auth, limits, probes) in isolation; everything
about identity's own behaviour is tested end to end against the real service.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from guichet.identity.v1 import identity_pb2, identity_pb2_grpc
from jwt.algorithms import OKPAlgorithm
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.gateway.app import IDENTITY_SERVICE, create_app
from services.gateway.settings import GatewaySettings
from services.kit.auth import ALGORITHM, AUDIENCE, ISSUER
from services.kit.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    to_grpc_status,
)
from services.kit.identity_client import connect_identity
from services.kit.telemetry import setup_telemetry

# What the refusing server answers, by the `login` a test sends to /v1/password/forgot.
DOMAIN_REFUSALS: dict[str, DomainError] = {
    "INVALID_ARGUMENT": InvalidArgument(
        [
            ("login", "is required", "missing"),
            ("profile.first_name", "is too long", "string_too_long"),
        ]
    ),
    "UNAUTHENTICATED": Unauthenticated("token expired"),
    "PERMISSION_DENIED": PermissionDenied("only an association admin may do this"),
    "NOT_FOUND": NotFound("no such account", reason="user_not_found"),
    "ALREADY_EXISTS": AlreadyExists("username taken", reason="username_taken"),
    "FAILED_PRECONDITION": FailedPrecondition("account already validated"),
    "RESOURCE_EXHAUSTED": ResourceExhausted("too many attempts", retry_after_seconds=42),
    "UNAVAILABLE": Unavailable("database at 10.0.0.7:5432 is down"),
}
SECRET_DETAIL = "secret: stack frame at /srv/identity/domain.py line 42"


@dataclass
class SigningKeys:
    """An Ed25519 signing key and its JWKS, standing in for identity's keys."""

    kid: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    @property
    def jwks_json(self) -> str:
        jwk = json.loads(OKPAlgorithm.to_jwk(self.key.public_key()))
        jwk.update(kid=self.kid, alg=ALGORITHM, use="sig")
        return json.dumps({"keys": [jwk]})

    def token(self, *, subject: str | None = None, lifetime: float = 300, **claims: Any) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "sub": subject or str(uuid.uuid4()),
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + int(lifetime),
            "typ": "user",
            "name": "dupont.jean",
            "st": "active",
            "orgs": {},
        }
        payload.update(claims)
        return jwt.encode(payload, self.key, algorithm=ALGORITHM, headers={"kid": self.kid})


class RefusingIdentity(identity_pb2_grpc.IdentityServiceServicer):
    """Publishes the test JWKS; refuses everything else. Records the metadata it was sent."""

    def __init__(self, keys: SigningKeys) -> None:
        self.keys = keys
        self.jwks_json = keys.jwks_json
        self.metadata: list[dict[str, str]] = []
        self.login_addresses: list[str] = []

    def _seen(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        self.metadata.append(
            {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        )

    async def GetJwks(
        self, request: identity_pb2.GetJwksRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> identity_pb2.GetJwksResponse:
        return identity_pb2.GetJwksResponse(jwks_json=self.jwks_json)

    async def RequestPasswordReset(
        self,
        request: identity_pb2.RequestPasswordResetRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> identity_pb2.RequestPasswordResetResponse:
        self._seen(context)
        wanted = request.login
        if wanted == "SLOW":
            await asyncio.sleep(2)
        if wanted in DOMAIN_REFUSALS:
            status = to_grpc_status(DOMAIN_REFUSALS[wanted])
            await context.abort(status.code, status.details, status.trailing_metadata)
        if wanted in grpc.StatusCode.__members__:
            await context.abort(grpc.StatusCode[wanted], SECRET_DETAIL)
        return identity_pb2.RequestPasswordResetResponse()

    async def Login(
        self, request: identity_pb2.LoginRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> identity_pb2.LoginResponse:
        self._seen(context)
        self.login_addresses.append(request.client_ip)
        status = to_grpc_status(Unauthenticated("invalid username or password"))
        await context.abort(status.code, status.details, status.trailing_metadata)
        raise AssertionError("unreachable")

    async def GetMe(
        self, request: identity_pb2.GetMeRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> identity_pb2.GetMeResponse:
        self._seen(context)
        status = to_grpc_status(PermissionDenied("refused by the test server"))
        await context.abort(status.code, status.details, status.trailing_metadata)
        raise AssertionError("unreachable")

    async def CompleteProfile(
        self,
        request: identity_pb2.CompleteProfileRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> identity_pb2.CompleteProfileResponse:
        self._seen(context)
        status = to_grpc_status(
            InvalidArgument([("profile.birth_date", "is in the future", "in_the_future")])
        )
        await context.abort(status.code, status.details, status.trailing_metadata)
        raise AssertionError("unreachable")


@dataclass
class RefusingServer:
    servicer: RefusingIdentity
    health: health.aio.HealthServicer
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        await self.health.set(IDENTITY_SERVICE, status)


@pytest.fixture(scope="session", autouse=True)
def span_exporter() -> InMemorySpanExporter:
    """The process's tracer provider (as in production), with spans kept for assertions."""
    exporter = InMemorySpanExporter()
    setup_telemetry("gateway-tests", extra_exporter=exporter)
    return exporter


@pytest.fixture(scope="session")
def keys() -> SigningKeys:
    return SigningKeys()


@pytest.fixture
async def refusing_identity(keys: SigningKeys) -> AsyncIterator[RefusingServer]:
    server = grpc.aio.server()
    servicer = RefusingIdentity(keys)  # type: ignore[abstract]  # the rest answers UNIMPLEMENTED
    identity_pb2_grpc.add_IdentityServiceServicer_to_server(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    running = RefusingServer(servicer, health_servicer, port)
    await running.set_serving(True)
    yield running
    await server.stop(0)


ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@asynccontextmanager
async def gateway_client(identity_addr: str, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The real app over ASGI, with an identity link made here (no lifespan needed)."""
    settings = GatewaySettings(identity_addr=identity_addr, **overrides)
    link = connect_identity(settings)
    app: FastAPI = create_app(settings, identity=link)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
    finally:
        await link.close()


@pytest.fixture
def client_for(
    refusing_identity: RefusingServer, span_exporter: InMemorySpanExporter
) -> ClientFactory:
    """Builds a client of a gateway wired to the refusing server, with settings overrides."""

    def build(**overrides: Any) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        overrides.setdefault("grpc_default_timeout", 2.0)
        return gateway_client(refusing_identity.address, **overrides)

    return build


@pytest.fixture
async def client(client_for: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for() as http:
        yield http
