"""The OpenAPI document: what a generated client, a fuzzer and a linter take whole.

Routes declare their own failures with `errors(400, 404, …)`; `openapi_schema` then completes
every operation with what the edge answers on its own, so the document says every status, header
and rule a client can meet (docs/gateway.md, "Conventions"):

* problem responses under `application/problem+json` (FastAPI's 422 and `HTTPValidationError`,
  which describe its default validation answer, are replaced by ours);
* 401 and 403 on every authenticated operation, 404 on every operation with a path id, 400 and 422
  on every operation taking input, 413 on every body; `security: []` on the public ones;
* the response headers: `X-Request-ID` on every answer, `WWW-Authenticate` on 401, `Retry-After`
  on 429 and 503, `Location` on the 202s of background work;
* a description on every operation, `servers`, `links` between the operations of a chain;
* `x-problem-types` (every refusal: type, reason, status, title) and `x-field-codes` (every code
  of `errors[].code`), which clients and the portal's translations enumerate.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from services.gateway.problem_types import FIELD_CODES, PROBLEM_TYPES
from services.gateway.problems import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE_BASE, Problem

_DESCRIPTIONS = {
    400: "The request breaks the published schema: `errors` names each bad field, with its code.",
    401: "Missing, invalid or expired credentials (see WWW-Authenticate).",
    403: "The caller is not allowed to do this.",
    404: "No such resource, or not one the caller may see.",
    409: "Conflicts with the current state (already exists, already done, not yet allowed).",
    413: "The request body is too large.",
    415: "The body's media type is not one this operation takes.",
    422: "The request fits the schema but a rule the schema cannot state refuses it (a date that "
    "must be in the future, an end before its start, an id that names nothing usable): `errors` "
    "names each field, with its code; the field's description states the rule.",
    429: "Too many attempts: wait for Retry-After seconds.",
    500: "Unexpected failure; quote request_id when reporting it.",
    501: "Not available on this server.",
    503: "A back-end service is unavailable; retry after Retry-After seconds.",
    504: "A back-end service did not answer in time.",
}
# Any route that reaches a service can meet these.
_UPSTREAM = (500, 503, 504)

HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "The request's id: the one sent when it was 8 to 128 characters of "
        "`[A-Za-z0-9._:-]`, else a fresh one. Quote it when reporting a problem.",
        "required": True,
        "schema": {"type": "string", "minLength": 8, "maxLength": 128},
    },
    "WWW-Authenticate": {
        "description": 'The bearer challenge of RFC 6750: `Bearer realm="guichet"`, with '
        "`error` and `error_description` when a token was sent and refused.",
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 1},
    },
    "Location": {
        "description": "The path of the process request that carries the work on: read it for "
        "progress (`GET` answers its status), then its failures.",
        "schema": {"type": "string", "format": "uri-reference"},
    },
}

SERVERS = [{"url": "/", "description": "The gateway serving this document (same origin)."}]

# The chains a client follows: (operation, status) → links of its answer.
_PROCESS_REQUEST = {
    "provider_id": "$request.path.provider_id",
    "process_request_id": "$response.body#/id",
}
LINKS: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("createGroup", "201"): {
        "getGroup": {
            "operationId": "getGroup",
            "parameters": {
                "provider_id": "$request.path.provider_id",
                "group_id": "$response.body#/id",
            },
            "description": "The group just created.",
        },
        "saveGroupChanges": {
            "operationId": "saveGroupChanges",
            "parameters": {
                "provider_id": "$request.path.provider_id",
                "group_id": "$response.body#/id",
            },
            "description": "Add clients and assign employees: answers the process requests.",
        },
    },
    ("saveGroupChanges", "202"): {
        "getProcessRequest": {
            "operationId": "getProcessRequest",
            "parameters": {
                "provider_id": "$request.path.provider_id",
                "process_request_id": "$response.body#/process_requests/0/id",
            },
            "description": "The first process request applying the change (Location).",
        },
    },
    ("assignEmployees", "202"): {
        "getProcessRequest": {
            "operationId": "getProcessRequest",
            "parameters": {
                "provider_id": "$request.path.provider_id",
                "process_request_id": "$response.body#/process_requests/0/id",
            },
            "description": "The process request giving the employees access (Location).",
        },
    },
    ("deleteGroup", "202"): {
        "getProcessRequest": {
            "operationId": "getProcessRequest",
            "parameters": _PROCESS_REQUEST,
            "description": "The process request revoking the group's access (Location).",
        },
    },
    ("getProcessRequest", "200"): {
        "listProcessRequestFailures": {
            "operationId": "listProcessRequestFailures",
            "parameters": _PROCESS_REQUEST,
            "description": "The program accounts it could not update.",
        },
        "retryProcessRequest": {
            "operationId": "retryProcessRequest",
            "parameters": _PROCESS_REQUEST,
            "description": "Try the failed program accounts again.",
        },
    },
    ("retryProcessRequest", "202"): {
        "getProcessRequest": {
            "operationId": "getProcessRequest",
            "parameters": _PROCESS_REQUEST,
            "description": "The retried process request (Location).",
        },
    },
    ("openTicket", "201"): {
        "getTicket": {
            "operationId": "getTicket",
            "parameters": {"ticket_id": "$response.body#/id"},
            "description": "The ticket just opened.",
        },
        "reply": {
            "operationId": "reply",
            "parameters": {"ticket_id": "$response.body#/id"},
            "description": "Add a message to the ticket.",
        },
    },
    ("submitClaim", "201"): {
        "getClaim": {
            "operationId": "getClaim",
            "parameters": {
                "workshop_id": "$request.path.workshop_id",
                "claim_id": "$response.body#/id",
            },
            "description": "The claim just submitted.",
        },
        "transitionClaim": {
            "operationId": "transitionClaim",
            "parameters": {
                "workshop_id": "$request.path.workshop_id",
                "claim_id": "$response.body#/id",
            },
            "description": "Move the claim on (approve, reject, pay…).",
        },
    },
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: the given problem statuses plus the upstream failures."""
    return {
        code: {"model": Problem, "description": _DESCRIPTIONS[code]}
        for code in sorted({*codes, *_UPSTREAM})
    }


