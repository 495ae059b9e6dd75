"""Every failure is an RFC 9457 problem: gRPC status, validation, routing, the unexpected."""

from __future__ import annotations

from typing import Any

import grpc
import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from services.gateway.problems import GRPC_TO_HTTP, PROBLEM_TYPE_BASE, field_name
from services.kit.ports import free_port
from services.kit.testing import wait_until
from tests.gateway.conftest import (
    SECRET_DETAIL,
    ClientFactory,
    RefusingServer,
    SigningKeys,
    gateway_client,
)

USER_ID = "6f1c2a4e-8b3d-4c5e-9f70-1a2b3c4d5e6f"

# gRPC code → (HTTP status, problem type suffix) as the refusing server produces them.
EXPECTED: dict[str, tuple[int, str]] = {
    "CANCELLED": (503, "unavailable"),
    "UNKNOWN": (500, "internal"),
    "INVALID_ARGUMENT": (400, "invalid_argument"),
    "DEADLINE_EXCEEDED": (504, "deadline_exceeded"),
    "NOT_FOUND": (404, "user_not_found"),
    "ALREADY_EXISTS": (409, "username_taken"),
    "PERMISSION_DENIED": (403, "permission_denied"),
    "RESOURCE_EXHAUSTED": (429, "resource_exhausted"),
    "FAILED_PRECONDITION": (409, "failed_precondition"),
    "ABORTED": (409, "aborted"),
    "OUT_OF_RANGE": (400, "out_of_range"),
    "UNIMPLEMENTED": (501, "not_implemented"),
    "INTERNAL": (500, "internal"),
    "UNAVAILABLE": (503, "unavailable"),
    "DATA_LOSS": (500, "internal"),
    "UNAUTHENTICATED": (401, "unauthenticated"),
}


