"""The OpenAPI document: every error response declared as `application/problem+json`.

Routes declare their failures with `errors(400, 404, …)`. FastAPI files models under
`application/json` and adds a 422 response the gateway never sends, so `openapi_schema` moves
problem responses to their real media type and drops the 422s and their schemas.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from services.gateway import idempotency
from services.gateway.problems import PROBLEM_MEDIA_TYPE, Problem

_DESCRIPTIONS = {
    400: "Invalid input: `errors` names each bad field.",
    401: "Missing, invalid or expired credentials (see WWW-Authenticate).",
    403: "The caller is not allowed to do this.",
    404: "No such resource, or not one the caller may see.",
    409: "Conflicts with the current state (already exists, already done, not yet allowed).",
    413: "The request body is too large.",
    429: "Too many attempts: wait for Retry-After seconds.",
    500: "Unexpected failure; quote request_id when reporting it.",
    501: "Not available on this server.",
    503: "A back-end service is unavailable; retry after Retry-After seconds.",
    504: "A back-end service did not answer in time.",
}
# Any route that reaches identity can meet these.
_UPSTREAM = (500, 503, 504)


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: the given problem statuses plus the upstream failures."""
    return {
        code: {"model": Problem, "description": _DESCRIPTIONS[code]}
        for code in sorted({*codes, *_UPSTREAM})
    }


def _problem_ref(content: dict[str, Any]) -> bool:
    schema = content.get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/Problem"))


def _declare_edge_refusals(operation: dict[str, Any]) -> None:
    """What the edge itself answers before any route runs, declared on every operation it can
    reach: 400 when a parameter or the body is malformed, 413 when a body is too large."""
    responses: dict[str, Any] = operation.setdefault("responses", {})
    problem = next(
        (r["content"] for c, r in responses.items() if c.isdigit() and int(c) >= 500), None
    )
    if problem is None:
        return
    wanted = []
    if operation.get("parameters") or operation.get("requestBody"):
        wanted.append(400)
    if operation.get("requestBody"):
        wanted.append(413)
    for code in wanted:
        responses.setdefault(
            str(code), {"description": _DESCRIPTIONS[code], "content": dict(problem)}
        )


def openapi_schema(app: FastAPI) -> dict[str, Any]:
    """Builds (once) the document FastAPI would, with problem media types fixed."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            responses: dict[str, Any] = operation.get("responses", {})
            responses.pop("422", None)
            for code, response in responses.items():
                content = response.get("content", {})
                if code.isdigit() and int(code) >= 400 and _problem_ref(content):
                    response["content"] = {PROBLEM_MEDIA_TYPE: content["application/json"]}
            _declare_edge_refusals(operation)
    idempotency.declare(document)  # Idempotency-Key on every keyed POST (the writes helper)
    schemas = document.get("components", {}).get("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    app.openapi_schema = document
    return document