def _problem_ref(content: dict[str, Any]) -> bool:
    schema = content.get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/Problem"))


def _header(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/headers/{name}"}


_PROBLEM_CONTENT = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def _complete_statuses(operation: dict[str, Any], *, has_path_ids: bool) -> None:
    """What the edge and every service can answer, declared where it can happen."""
    responses: dict[str, Any] = operation.setdefault("responses", {})
    reaches_service = any(c.isdigit() and int(c) >= 500 for c in responses)
    if not reaches_service:
        return
    wanted: set[int] = set()
    if operation.get("security") != []:
        wanted |= {401, 403}
    if has_path_ids:
        wanted.add(404)
    if operation.get("parameters") or operation.get("requestBody"):
        wanted |= {400, 422}
    if operation.get("requestBody"):
        wanted.add(413)
    for code in sorted(wanted):
        responses.setdefault(
            str(code),
            {"description": _DESCRIPTIONS[code], "content": copy.deepcopy(_PROBLEM_CONTENT)},
        )


def _add_headers(operation_id: str, responses: dict[str, Any]) -> None:
    for code, response in responses.items():
        headers = response.setdefault("headers", {})
        headers["X-Request-ID"] = _header("X-Request-ID")
        if code == "401":
            headers["WWW-Authenticate"] = _header("WWW-Authenticate")
        elif code in ("429", "503"):
            headers["Retry-After"] = _header("Retry-After")
        elif code == "202" and "content" in response:
            headers["Location"] = _header("Location")
        links = LINKS.get((operation_id, code))
        if links:
            response["links"] = links


def _describe(operation: dict[str, Any], method: str) -> None:
    """A description on every operation: its own docstring first, then what a client must know
    to call it (who may, what it answers, how it fails)."""
    parts = [operation["description"].strip()] if operation.get("description") else []
    if operation.get("security") == []:
        parts.append("Public: no token needed.")
    else:
        parts.append(
            "Needs a bearer access token; the service decides whether this caller may (403), "
            "and answers 404 for what the caller may not see."
        )
    responses = operation.get("responses", {})
    success = sorted(c for c in responses if c.startswith("2"))
    for code in success:
        if code == "202" and "content" in responses[code]:
            parts.append(
                "The work goes on in the background: 202 with the process request(s) carrying "
                "it, and `Location` naming the first."
            )
        elif code == "202":
            parts.append("202: accepted; the outcome arrives by e-mail.")
        elif code == "204":
            parts.append("204: done, no body.")
        elif code == "201":
            parts.append("201: created; the body is the new resource.")
    if "422" in responses:
        parts.append(
            "Rules the schema cannot state (see each field's description) answer 422 with the "
            "same problem shape as 400."
        )
    operation["description"] = "\n\n".join(parts)


def problem_types() -> list[dict[str, Any]]:
    """`x-problem-types`: every refusal the gateway can answer, one entry per (reason, status)."""
    return [
        {"type": PROBLEM_TYPE_BASE + reason, "reason": reason, "status": status, "title": title}
        for (reason, status), title in sorted(PROBLEM_TYPES.items())
    ]


def _fix_problem_media_types(responses: dict[str, Any]) -> None:
    responses.pop("422", None)  # FastAPI's own validation answer, which we never send
    for code, response in responses.items():
        content = response.get("content", {})
        if code.isdigit() and int(code) >= 400 and _problem_ref(content):
            response["content"] = {PROBLEM_MEDIA_TYPE: content["application/json"]}


def _operations(document: dict[str, Any]) -> Iterable[tuple[str, str, dict[str, Any]]]:
    for path, path_item in document.get("paths", {}).items():
        for method, operation in path_item.items():
            if isinstance(operation, dict) and "responses" in operation:
                yield path, method, operation


def openapi_schema(app: FastAPI) -> dict[str, Any]:
    """Builds (once) the document FastAPI would, completed as the module docstring says."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
        servers=SERVERS,
        license_info={"name": "Proprietary", "identifier": "LicenseRef-Guichet"},
    )
    for path, method, operation in _operations(document):
        operation.setdefault("security", [])
        responses: dict[str, Any] = operation["responses"]
        _fix_problem_media_types(responses)
        _complete_statuses(operation, has_path_ids="{" in path)
        _add_headers(operation["operationId"], responses)
        _describe(operation, method)
    components = document.setdefault("components", {})
    schemas = components.get("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    components["headers"] = copy.deepcopy(HEADERS)
    document["x-problem-types"] = problem_types()
    document["x-field-codes"] = sorted(FIELD_CODES)
    app.openapi_schema = document
    return document


def main(argv: list[str] | None = None) -> int:
    """`python -m services.gateway.openapi [--check] PATH`: writes the document the gateway
    serves (built offline, no service reached) to PATH, or fails when PATH is stale."""
    import argparse
    import json
    from pathlib import Path

    from services.gateway.app import create_app
    from services.gateway.settings import GatewaySettings

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("path", type=Path)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    document = create_app(GatewaySettings(identity_addr="127.0.0.1:9")).openapi()
    text = json.dumps(document, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    if args.check:
        if not args.path.exists() or args.path.read_text() != text:
            print(f"{args.path} is stale: run `make proto`")
            return 1
        return 0
    args.path.write_text(text)
    print(f"wrote {args.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
