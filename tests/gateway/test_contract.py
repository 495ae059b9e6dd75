"""The published document says everything a client meets (issue 24): every status, header and
rule, in a shape a generator takes whole. No service runs here: the document is built offline,
and the request models are driven the way FastAPI drives them (Python objects from JSON)."""

from __future__ import annotations

import datetime as dt
import functools
import json
from typing import Any

import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter, ValidationError

from services.gateway.app import create_app
from services.gateway.problem_types import FIELD_CODES, PROBLEM_TYPES
from services.gateway.settings import GatewaySettings
from tests.gateway.refusals import service_field_codes, service_reasons


@functools.cache
def _app() -> Any:
    return create_app(GatewaySettings(identity_addr="127.0.0.1:9"))


@functools.cache
def _document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(json.dumps(_app().openapi()))
    return loaded


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in _document()["paths"].items()
        for method, operation in item.items()
    ]


PUBLIC = {
    "issueToken",
    "completeSecondFactor",
    "passkeyOptions",
    "passkeySignIn",
    "refreshToken",
    "logout",
    "getJwks",
    "getWellKnownJwks",
    "forgotPassword",
    "resetPassword",
    "register",
    "registrationOrganisation",
    "verifyEmail",
    "resendVerification",
    "listPublicTrainings",
    "registerForTraining",
    "requestCoverage",
    "healthz",
    "readyz",
}


def test_public_operations_say_security_none_and_the_others_bearer() -> None:
    for _, path, operation in _operations():
        if operation["operationId"] in PUBLIC:
            assert operation["security"] == [], path
        else:
            assert operation["security"] == [{"bearer": []}], path


def test_every_operation_has_a_description_and_the_document_servers() -> None:
    assert _document()["servers"]
    for _, path, operation in _operations():
        assert operation.get("description", "").strip(), path


def test_every_status_an_operation_can_answer_is_declared() -> None:
    """68 operations answered 403 undeclared, 7 with path ids answered 404 undeclared."""
    for _, path, operation in _operations():
        responses = operation["responses"]
        if operation["tags"] == ["health"] or operation["operationId"] in (
            "getJwks",
            "getWellKnownJwks",
        ):
            continue
        if operation["security"]:
            assert {"401", "403"} <= set(responses), path
        if "{" in path:
            assert "404" in responses, path
        if operation.get("parameters") or operation.get("requestBody"):
            assert {"400", "422"} <= set(responses), path
        for code in ("500", "503", "504"):
            assert code in responses, path


def test_every_response_declares_its_headers() -> None:
    headers = _document()["components"]["headers"]
    assert set(headers) == {
        "X-Request-ID",
        "WWW-Authenticate",
        "Retry-After",
        "Location",
        "Idempotent-Replayed",
    }
    for _, path, operation in _operations():
        keyed = any(
            parameter.get("$ref", "").endswith("/IdempotencyKey")
            for parameter in operation.get("parameters", [])
        )
        for code, response in operation["responses"].items():
            declared = response["headers"]
            assert "X-Request-ID" in declared, (path, code)
            if keyed and code.startswith("2"):
                assert "Idempotent-Replayed" in declared, (path, code)
            if code == "401":
                assert "WWW-Authenticate" in declared, path
            if code in ("429", "503"):
                assert "Retry-After" in declared, path
            # A sign-in's 202 asks for a second factor: no background work to follow.
            if code == "202" and "content" in response and operation["operationId"] != "issueToken":
                assert "Location" in declared, path


def test_background_work_answers_202_with_location_everywhere() -> None:
    by_id = {operation["operationId"]: operation for _, _, operation in _operations()}
    for operation_id in (
        "assignEmployees",
        "saveGroupChanges",
        "deleteGroup",
        "retryProcessRequest",
    ):
        accepted = by_id[operation_id]["responses"]["202"]
        assert "Location" in accepted["headers"], operation_id