def assert_problem(response: httpx.Response, status: int, *, traced: bool = True) -> dict[str, Any]:
    """The common shape: media type, every member, ids, and nothing internal."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith(PROBLEM_TYPE_BASE)
    assert body["title"] and body["detail"]
    assert body["instance"] == response.request.url.path
    assert body["request_id"] == response.headers["x-request-id"]
    if traced:  # probes are not traced
        assert len(body["trace_id"]) == 32
    for leak in ("Traceback", 'File "', "grpc", "AioRpcError"):
        assert leak not in response.text
    return body


def test_every_grpc_code_has_an_expectation() -> None:
    assert set(EXPECTED) == {c.name for c in grpc.StatusCode if c is not grpc.StatusCode.OK}


@pytest.mark.parametrize("code", sorted(EXPECTED))
async def test_grpc_status_maps_to_http(code: str, client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/password/forgot", json={"login": code})
    status, reason = EXPECTED[code]
    body = assert_problem(response, status)
    assert body["type"] == PROBLEM_TYPE_BASE + reason
    if status >= 500:
        # Whatever the back end said stays in the logs.
        assert SECRET_DETAIL not in response.text
        assert "10.0.0.7" not in response.text
        assert (
            "request id" in body["detail"]
            or "Try again" in body["detail"]
            or "not available" in body["detail"]
        )
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
    if status in (429, 503):
        assert int(response.headers["retry-after"]) >= 1


async def test_field_violations_become_errors(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/password/forgot", json={"login": "INVALID_ARGUMENT"})
    body = assert_problem(response, 400)
    # Codes a schema states (the service's FieldViolation.reason): the request broke it, 400.
    assert body["errors"] == [
        {"field": "login", "code": "missing", "detail": "is required"},
        {"field": "profile.first_name", "code": "string_too_long", "detail": "is too long"},
    ]


async def test_retry_after_comes_from_retry_info(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/password/forgot", json={"login": "RESOURCE_EXHAUSTED"})
    assert_problem(response, 429)
    assert response.headers["retry-after"] == "42"


async def test_safe_upstream_message_is_the_detail(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/password/forgot", json={"login": "PERMISSION_DENIED"})
    assert assert_problem(response, 403)["detail"] == "only an association admin may do this"


async def test_profile_violations_are_named_as_in_the_body(
    client: httpx.AsyncClient, keys: SigningKeys
) -> None:
    response = await client.put(
        "/v1/me/profile",
        json={
            "first_name": "Jean",
            "last_name": "Dupont",
            "phone": "+33 6 12 34 56 78",
            "address_line": "12 rue de la République",
            "postal_code": "83000",
            "city": "Toulon",
            "birth_date": "2999-01-01",
        },
        headers={"authorization": f"Bearer {keys.token()}"},
    )
    # A rule no schema states (a date not in the future): 422, the same problem shape.
    body = assert_problem(response, 422)
    assert body["type"] == PROBLEM_TYPE_BASE + "unprocessable"
    assert body["errors"] == [
        {"field": "birth_date", "code": "in_the_future", "detail": "is in the future"}
    ]


async def test_slow_identity_is_a_504(client_for: ClientFactory) -> None:
    async with client_for(grpc_default_timeout=0.3) as client:
        response = await client.post("/v1/password/forgot", json={"login": "SLOW"})
    assert assert_problem(response, 504)["type"].endswith("/deadline_exceeded")


async def test_unreachable_identity_is_a_503(span_exporter: InMemorySpanExporter) -> None:
    async with gateway_client(f"127.0.0.1:{free_port()}", grpc_default_timeout=1.0) as client:
        response = await client.post("/v1/password/forgot", json={"login": "someone"})
        assert_problem(response, 503)
        assert response.headers["retry-after"] == "1"
        ready = await client.get("/readyz")
        assert assert_problem(ready, 503, traced=False)["type"].endswith("/not_ready")


async def test_unexpected_error_is_a_generic_500(
    client: httpx.AsyncClient, refusing_identity: RefusingServer, keys: SigningKeys
) -> None:
    refusing_identity.servicer.jwks_json = "{not json"
    response = await client.get(
        "/v1/me",
        headers={"authorization": f"Bearer {keys.token()}", "origin": "http://localhost:5173"},
    )
    body = assert_problem(response, 500)
    assert body["type"] == PROBLEM_TYPE_BASE + "internal"
    assert "JSON" not in response.text and "Expecting" not in response.text
    # Still carries the edge's headers: a browser can read it, logs can find it.
    assert response.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_problem_trace_id_is_the_request_trace(
    client: httpx.AsyncClient, span_exporter: InMemorySpanExporter
) -> None:
    response = await client.post("/v1/password/forgot", json={"login": "NOT_FOUND"})
    trace_id = assert_problem(response, 404)["trace_id"]

    def in_trace() -> list[ReadableSpan]:
        spans = span_exporter.get_finished_spans()
        return [s for s in spans if format(s.context.trace_id, "032x") == trace_id]

    # The gateway's span of the request, and its gRPC client span to identity, in that trace:
    # the call failed (NOT_FOUND), and a failed call's client span was once never ended, so never
    # exported. This test then passed only on identity's server span (the fake identity runs in
    # this process), which ends after the status is sent and was missing once under load. Both
    # spans end before the response is written; the wait only covers an exporter that batches.
    def exported() -> tuple[ReadableSpan, ReadableSpan] | None:
        spans = in_trace()
        requests = [s for s in spans if s.name == "POST /v1/password/forgot"]
        calls = [s for s in spans if s.kind is SpanKind.CLIENT and "RequestPasswordReset" in s.name]
        return (requests[0], calls[0]) if requests and calls else None

    request, call = await wait_until(
        exported, what=f"the request's and its gRPC client span in trace {trace_id}", within=5
    )
    assert request.kind is SpanKind.SERVER
    assert call.parent is not None
    assert call.status.status_code is StatusCode.ERROR
    assert call.attributes is not None
    assert call.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]


# --- request validation ----------------------------------------------------------------------


async def test_missing_fields_are_each_named(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/registrations", json={"username": "dupont.jean"})
    body = assert_problem(response, 400)
    assert body["type"] == PROBLEM_TYPE_BASE + "invalid_argument"
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"organisation_id", "email", "password", "first_name", "last_name"}
    assert all(e["detail"] == "Field required" for e in body["errors"])


async def test_wrong_types_are_named_without_echoing_input(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/registrations",
        json={
            "organisation_id": "not-a-uuid",
            "username": ["x"],
            "email": "jean@example.org",
            "password": 12345678,
            "first_name": "Jean",
            "last_name": "Dupont",
        },
    )
    body = assert_problem(response, 400)
    assert {e["field"] for e in body["errors"]} == {"organisation_id", "username", "password"}
    assert "12345678" not in response.text


async def test_unknown_fields_are_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/password/forgot", json={"login": "x", "lgoin": "y"})
    assert assert_problem(response, 400)["errors"] == [
        {"field": "lgoin", "code": "extra_forbidden", "detail": "Extra inputs are not permitted"}
    ]


@pytest.mark.parametrize(
    ("content", "headers", "detail"),
    [
        (b"{not json", {"content-type": "application/json"}, "is not valid JSON"),
        (b"", {"content-type": "application/json"}, "is required (Content-Type: application/json)"),
        (b"[1, 2]", {"content-type": "application/json"}, "must be a JSON object"),
        (b'{"login": "x"}', {"content-type": "text/plain"}, "must be a JSON object"),
    ],
)
async def test_body_that_is_not_a_json_object(
    client: httpx.AsyncClient, content: bytes, headers: dict[str, str], detail: str
) -> None:
    response = await client.post("/v1/password/forgot", content=content, headers=headers)
    [error] = assert_problem(response, 400)["errors"]
    assert error["field"] == "body"
    assert error["detail"].startswith(detail)


async def test_nested_and_list_fields_are_dotted(
    client: httpx.AsyncClient, keys: SigningKeys
) -> None:
    response = await client.post(
        "/v1/organisations/6f1c2a4e-8b3d-4c5e-9f70-1a2b3c4d5e6f/accounts",
        json={
            "username": "martin.m",
            "email": "m@example.org",
            "first_name": "M",
            "last_name": "N",
            "roles": ["member", 7],
        },
        headers={"authorization": f"Bearer {keys.token()}"},
    )
    [error] = assert_problem(response, 400)["errors"]
    assert (error["field"], error["code"]) == ("roles[1]", "enum")  # roles are identity's names


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("GET", "/v1/accounts/not-a-uuid", "user_id"),
        ("POST", "/v1/accounts/123/validate", "user_id"),
        ("GET", "/v1/organisations/abc", "organisation_id"),
        ("GET", "/v1/organisations/abc/accounts/to-validate", "organisation_id"),
        ("DELETE", f"/v1/accounts/{USER_ID}/roles/nope/member", "organisation_id"),
        ("DELETE", f"/v1/accounts/{USER_ID}/roles/{USER_ID}/Not%20A%20Role", "role"),
        ("GET", "/v1/organisations?kind=castle", "kind"),
        ("GET", "/v1/organisations?page_size=0", "page_size"),
        ("GET", "/v1/organisations?page_size=many", "page_size"),
    ],
)
async def test_bad_path_and_query_parameters_are_named(
    client: httpx.AsyncClient, keys: SigningKeys, method: str, path: str, field: str
) -> None:
    response = await client.request(
        method, path, headers={"authorization": f"Bearer {keys.token()}"}
    )
    body = assert_problem(response, 400)
    assert [e["field"] for e in body["errors"]] == [field]


async def test_oversized_body_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/password/forgot", json={"login": "x" * 100_000})
    assert assert_problem(response, 413)["type"] == PROBLEM_TYPE_BASE + "content_too_large"


async def test_oversized_streamed_body_is_refused(client: httpx.AsyncClient) -> None:
    async def chunks() -> Any:
        for _ in range(100):
            yield b"x" * 1024

    response = await client.post(
        "/v1/password/forgot", content=chunks(), headers={"content-type": "application/json"}
    )
    assert assert_problem(response, 413)["type"] == PROBLEM_TYPE_BASE + "content_too_large"


# --- routing ---------------------------------------------------------------------------------


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nowhere")
    assert assert_problem(response, 404)["type"] == PROBLEM_TYPE_BASE + "not_found"


async def test_wrong_method_is_a_405_problem_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/auth/token")
    assert assert_problem(response, 405)["type"] == PROBLEM_TYPE_BASE + "method_not_allowed"
    assert "POST" in response.headers["allow"]


# --- units -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loc", "name"),
    [
        (("body", "email"), "email"),
        (("body", "profile", "first_name"), "profile.first_name"),
        (("body", "roles", 0), "roles[0]"),
        (("body", "items", 2, "name"), "items[2].name"),
        (("path", "user_id"), "user_id"),
        (("query", "page_size"), "page_size"),
        (("body",), "body"),
    ],
)
def test_field_name(loc: tuple[Any, ...], name: str) -> None:
    assert field_name(loc) == name


def test_table_covers_the_statuses_the_house_rules_name() -> None:
    for code in ("INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS", "FAILED_PRECONDITION"):
        assert grpc.StatusCode[code] in GRPC_TO_HTTP
