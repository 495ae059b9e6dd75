"""The FastAPI application, built by `create_app` (nothing happens at import).

The app owns its identity link when it makes one (in the lifespan); tests and embedders can pass
one in instead, which also lets a test drive the app through `httpx.ASGITransport` without a
lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import grpc
from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute, APIRouter
from grpc_health.v1 import health_pb2, health_pb2_grpc
from guichet.identity.v1 import identity_pb2
from pydantic import BaseModel, Field
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from services.gateway import idempotency as keys
from services.gateway.auth import identity_link
from services.gateway.idempotency import Idempotency, IdempotencyStore
from services.gateway.middleware import BodyLimit, ErrorBoundary, RequestContext, SafeText
from services.gateway.openapi import errors, openapi_schema
from services.gateway.portals import ROUTERS, UPLOADS, close_channels
from services.gateway.problems import ProblemException, install_problem_handlers
from services.gateway.rpc import operation_id
from services.gateway.settings import GatewaySettings
from services.kit.identity_client import IdentityLink, connect_identity
from services.kit.telemetry import instrument_app

IDENTITY_SERVICE = identity_pb2.DESCRIPTOR.services_by_name["IdentityService"].full_name

DESCRIPTION = """\
REST/JSON API of Guichet for the portals' web and mobile clients.

* Authenticate with `POST /v1/auth/token` (an account with a second factor answers 202 with a
  ticket: finish at `POST /v1/auth/second-factor`), then send `Authorization: Bearer
  <access_token>`. Keep the `guichet_device` cookie a sign-in sets: with it, other people's
  failed attempts never lock your own device out. A 429 always carries `Retry-After`.
* Every error is an RFC 9457 problem document (`application/problem+json`) carrying `request_id`
  and `trace_id`; 400s list each invalid field in `errors`.
* Send `X-Request-ID` to correlate your logs with ours; it is echoed on every response.
"""

OPENAPI_TAGS = [
    {"name": "authentication", "description": "Tokens, JWKS and passwords."},
    {"name": "registration", "description": "Self-registration of members."},
    {"name": "me", "description": "The signed-in member's own account."},
    {
        "name": "second factors",
        "description": "Authenticator apps (TOTP), recovery codes and passkeys; an admin's reset; "
        "an organisation's requirement of a second factor.",
    },
    {"name": "organisations", "description": "Organisations (tenants) and their members."},
    {"name": "accounts", "description": "The admin's account pages."},
    {"name": "operator", "description": "Platform staff only."},
    {
        "name": "client groups",
        "description": "A service provider's client groups, delegated access, process requests.",
    },
    {
        "name": "support",
        "description": "Tickets with SLA, categories and answers, partners' messages, reports.",
    },
    {
        "name": "workshops",
        "description": "Banner program: workshops, options, technicians, courses, claims.",
    },
    {
        "name": "associations",
        "description": "Members and fees, trainings, coverage requests, client records.",
    },
    {
        "name": "partners",
        "description": "A delivery partner's back office: orders, menu, couriers, check-ins, "
        "promotions, messages to support, bank details.",
    },
    {"name": "health", "description": "Probes for the orchestrator."},
]


class Health(BaseModel):
    status: str = Field(examples=["ok"])


def idempotency_store(settings: GatewaySettings) -> IdempotencyStore | None:
    """The Idempotency-Key store on the gateway's database (None without DATABASE_URL)."""
    if not settings.database_url:
        return None
    return IdempotencyStore.connect(
        settings.database_url,
        pool_size=settings.db_pool_size,
        ttl=timedelta(hours=settings.idempotency_ttl_hours),
        lease=timedelta(seconds=settings.idempotency_lease_seconds),
    )


def create_app(
    settings: GatewaySettings,
    *,
    identity: IdentityLink | None = None,
    idempotency: IdempotencyStore | None = None,
) -> FastAPI:
    """The gateway app; connects to identity in its lifespan unless `identity` is given, and
    keeps Idempotency-Keys in `idempotency` (or a store on DATABASE_URL, which it then owns)."""
    owned_store = None if idempotency is not None else idempotency_store(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned: IdentityLink | None = None
        if app.state.identity is None:
            owned = connect_identity(settings)
            app.state.identity = owned
        purge = None
        if app.state.idempotency is not None:
            purge = asyncio.create_task(
                keys.purge_forever(app.state.idempotency, settings.idempotency_purge_interval),
                name="idempotency-purge",
            )
        try:
            yield
        finally:
            if purge is not None:
                purge.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await purge
            await close_channels(app.state)
            if owned is not None:
                app.state.identity = None
                await owned.close()
            if owned_store is not None:
                await owned_store.close()

    app = FastAPI(
        title="Guichet API",
        version="1.0.0",
        description=DESCRIPTION,
        openapi_tags=OPENAPI_TAGS,
        generate_unique_id_function=operation_id,
        lifespan=lifespan,
        docs_url="/docs" if settings.public_docs else None,
        openapi_url="/openapi.json" if settings.public_docs else None,
        redoc_url=None,
        # Tracing is kit.telemetry's job (instrument_app below); avoid a second set of spans.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.identity = identity
    app.state.idempotency = idempotency or owned_store
    install_problem_handlers(app)
    # Added inside out: the last one added is the outermost.
    app.add_middleware(SafeText)
    app.add_middleware(Idempotency, state=app.state)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        larger=dict.fromkeys(UPLOADS, settings.max_upload_bytes),
    )
    app.add_middleware(ErrorBoundary)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_allow_origins,
        allow_credentials=False,  # bearer tokens, no cookies
        allow_methods=["GET", "POST", "PUT", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "X-Request-ID", keys.HEADER],
        expose_headers=[
            "X-Request-ID",
            "Retry-After",
            "WWW-Authenticate",
            "Location",
            keys.REPLAYED_HEADER,
        ],
        max_age=600,
    )
    app.add_middleware(RequestContext, hsts_max_age=settings.hsts_max_age)

    for router in ROUTERS:
        app.include_router(router)
    skip_routers_by_prefix(app, ROUTERS)
    _add_probes(app, settings)

    def openapi() -> dict[str, Any]:
        return openapi_schema(app)

    app.openapi = openapi  # type: ignore[method-assign]
    run_plain_dependencies_inline([*app.router.routes, *(r for rt in ROUTERS for r in rt.routes)])
    instrument_app(app)
    return app


