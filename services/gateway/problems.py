"""RFC 9457 problem details: the only error shape a client of the gateway ever sees.

Every failure funnels through here: gRPC status from identity, request validation, routing misses,
the gateway's own refusals (authentication, rate limit) and unexpected errors. The gRPC → HTTP
table is `GRPC_TO_HTTP`; docs/gateway.md explains each choice. Server-side failures get a generic
detail (the real cause is logged with the request and trace ids), so nothing internal leaks.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, get_args

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry import trace
from pydantic import BaseModel, ConfigDict, Field
from pydantic_core.core_schema import ErrorType
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from services.kit.errors import INVALID, RemoteProblem

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://guichet.dev/problems/"
# A reason becomes part of a URL: keep it to a safe, stable alphabet.
_REASON = re.compile(r"[a-z][a-z0-9_.-]{0,63}")


class FieldProblem(BaseModel):
    """One invalid input: the field's path in the request as the client sent it, a stable code
    naming the rule it breaks, an English sentence, and the rule's parameters."""

    field: str = Field(
        description="The field's path in the request: `email`, `address.city`, `employee_ids[0]`;"
        " `body` for the body as a whole.",
        examples=["email"],
    )
    code: str = Field(
        description="Stable machine code of the rule (the document's `x-field-codes` lists them"
        "): pydantic's error type where the gateway checked the shape (`missing`, "
        "`string_too_long`…), the service's rule otherwise (`in_the_past`…).",
        examples=["value_error"],
    )
    detail: str = Field(
        description="What is wrong, in English; show a text chosen by `code` to people.",
        examples=["value is not a valid email address"],
    )
    params: dict[str, str | int | float | bool] | None = Field(
        default=None,
        description="The rule's parameters (`max_length`, `min_length`, `pattern`, `expected`…),"
        " when it has some.",
        examples=[{"max_length": 100}],
    )


@dataclass(frozen=True)
class FieldError:
    """One field violation on its way into a problem document."""

    field: str
    detail: str
    code: str = "invalid"
    params: Mapping[str, str | int | float | bool] | None = None

    def model(self) -> FieldProblem:
        return FieldProblem(
            field=self.field,
            code=self.code,
            detail=self.detail,
            params=dict(self.params) if self.params else None,
        )