def test_confirmations_travel_as_one_query_parameter_of_the_acts_words() -> None:
    words = {}
    for _, path, operation in _operations():
        for parameter in operation.get("parameters", []):
            if parameter.get("name") == "confirmation":
                assert parameter["in"] == "query", path
                schema = parameter["schema"]
                enum = schema.get("enum") or next(
                    s["enum"] for s in schema.get("anyOf", []) if "enum" in s
                )
                words[operation["operationId"]] = set(enum)
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None:
            assert "confirmation" not in json.dumps(body["schema"]), path
    assert words == {
        "deleteGroup": {"SUPPRIMER", "DELETE"},
        "deleteRecord": {"SUPPRIMER", "DELETE"},
        "saveGroupChanges": {"CONFIRMER", "CONFIRM"},
        "assignEmployees": {"CONFIRMER", "CONFIRM"},
    }


def test_links_chain_the_main_journeys() -> None:
    by_id = {operation["operationId"]: operation for _, _, operation in _operations()}

    def links(operation_id: str, code: str) -> set[str]:
        return {
            link["operationId"]
            for link in by_id[operation_id]["responses"][code].get("links", {}).values()
        }

    assert "getProcessRequest" in links("saveGroupChanges", "202")
    assert "getProcessRequest" in links("deleteGroup", "202")
    assert "listProcessRequestFailures" in links("getProcessRequest", "200")
    assert "reply" in links("openTicket", "201")
    assert "transitionClaim" in links("submitClaim", "201")
    assert "getGroup" in links("createGroup", "201")
    for operation in by_id.values():
        for response in operation["responses"].values():
            for link in response.get("links", {}).values():
                assert link["operationId"] in by_id


def test_binary_bodies_and_downloads_are_declared_as_openapi_31_does() -> None:
    by_id = {operation["operationId"]: operation for _, _, operation in _operations()}
    upload = by_id["uploadProof"]["requestBody"]["content"]
    assert list(upload) == [
        "application/pdf",
        "image/png",
        "image/jpeg",
        "application/octet-stream",
    ]
    attachment = by_id["addAttachment"]["requestBody"]["content"]
    assert "application/octet-stream" in attachment and "image/png" in attachment
    for media_type, content in {**upload, **attachment}.items():
        assert content["schema"]["contentMediaType"] == media_type
    for operation_id in ("downloadProof", "operatorDownloadProof", "getAttachment"):
        assert "application/pdf" in by_id[operation_id]["responses"]["200"]["content"]


def test_problem_types_and_field_codes_are_published() -> None:
    document = _document()
    types = document["x-problem-types"]
    assert {(t["reason"], t["status"]) for t in types} == set(PROBLEM_TYPES)
    for entry in types:
        assert entry["type"] == "https://guichet.dev/problems/" + entry["reason"]
        assert entry["title"]
    assert document["x-field-codes"] == sorted(FIELD_CODES)


def test_every_refusal_the_services_raise_is_a_published_problem_type() -> None:
    assert sorted(service_reasons() - set(PROBLEM_TYPES)) == []


def test_every_code_the_services_give_a_field_is_published() -> None:
    assert sorted(service_field_codes() - FIELD_CODES) == []


# --- strict types ---------------------------------------------------------------------------


def _routes(routes: list[Any]) -> list[Any]:
    """Every route, those of the included routers too."""
    found = []
    for route in routes:
        included = getattr(route, "original_router", None)
        found.extend(_routes(included.routes) if included is not None else [route])
    return found


def _body_models() -> dict[str, type[BaseModel]]:
    models: dict[str, type[BaseModel]] = {}
    for route in _routes(_app().router.routes):
        if isinstance(route, APIRoute) and route.body_field is not None:
            annotation = route.body_field.field_info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                models[route.unique_id] = annotation
    return models