def _prefix(path: str) -> tuple[str, ...] | None:
    """The first two segments of a path: what tells our routers apart. None: a parameter."""
    key = tuple(path.split("/", 3)[1:3])
    return None if any("{" in part for part in key) else key


def skip_routers_by_prefix(app: FastAPI, routers: Iterable[APIRouter]) -> None:
    """Routing asks every included router in turn, and each tries all of its routes: ~120
    regular expressions for a request to the last one. Each router here serves a few path
    prefixes (`/v1/partners`, `/v1/support`...): a request whose prefix a router does not serve
    skips that router at once. Only the choice of candidates changes, not which route matches
    (a router without a route under the prefix could match neither fully nor partially)."""
    by_router = {id(router): router for router in routers}
    for included in app.router.routes:
        router = by_router.get(id(getattr(included, "original_router", None)))
        if router is None:
            continue  # another FastAPI's layout: nothing skipped, nothing wrong
        keys = {_prefix(route.path) for route in router.routes if isinstance(route, APIRoute)}
        if None in keys:
            continue
        full_match = included.matches

        def matches(
            scope: Scope,
            keys: frozenset[tuple[str, ...] | None] = frozenset(keys),
            full_match: Callable[[Scope], tuple[Match, Scope]] = full_match,
        ) -> tuple[Match, Scope]:
            path, root = str(scope.get("path", "")), str(scope.get("root_path", ""))
            if root and path.startswith(root):
                path = path[len(root) :]
            if _prefix(path) not in keys:
                return Match.NONE, {}
            return full_match(scope)

        included.matches = matches  # type: ignore[method-assign]


def run_plain_dependencies_inline(routes: Iterable[BaseRoute]) -> None:
    """The gateway's own plain-`def` dependencies (paging, ids, headers) run on the event loop.

    FastAPI runs every `def` dependency in a worker thread, in case it blocks: a thread hop per
    dependency per request, which costs more than the dependency (they only read the request).
    Ours never block (house rule: I/O is `async`), so each is swapped for a coroutine calling it;
    the analysed parameters stay as FastAPI found them. One wrapper per function, so FastAPI's
    per-request dependency cache still sees one dependency. Classes and generators are left alone.
    """
    wrappers: dict[Callable[..., Any], Callable[..., Any]] = {}

    def inline(call: Callable[..., Any]) -> Callable[..., Any]:
        if call not in wrappers:

            async def run_inline(**values: Any) -> Any:
                return call(**values)

            wrappers[call] = run_inline
        return wrappers[call]

    def visit(dependant: Dependant) -> None:
        for sub in dependant.dependencies:
            call = sub.call
            if (
                inspect.isfunction(call)
                and not inspect.iscoroutinefunction(call)
                and not inspect.isgeneratorfunction(call)
                and call.__module__.startswith("services.gateway")
            ):
                sub.call = inline(call)
            visit(sub)

    for route in routes:
        if isinstance(route, APIRoute):
            visit(route.dependant)


def _add_probes(app: FastAPI, settings: GatewaySettings) -> None:
    @app.get("/healthz", tags=["health"], summary="The process is alive")
    async def healthz() -> Health:
        """Depends on nothing: a failing liveness probe should mean a stuck process."""
        return Health(status="ok")

    @app.get(
        "/readyz",
        tags=["health"],
        summary="Identity answers SERVING",
        responses=errors(503),
    )
    async def readyz(request: Request) -> Health:
        """Ready when identity's grpc.health.v1 reports SERVING; 503 while it does not."""
        link = await identity_link(request)
        stub = health_pb2_grpc.HealthStub(link.channel)
        try:
            answer = await stub.Check(
                health_pb2.HealthCheckRequest(service=IDENTITY_SERVICE),
                timeout=settings.readiness_timeout,
            )
            serving = answer.status == health_pb2.HealthCheckResponse.SERVING
        except grpc.aio.AioRpcError:
            serving = False
        if not serving:
            raise ProblemException(
                503, "not_ready", "Identity is not serving yet.", headers={"Retry-After": "1"}
            )
        return Health(status="ready")
