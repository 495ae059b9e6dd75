"""gRPC channels for calling other services: deadlines always, identity always.

Every outgoing call gets a deadline: the remaining time of the incoming call it serves, or the
default. It carries the caller's own token when there is one (so the callee authorises the end
user), else this process's service token. Every call is counted by back end, method and status
code, timed, and counted in flight while it runs (`guichet_grpc_client_*`): what the gateway and
the worker see of each service, which the service's own metrics cannot show (a call that never
reached it, a deadline spent in the network or in its queue).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from services.kit.auth import optional_principal, remaining_time
from services.kit.grpcserver import MAX_MESSAGE_BYTES
from services.kit.metrics import grpc_client_metrics, split_method

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.enable_retries", 1),
]


class ServiceTokenSource:
    """Fetches this process's service token from identity and renews it before it expires."""

    def __init__(self, fetch: Callable[[], Awaitable[tuple[str, int]]]) -> None:
        self._fetch = fetch
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        async with self._lock:
            if self._token is None or time.monotonic() >= self._renew_at:
                token, expires_in = await self._fetch()
                self._token = token
                self._renew_at = time.monotonic() + max(expires_in * 0.75, 1.0)
            return self._token


class _ClientInterceptor(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, default_timeout: float, tokens: ServiceTokenSource | None) -> None:
        self._default_timeout = default_timeout
        self._tokens = tokens

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Any],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        timeout = client_call_details.timeout
        inherited = remaining_time()
        if inherited is not None:
            timeout = inherited if timeout is None else min(timeout, inherited)
        if timeout is None:
            timeout = self._default_timeout
        metadata = grpc.aio.Metadata(*(client_call_details.metadata or ()))
        if "authorization" not in metadata:
            principal = optional_principal()
            if principal is not None:
                metadata["authorization"] = f"Bearer {principal.token}"
            elif self._tokens is not None:
                metadata["authorization"] = f"Bearer {await self._tokens.token()}"
        details = grpc.aio.ClientCallDetails(
            method=client_call_details.method,
            timeout=max(timeout, 0.001),
            metadata=metadata,
            credentials=client_call_details.credentials,
            wait_for_ready=client_call_details.wait_for_ready,
        )
        # The call's end is awaited here, so that it is timed and its code counted, and the call
        # itself is returned: the caller's `await stub.Method(…)` gets its response or its
        # AioRpcError, unchanged. Returning the call (not raising its error) matters to the
        # OpenTelemetry interceptor outside this one: it ends its client span in a done callback
        # of the call it gets back, and when this one raised, the client span of every failed
        # call was never ended, so never exported (tests/gateway/test_problems.py).
        method = client_call_details.method
        method = method.decode() if isinstance(method, bytes) else str(method)
        metrics = grpc_client_metrics()
        in_flight = metrics.in_flight.labels(split_method(method)[0])
        code = "OK"
        started = time.perf_counter()
        in_flight.inc()
        try:
            call = await continuation(details, request)
            code = (await call.code()).name
            return call
        except grpc.aio.AioRpcError as error:
            code = error.code().name
            raise
        except asyncio.CancelledError:
            code = "CANCELLED"
            raise
        except BaseException:
            code = "UNKNOWN"
            raise
        finally:
            in_flight.dec()
            metrics.observe(method, code, time.perf_counter() - started)


def create_channel(
    target: str,
    *,
    default_timeout: float = 10.0,
    tokens: ServiceTokenSource | None = None,
) -> grpc.aio.Channel:
    """An insecure channel (mTLS is the mesh's job in Kubernetes) with deadlines and identity."""
    return grpc.aio.insecure_channel(
        target,
        options=CHANNEL_OPTIONS,
        interceptors=[_ClientInterceptor(default_timeout, tokens)],
    )
