"""Plain ASGI middleware: request ids, security headers, access log, and the last-resort 500.

Pure ASGI (no BaseHTTPMiddleware) so that streaming, context variables and the OpenTelemetry span
of the request pass through untouched. Order, outside in (see `app.create_app`):
RequestContext → CORS → ErrorBoundary → FastAPI's exception handlers → routes. The boundary sits
inside CORS so that even an unexpected 500 carries CORS headers and a browser can read it.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

from opentelemetry import trace
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway.problems import (
    ProblemException,
    internal_error_response,
    problem_response,
    request_id_of,
    validation_problem,
)
from services.kit import tracing
from services.kit.metrics import http_metrics

log = logging.getLogger("services.gateway.access")

# Accept a caller's id when it looks like one (UUID, ULID, hex, W3C-ish): 8-128 safe characters.
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,127}")
_QUIET_PATHS = frozenset({"/healthz", "/readyz"})


# The portal a route belongs to (the SLOs of docs/slo.md are per portal), by its first segments.
PORTALS = (
    ("/v1/providers", "groups"),
    ("/v1/support", "support"),
    ("/v1/partners", "partners"),
    ("/v1/workshops", "workshops"),
    ("/v1/banner-programs", "workshops"),
    ("/v1/training-courses", "workshops"),
    ("/v1/associations", "associations"),
    ("/v1/operator", "operator"),
    ("/v1/", "account"),
    ("/.well-known/", "account"),
)


@functools.cache
def portal_of(route: str) -> str:
    """`groups`, `support`, `partners`, `workshops`, `associations`, `operator`, `account` (sign
    in, registration, the caller's own account), or `none` (probes, docs, unmatched paths)."""
    for prefix, portal in PORTALS:
        if route == prefix.rstrip("/") or route.startswith(prefix.rstrip("/") + "/"):
            return portal
    return "none"


def pick_request_id(value: str | None) -> str:
    """The caller's X-Request-ID when well-formed, else a fresh one (never echo arbitrary bytes)."""
    if value is not None and _REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


class RequestContext:
    """Gives every request an id, adds security headers to every response, logs one line each."""

    def __init__(self, app: ASGIApp, *, hsts_max_age: int = 0) -> None:
        self.app = app
        self.hsts = f"max-age={hsts_max_age}; includeSubDomains" if hsts_max_age > 0 else None
        self.metrics = http_metrics()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = pick_request_id(Headers(scope=scope).get("x-request-id"))
        scope.setdefault("state", {})["request_id"] = request_id
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attribute(tracing.REQUEST_ID, request_id)
        status = 500
        started = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = request_id
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
                headers["X-Frame-Options"] = "DENY"
                # Tokens and personal data: nothing is cached unless a route says otherwise.
                if "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
                # JSON never needs to run anything; the HTML of /docs loads Swagger UI's scripts.
                if not headers.get("content-type", "").startswith("text/html"):
                    headers["Content-Security-Policy"] = (
                        "default-src 'none'; frame-ancestors 'none'"
                    )
                if self.hsts is not None:
                    headers["Strict-Transport-Security"] = self.hsts
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            self.metrics.in_flight.dec()
            path = str(scope.get("path", ""))
            elapsed = time.perf_counter() - started
            # The route template, not the path: one series per route, whatever the ids.
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe(
                route, str(scope.get("method")), status, elapsed, portal=portal_of(route)
            )
            level = logging.DEBUG if path in _QUIET_PATHS else logging.INFO
            log.log(
                level,
                "%s %s %s",
                scope.get("method"),
                path,
                status,
                extra={
                    "http_method": scope.get("method"),
                    "http_path": path,
                    "http_status": status,
                    "duration_ms": round(elapsed * 1000, 1),
                    "request_id": request_id,
                },
            )


class ErrorBoundary:
    """Turns any exception no handler claimed into a generic 500 problem, logged with its trace."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def watch(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            logging.getLogger("services.gateway").exception(
                "unhandled error", extra={"request_id": request_id_of(scope)}
            )
            if response_started:
                raise
            await internal_error_response(scope)(scope, receive, send)


class BodyLimit:
    """Refuses bodies over the route's limit with a 413 problem, by Content-Length or while
    reading. (FastAPI's own limit answers in plain text, bypassing the problem handlers.)

    Every route takes small JSON documents (`max_bytes`) except the uploads named in `larger`
    (method and path template, as the router declares it → bytes): a file goes to its service
    whole, and the service's own checks (size, type, content) decide, with a precise error. The
    route is matched on the path here, before routing, so a refused body is never read.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        larger: Mapping[tuple[str, str], int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = [
            (method.upper(), compile_path(template)[0], limit)
            for (method, template), limit in (larger or {}).items()
        ]

    def limit_for(self, scope: Scope) -> int:
        """The limit of the route this request goes to."""
        method, path = scope.get("method"), str(scope.get("path", ""))
        root = str(scope.get("root_path", ""))
        if root and path.startswith(root):
            path = path[len(root) :]  # as routing sees it behind a prefix (`--root-path`)
        for route_method, pattern, limit in self.larger:
            if method == route_method and pattern.match(path):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.limit_for(scope)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            problem = ProblemException(413, "content_too_large", TOO_LARGE)
            await problem_response(scope, problem)(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    # Raised inside body parsing; FastAPI re-raises HTTPException to the handlers.
                    raise HTTPException(413, TOO_LARGE)
            return message

        await self.app(scope, counting_receive, send)


TOO_LARGE = "The request body is too large."
UNSAFE_TEXT = "must not contain NUL characters or unpaired surrogates"


def _unsafe(text: str) -> bool:
    """NUL cannot be stored by PostgreSQL, and a lone surrogate cannot be encoded as UTF-8."""
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _unsafe_fields(value: Any, path: str) -> list[str]:
    if isinstance(value, str):
        return [path or "body"] if _unsafe(value) else []
    if isinstance(value, dict):
        found: list[str] = []
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            found += [name] if _unsafe(str(key)) else _unsafe_fields(item, name)
        return found
    if isinstance(value, list):
        return [f for i, item in enumerate(value) for f in _unsafe_fields(item, f"{path}[{i}]")]
    return []


class SafeText:
    """Refuses text no service could store (NUL, unpaired surrogates) with a 400 problem naming
    the field, in the path, the query or a JSON body, before any route sees it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        bad: list[str] = []
        if _unsafe(scope.get("path", "")):
            bad.append("path")
        query = unquote_plus(scope.get("query_string", b"").decode("latin-1"))
        if "\x00" in query:
            bad.append("query")
        content_type = Headers(scope=scope).get("content-type", "")
        if not bad and "json" not in content_type:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more and not bad:
            try:
                message = await receive()
            except HTTPException as refused:  # BodyLimit, outside, stopped an oversized body
                problem = ProblemException(refused.status_code, "content_too_large", refused.detail)
                await problem_response(scope, problem)(scope, receive, send)
                return
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        if not bad:
            try:
                bad = _unsafe_fields(json.loads(body), "") if body else []
            except ValueError:
                bad = []  # Malformed JSON: FastAPI reports it as a validation problem.
        if bad:
            problem = validation_problem([(field, UNSAFE_TEXT, "unsafe_text") for field in bad])
            await problem_response(scope, problem)(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