class Problem(BaseModel):
    """RFC 9457 problem details, with the ids that find the request in logs and traces."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "https://guichet.dev/problems/invalid_argument",
                    "title": "Bad Request",
                    "status": 400,
                    "detail": "2 fields are invalid: email, password",
                    "instance": "/v1/registrations",
                    "request_id": "0b6f3c1e9a4d4a7f8e2b5c6d7e8f9a0b",
                    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                    "errors": [
                        {
                            "field": "email",
                            "code": "value_error",
                            "detail": "value is not a valid email address",
                        },
                        {"field": "password", "code": "missing", "detail": "Field required"},
                    ],
                }
            ]
        }
    )

    type: str = Field(description="URI naming the kind of problem; stable, safe to switch on.")
    title: str = Field(description="Short summary of the kind of problem (the HTTP reason).")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong with this request, for a human.")
    instance: str = Field(description="The path of the request.")
    request_id: str | None = Field(default=None, description="Echoes the X-Request-ID header.")
    trace_id: str | None = Field(default=None, description="OpenTelemetry trace id (32 hex).")
    errors: list[FieldProblem] | None = Field(
        default=None, description="Every invalid field, on 400 responses."
    )


class ProblemException(Exception):
    """A refusal the gateway answers with a problem document (raise it from anywhere)."""

    def __init__(
        self,
        status: int,
        reason: str,
        detail: str,
        *,
        errors: Iterable[FieldError | tuple[str, str] | tuple[str, str, str]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail
        self.errors = [e if isinstance(e, FieldError) else FieldError(*e) for e in errors]
        self.headers = dict(headers or {})


@dataclass(frozen=True)
class StatusMapping:
    """How one gRPC code reaches HTTP; `generic_detail` replaces the upstream message when set."""

    status: int
    reason: str
    generic_detail: str | None = None


_INTERNAL = "The server could not complete the request. Quote the request id when reporting it."

# The gRPC → HTTP table (docs/gateway.md, "Errors"). Codes not listed answer 500.
GRPC_TO_HTTP: dict[grpc.StatusCode, StatusMapping] = {
    grpc.StatusCode.INVALID_ARGUMENT: StatusMapping(400, "invalid_argument"),
    grpc.StatusCode.OUT_OF_RANGE: StatusMapping(400, "out_of_range"),
    grpc.StatusCode.UNAUTHENTICATED: StatusMapping(401, "unauthenticated"),
    grpc.StatusCode.PERMISSION_DENIED: StatusMapping(403, "permission_denied"),
    grpc.StatusCode.NOT_FOUND: StatusMapping(404, "not_found"),
    grpc.StatusCode.ALREADY_EXISTS: StatusMapping(409, "already_exists"),
    # The request is well-formed but the resource is not in a state that allows it.
    grpc.StatusCode.FAILED_PRECONDITION: StatusMapping(409, "failed_precondition"),
    grpc.StatusCode.ABORTED: StatusMapping(409, "aborted"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: StatusMapping(429, "resource_exhausted"),
    grpc.StatusCode.UNIMPLEMENTED: StatusMapping(
        501, "not_implemented", "This operation is not available on this server."
    ),
    grpc.StatusCode.UNAVAILABLE: StatusMapping(
        503, "unavailable", "A back-end service is unavailable. Try again shortly."
    ),
    grpc.StatusCode.CANCELLED: StatusMapping(
        503, "unavailable", "A back-end service stopped the request. Try again shortly."
    ),
    grpc.StatusCode.DEADLINE_EXCEEDED: StatusMapping(
        504, "deadline_exceeded", "A back-end service did not answer in time. Try again shortly."
    ),
}
_FALLBACK = StatusMapping(500, "internal", _INTERNAL)
# INVALID_ARGUMENT whose every violation is a rule beyond the schema (problem_from_rpc_error).
_UNPROCESSABLE = StatusMapping(422, "unprocessable")

# Seconds a client should wait after a 503 before it retries.
_UNAVAILABLE_RETRY_AFTER = "1"


def bearer_challenge(error: str | None = None, description: str | None = None) -> str:
    """The WWW-Authenticate value of RFC 6750 (quotes stripped from the free text)."""
    parts = ['Bearer realm="guichet"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append('error_description="{}"'.format(description.replace('"', "'")))
    return ", ".join(parts)


# Codes that name a rule JSON Schema states: pydantic's error types (what the gateway itself
# answers when a request breaks its schema) and the kit's code of a rule without a code yet.
SCHEMA_CODES: frozenset[str] = frozenset(get_args(ErrorType)) | {
    INVALID,
    "unique_items",
    "content_type",  # a media type the operation does not declare
}


# Every list takes its page as query parameters of their own name.
_PAGE_FIELDS = {"page.page_token": "page_token", "page.page_size": "page_size"}


def is_schema_code(code: str) -> bool:
    return code in SCHEMA_CODES


def problem_from_rpc_error(
    error: grpc.aio.AioRpcError,
    *,
    field_prefix: str = "",
    rename: Callable[[str], str] | None = None,
) -> ProblemException:
    """Maps a failed service call: status by code, type by ErrorInfo reason, fields by BadRequest.

    `field_prefix` is removed from violation names where the JSON body is flatter than the proto
    message (`profile.first_name` → `first_name`); `rename` maps a proto field path to the
    request's own (`assign[0].employee_id` → `employee_ids[0]`).

    INVALID_ARGUMENT is 400 when a violation's code is a rule the published schema states (the
    schema should have said it: the client can know before sending) and **422** when every
    violation is a rule JSON Schema cannot state (a date in the future, an end after a start),
    written in the field's description instead.
    """
    remote = RemoteProblem.from_rpc_error(error)
    mapping = GRPC_TO_HTTP.get(remote.code, _FALLBACK)
    if (
        mapping.status == 400
        and remote.violations
        and not any(is_schema_code(code) for code in remote.codes)
    ):
        mapping = _UNPROCESSABLE
    reason = mapping.reason
    if (
        remote.reason
        and _REASON.fullmatch(remote.reason)
        and mapping.generic_detail is None
        and not (mapping is _UNPROCESSABLE and remote.reason == "invalid_argument")
    ):
        reason = remote.reason
    if mapping.generic_detail is not None:
        # Upstream text may name hosts, SQL or stack frames: log it, never show it.
        log.warning(
            "identity call failed",
            extra={"grpc_code": remote.code.name, "grpc_message": remote.message},
        )
        detail = mapping.generic_detail
    else:
        detail = remote.message or HTTPStatus(mapping.status).phrase
    headers: dict[str, str] = {}
    if mapping.status == 401:
        # Identity refused the credentials (password or token); RFC 9110 wants a challenge.
        headers["WWW-Authenticate"] = bearer_challenge()
    elif mapping.status == 429:
        headers["Retry-After"] = str(max(remote.retry_after_seconds or 1, 1))
    elif mapping.status == 503:
        headers["Retry-After"] = _UNAVAILABLE_RETRY_AFTER
    errors = []
    if mapping.status in (400, 422):
        for field, why, code in remote.coded():
            name = field.removeprefix(field_prefix) if field_prefix else field
            name = _PAGE_FIELDS.get(name, name)
            errors.append(FieldError(rename(name) if rename else name, why, code))
    return ProblemException(mapping.status, reason, detail, errors=errors, headers=headers)


def current_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def request_id_of(scope: Scope) -> str | None:
    state = scope.get("state") or {}
    value = state.get("request_id")
    return value if isinstance(value, str) else None


def problem_response(scope: Scope, problem: ProblemException) -> JSONResponse:
    """Renders a problem for the request described by `scope` (usable from plain ASGI code)."""
    try:
        title = HTTPStatus(problem.status).phrase
    except ValueError:
        title = "Error"
    body = Problem(
        type=PROBLEM_TYPE_BASE + problem.reason,
        title=title,
        status=problem.status,
        detail=problem.detail,
        instance=str(scope.get("path", "")),
        request_id=request_id_of(scope),
        trace_id=current_trace_id(),
        errors=[e.model() for e in problem.errors] or None,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=problem.status,
        headers=problem.headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def internal_error_response(scope: Scope) -> JSONResponse:
    return problem_response(scope, ProblemException(500, "internal", _INTERNAL))


def field_name(loc: Sequence[Any]) -> str:
    """`("body", "profile", "first_name")` → `profile.first_name`; list indexes as `roles[0]`."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else str(part)
    return name or "body"


