"""The `grpc.aio` server every service runs: auth, error mapping, health, reflection, drain.

One interceptor verifies the caller's token and binds the principal for the call, and maps a
`DomainError` to its status with details; a database that cannot be reached becomes UNAVAILABLE
(a retry may succeed: the gateway answers 503 with Retry-After); any other exception becomes
INTERNAL with no trace leaked (it is logged with the trace id instead).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
import grpc
import sqlalchemy.exc
from google.protobuf.message import DecodeError, Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.kit.auth import TokenVerifier, bind_deadline, bind_principal
from services.kit.errors import (
    DomainError,
    InvalidArgument,
    Unauthenticated,
    Unavailable,
    to_grpc_status,
)
from services.kit.metrics import grpc_server_metrics, split_method
from services.kit.tracing import tag_from_request

log = logging.getLogger(__name__)

# Calls that need no token: the standard services, and a service's declared public methods.
_ALWAYS_PUBLIC_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")

MAX_MESSAGE_BYTES = 4 * 1024 * 1024
SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
]


# Failures that say "the database is not there right now", not "the request is wrong": refused or
# reset connections, a server shutting down or starting up, no connection left, and any error
# SQLAlchemy recognised as a disconnect (it then invalidates the pool, so the next call reconnects).
_UNREACHABLE: tuple[type[BaseException], ...] = (
    ConnectionError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    sqlalchemy.exc.TimeoutError,
)


def is_unavailable(error: BaseException) -> bool:
    """Whether an unexpected error means the database (or a socket) could not be reached."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, _UNREACHABLE):
            return True
        if isinstance(current, sqlalchemy.exc.DBAPIError):
            if current.connection_invalidated:
                return True
            orig = current.orig
            pending.append(orig if isinstance(orig, BaseException) else None)
        pending += [current.__cause__, current.__context__]
    return False


def _bearer(metadata: Iterable[Any] | None) -> str | None:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token:
                return token.strip()
    return None


def unstorable_text(value: Any, name: str = "") -> list[str]:
    """Fields holding NUL, which PostgreSQL cannot store: refused up front as INVALID_ARGUMENT
    (protobuf itself already guarantees valid UTF-8)."""
    if isinstance(value, str):
        return [name] if "\x00" in value else []
    if isinstance(value, Message):
        found: list[str] = []
        for descriptor, field_value in value.ListFields():
            path = f"{name}.{descriptor.name}" if name else descriptor.name
            found += unstorable_text(field_value, path)
        return found
    if isinstance(value, Mapping):
        found = []
        for key, item in value.items():
            found += unstorable_text(key, name) + unstorable_text(item, f"{name}[{key}]")
        return found
    if isinstance(value, bytes | int | float | bool):
        return []
    return [f for i, item in enumerate(value) for f in unstorable_text(item, f"{name}[{i}]")]


class _Malformed:
    """What a request that is not a valid message of the method's type deserialises to, so the
    interceptor answers INVALID_ARGUMENT (gRPC would answer UNKNOWN, naming parser internals)."""


_MALFORMED = _Malformed()


def _tolerant(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except DecodeError:
            return _MALFORMED

    return parse


async def abort_with(context: grpc.aio.ServicerContext[Any, Any], error: DomainError) -> None:
    status = to_grpc_status(error)
    await context.abort(status.code, status.details, status.trailing_metadata)


class GuichetServerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Authenticates every call (except public ones) and maps domain errors to gRPC status."""

    def __init__(self, verifier: TokenVerifier, public_methods: Iterable[str] = ()) -> None:
        self._verifier = verifier
        self._public = frozenset(public_methods)

    def _is_public(self, method: str) -> bool:
        return method in self._public or method.startswith(_ALWAYS_PUBLIC_PREFIXES)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method: str = handler_call_details.method
        public = self._is_public(method)
        inner = handler.unary_unary
        verifier = self._verifier
        metrics = grpc_server_metrics()

        in_flight = metrics.in_flight.labels(split_method(method)[0])

        async def behaviour(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            started = time.perf_counter()
            code = "OK"
            in_flight.inc()
            try:
                return await guarded(request, context)
            except grpc.aio.AbortError:
                code = _code_name(context)
                raise
            except BaseException:
                code = "UNKNOWN"
                raise
            finally:
                in_flight.dec()
                metrics.observe(method, code, time.perf_counter() - started)

        async def guarded(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            remaining = context.time_remaining()
            bind_deadline(None if remaining is None else time.monotonic() + remaining)
            try:
                token = _bearer(context.invocation_metadata())
                if token is None:
                    if not public:
                        raise Unauthenticated("missing bearer token")
                    bind_principal(None)
                else:
                    try:
                        bind_principal(await verifier.verify(token))
                    except Unauthenticated:
                        if not public:
                            raise
                        bind_principal(None)
                if request is _MALFORMED:
                    raise InvalidArgument(
                        [("request", "is not a valid protobuf message of this method's type")]
                    )
                tag_from_request(request)
                if bad := unstorable_text(request):
                    raise InvalidArgument(
                        [(field, "must not contain NUL characters") for field in bad]
                    )
                return await inner(request, context)
            except DomainError as error:
                await abort_with(context, error)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # Aborts raised by context.abort pass through untouched.
                if isinstance(error, grpc.aio.AbortError):
                    raise
                if is_unavailable(error):
                    log.warning("database unavailable in %s: %s", method, type(error).__name__)
                    await abort_with(
                        context, Unavailable("the service's database is unavailable, retry")
                    )
                log.exception("unhandled error in %s", method)
                await context.abort(grpc.StatusCode.INTERNAL, "internal error")

        return grpc.unary_unary_rpc_method_handler(
            behaviour,
            request_deserializer=_tolerant(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )


def _code_name(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    code = context.code()
    return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    grace: float

    async def stop(self) -> None:
        """Reports NOT_SERVING, then lets in-flight calls finish within the grace period."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.grace)

    async def wait(self) -> None:
        await self.server.wait_for_termination()


async def start_server(
    *,
    register: Callable[[grpc.aio.Server], None],
    service_names: Iterable[str],
    verifier: TokenVerifier,
    public_methods: Iterable[str] = (),
    host: str = "[::]",
    port: int = 0,
    grace: float = 10.0,
    reuse_port: bool = False,
) -> RunningServer:
    """Builds, binds (port 0 picks a free port) and starts a server with health and reflection.

    `reuse_port`: other worker processes bind the same port (GUICHET_WORKERS > 1)."""
    server = grpc.aio.server(
        interceptors=[GuichetServerInterceptor(verifier, public_methods)],
        options=[*SERVER_OPTIONS, *([("grpc.so_reuseport", 1)] if reuse_port else [])],
    )
    register(server)
    names = list(service_names)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise RuntimeError(f"cannot bind gRPC port {host}:{port}")
    await server.start()
    for name in [*names, ""]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("gRPC server listening", extra={"port": bound, "services": names})
    return RunningServer(server=server, port=bound, health=health_servicer, grace=grace)


async def serve_until_signalled(running: RunningServer) -> None:
    """Runs until SIGTERM or SIGINT, then drains."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("draining gRPC server", extra={"grace_seconds": running.grace})
    await running.stop()