def _example(model: type[BaseModel]) -> dict[str, Any]:
    examples = model.model_json_schema().get("examples")
    if examples:
        return dict(examples[0])
    return {}


# Wrong JSON types for a schema type: what lax validation would coerce.
WRONG = {
    "integer": [False, True, "7", 7.5],
    "number": [False, "7"],
    "boolean": [0, 1, "true"],
    "date": [0, 20260101, "0", "1700000000"],
    "date-time": [0, 1700000000, "0", "1700000000"],
}


def _kind(schema: dict[str, Any]) -> str | None:
    for option in [schema, *schema.get("anyOf", [])]:
        if option.get("format") in ("date", "date-time"):
            return str(option["format"])
        if option.get("type") in ("integer", "number", "boolean"):
            return str(option["type"])
    return None


def test_no_request_field_coerces_another_json_type() -> None:
    """`"birth_date": 0` was stored as 1970-01-01, `"price_cents": false` as 0, `"paid_on": 0`
    as 1970-01-01: every integer, number, boolean, date and time field of every request body
    now refuses the JSON types it is not."""
    checked = 0
    for operation_id, model in _body_models().items():
        schema = model.model_json_schema()
        for name, prop in schema.get("properties", {}).items():
            kind = _kind(prop)
            if kind is None:
                continue
            for wrong in WRONG[kind]:
                with pytest.raises(ValidationError) as refused:
                    model.model_validate({name: wrong})
                locs = {error["loc"][:1] for error in refused.value.errors()}
                assert (name,) in locs, (operation_id, name, wrong)
                checked += 1
    assert checked > 100


@pytest.mark.parametrize(
    ("model_name", "field", "value"),
    [
        ("ProfileBody", "birth_date", 0),
        ("ProductBody", "price_cents", False),
        ("FeeBody", "paid_on", 0),
    ],
)
def test_the_reported_coercions_are_refused(model_name: str, field: str, value: object) -> None:
    [model] = {m for m in _body_models().values() if m.__name__ == model_name}
    with pytest.raises(ValidationError) as refused:
        model.model_validate({field: value})
    assert (field,) in {error["loc"][:1] for error in refused.value.errors()}


def test_dates_and_times_still_read_iso_text() -> None:
    from services.gateway.fields import Date, DateTime

    assert TypeAdapter(Date).validate_python("2026-02-28") == dt.date(2026, 2, 28)
    moment = TypeAdapter(DateTime).validate_python("2026-02-28T09:30:00Z")
    assert moment == dt.datetime(2026, 2, 28, 9, 30, tzinfo=dt.UTC)


def test_every_request_example_is_valid_today_and_for_years() -> None:
    """The spec's own examples of createTraining and requestCoverage were refused ("must be in
    the future"): examples of dates that must lie ahead are far ahead now."""
    by_id = {operation["operationId"]: operation for _, _, operation in _operations()}
    today = dt.date.today().isoformat()
    for operation_id, field in (
        ("createTraining", "start_time"),
        ("requestCoverage", "event_date"),
        ("createCourse", "starts_on"),
        ("createMembership", "renewal_date"),
    ):
        body = by_id[operation_id]["requestBody"]["content"]["application/json"]["schema"]
        name = body["$ref"].rsplit("/", 1)[1]
        example = _document()["components"]["schemas"][name]["properties"][field]["examples"][0]
        assert example[:10] > str(int(today[:4]) + 50), (operation_id, example)
    for model in _body_models().values():
        example = _example(model)
        if example:
            model.model_validate(example)  # each model's whole example is valid


def test_the_gateways_codes_are_pydantics_error_types_or_its_own() -> None:
    from typing import get_args

    from pydantic_core.core_schema import ErrorType

    from services.gateway.problem_types import GATEWAY_FIELD_CODES, GATEWAY_OWN_CODES

    assert sorted(GATEWAY_FIELD_CODES - GATEWAY_OWN_CODES - set(get_args(ErrorType))) == []