def _params(context: object) -> dict[str, str | int | float | bool] | None:
    """A pydantic error's `ctx` as JSON parameters (objects such as exceptions are left out)."""
    if not isinstance(context, Mapping):
        return None
    kept = {
        str(key): value
        for key, value in context.items()
        if isinstance(value, str | int | float | bool) and key != "error"
    }
    return kept or None


def _validation_errors(exc: RequestValidationError) -> list[FieldError]:
    errors: list[FieldError] = []
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        code = str(error.get("type", "value_error"))
        if code == "json_invalid":
            errors.append(FieldError("body", "is not valid JSON", code))
            continue
        if loc == ("body",) or code == "model_attributes_type":
            # The whole body is missing, or not a JSON object (or not sent as JSON).
            why = "is required" if code == "missing" else "must be a JSON object"
            errors.append(FieldError("body", f"{why} (Content-Type: application/json)", code))
            continue
        errors.append(
            FieldError(
                field_name(loc),
                str(error.get("msg", "is invalid")),
                code,
                _params(error.get("ctx")),
            )
        )
    return errors


def validation_problem(errors: Sequence[FieldError | tuple[str, str, str]]) -> ProblemException:
    coded = [e if isinstance(e, FieldError) else FieldError(*e) for e in errors]
    names = list(dict.fromkeys(e.field for e in coded))
    noun = "field is" if len(names) == 1 else "fields are"
    detail = f"{len(names)} {noun} invalid: {', '.join(names)}"
    return ProblemException(400, "invalid_argument", detail, errors=coded)


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemException)
    if exc.status >= 500 and exc.reason != "not_ready":  # probes fail quietly while starting
        log.warning(
            "request refused by the gateway",
            extra={
                "status": exc.status,
                "reason": exc.reason,
                "request_id": request_id_of(request.scope),
            },
        )
    return problem_response(request.scope, exc)


async def _on_rpc_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, grpc.aio.AioRpcError)
    return problem_response(request.scope, problem_from_rpc_error(exc))


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return problem_response(request.scope, validation_problem(_validation_errors(exc)))


# Stable names whatever Python's HTTPStatus phrase says (413 was renamed in 3.13).
_ROUTING_REASON = {
    404: "not_found",
    405: "method_not_allowed",
    413: "content_too_large",
    415: "unsupported_media_type",
}
_ROUTING_DETAIL = {
    404: "No resource at this path.",
    405: "This method is not allowed on this path.",
    413: "The request body is too large.",
    415: "Send the body as application/json.",
}


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    """Routing misses and framework refusals (404, 405, 413…) as problems, headers kept."""
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    reason = _ROUTING_REASON.get(status) or (
        re.sub(r"[^a-z0-9]+", "_", phrase.lower()).strip("_") or "error"
    )
    if status >= 500:
        detail = _INTERNAL
    else:
        detail = _ROUTING_DETAIL.get(status) or (
            exc.detail if isinstance(exc.detail, str) else phrase
        )
    headers = dict(exc.headers or {})
    if status == 405:
        headers["Allow"] = allowed_methods(request)
    problem = ProblemException(status, reason, detail, headers=headers)
    return problem_response(request.scope, problem)


def allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (routing stops at the first route whose path
    matches, so its own `Allow` names that route's methods only)."""
    path = request.scope.get("path", "")
    methods: set[str] = set()
    routes = list(request.app.router.routes)
    while routes:
        route = routes.pop()
        included = getattr(route, "original_router", None)  # our routers carry no prefix
        if included is not None:
            routes.extend(included.routes)
            continue
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path) and getattr(route, "methods", None):
            methods |= set(route.methods)
    return ", ".join(sorted(methods))


def install_problem_handlers(app: FastAPI) -> None:
    """Registers the handlers; unexpected exceptions are caught by `middleware.ErrorBoundary`."""
    app.add_exception_handler(ProblemException, _on_problem)
    app.add_exception_handler(grpc.aio.AioRpcError, _on_rpc_error)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
