"""Every refusal the gateway can answer is said to a person in every locale, and nothing raw
reaches a page (issue 25, "Every message in the page's language").

The problem types and field codes come from the OpenAPI document's `x-problem-types` and
`x-field-codes` when it lists them; otherwise from what exists today: the reasons the services
and the gateway raise (read from their sources) and every pydantic error type the gateway may
answer. A new reason or code without a text in fr, en and pt_BR fails here.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic_core.core_schema import ErrorType

from services.kit import errors as kit_errors
from web.client.generate import gateway_openapi
from web.client.transport import ApiProblem
from web.i18n import LOCALES, has_text, translate
from web.problems import FIELD_CODE_TEXTS, FormState, field_message, field_text_key, summary_message

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ROOT / "services"


@functools.cache
def _document() -> dict[str, Any]:
    return gateway_openapi()


def _domain_errors() -> set[str]:
    """The names of the kit's refusal classes (FailedPrecondition, NotFound, …)."""
    return {
        name
        for name, value in vars(kit_errors).items()
        if isinstance(value, type) and issubclass(value, kit_errors.DomainError)
    }


def _reasons_in_sources() -> set[str]:
    """`reason="…"` given to a refusal anywhere in services/, the kit's own class reasons, and
    the gateway's refusals (its gRPC table and `ProblemException(status, "reason", …)`)."""
    refusals = _domain_errors() | {"ProblemException", "StatusMapping"}
    found: set[str] = set()
    for path in SERVICES.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                if name not in refusals:
                    continue
                for keyword in node.keywords:
                    if keyword.arg == "reason" and isinstance(keyword.value, ast.Constant):
                        found.add(str(keyword.value.value))
                # ProblemException(status, "reason", …), StatusMapping(status, "reason")
                positional = name in ("ProblemException", "StatusMapping") and len(node.args) > 1
                if positional and isinstance(node.args[1], ast.Constant):
                    found.add(str(node.args[1].value))
            elif (
                isinstance(node, ast.ClassDef)
                and path.name == "errors.py"
                and any(getattr(b, "id", "") in _domain_errors() for b in node.bases)
            ):
                for item in node.body:
                    if (
                        isinstance(item, ast.Assign)
                        and getattr(item.targets[0], "id", "") == "reason"
                        and isinstance(item.value, ast.Constant)
                    ):
                        found.add(str(item.value.value))
    return found


def _problem_reasons() -> set[str]:
    listed = _document().get("x-problem-types")
    if listed:
        return {str(entry["reason"]) for entry in listed}
    return _reasons_in_sources()


def _codes_in_sources() -> set[str]:
    """`code="…"` given to a field violation in services/ (the services' own rule codes)."""
    found: set[str] = set()
    for path in SERVICES.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in (
                "check",
                "require",
                "add",
            ):
                for keyword in node.keywords:
                    if keyword.arg == "code" and isinstance(keyword.value, ast.Constant):
                        found.add(str(keyword.value.value))
    return found


def _field_codes() -> set[str]:
    listed = _document().get("x-field-codes")
    if listed:
        return {str(code if isinstance(code, str) else code["code"]) for code in listed}
    return set(get_args(ErrorType)) | _codes_in_sources() | {"invalid", "missing"}


def test_the_enumerations_find_what_the_gateway_answers() -> None:
    """The enumerations themselves work (a broken scan would make the next tests vacuous)."""
    reasons, codes = _problem_reasons(), _field_codes()
    assert {"invalid_argument", "not_found", "group_name_taken", "removal_window_closed"} <= reasons
    assert {"missing", "string_too_long", "uuid_parsing", "greater_than_equal"} <= codes


def test_every_problem_type_has_a_text_in_every_locale() -> None:
    missing = sorted(
        f"{locale}: problem.{reason}"
        for reason in _problem_reasons()
        for locale in LOCALES
        if not has_text(locale, f"problem.{reason}")
    )
    assert not missing, f"problem types without a text (write them in web/locale): {missing}"


def test_every_field_code_has_a_text_in_every_locale() -> None:
    missing = sorted(
        f"{locale}: {field_text_key(code)} (code {code})"
        for code in _field_codes()
        for locale in LOCALES
        if not has_text(locale, field_text_key(code))
    )
    assert not missing, (
        "field codes without a text (a `field.<code>` text in web/locale, or an entry in "
        f"web/problems.py FIELD_CODE_TEXTS): {missing}"
    )


def test_every_shared_text_of_a_code_exists() -> None:
    assert all(has_text("fr", f"field.{target}") for target in set(FIELD_CODE_TEXTS.values()))


# --- the defects of issue 25, each said in the page's language now -------------------------


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("fr", "Cet identifiant n'est pas valide"),
        ("en", "This id is not valid"),
        ("pt_BR", "Este identificador não é válido"),
    ],
)
def test_an_empty_uuid_is_not_said_in_pydantic_english(locale: str, expected: str) -> None:
    """Was "Valeur refusée : Input should be a valid UUID, invalid length: found 0"."""
    detail = "Input should be a valid UUID, invalid length: found 0"
    for code in (None, "uuid_parsing"):
        said = field_message(locale, detail, code, {"error": "invalid length: found 0"})
        assert said.startswith(expected)
        assert "Input should" not in said and "found 0" not in said


def test_the_vin_rule_is_said_in_the_page_language() -> None:
    """Was "must be 17 characters, without I, O or Q" on a French page."""
    detail = "must be 17 characters, without I, O or Q"
    assert field_message("fr", detail) == (
        "Le NIV compte 17 caractères, lettres et chiffres, sans I, O ni Q."
    )
    assert field_message("pt_BR", detail, "vin_format") == (
        "O chassi (VIN) tem 17 caracteres, letras e algarismos, sem I, O nem Q."
    )


def test_a_code_with_its_params_is_said_with_the_readers_numbers() -> None:
    assert field_message("fr", "", "string_too_long", {"max_length": 100}) == (
        "Au plus 100 caractères."
    )
    assert field_message("pt_BR", "", "less_than_equal", {"le": 10000}) == "No máximo 10.000."
    assert field_message("en", "", "greater_than_equal", {"ge": 1}) == "At least 1."
    # A code whose sentence needs a parameter that did not come: the rule without it.
    assert field_message("fr", "", "string_too_long", {}) == "Ce texte est trop long."


def test_a_required_text_left_blank_is_said_required_not_at_least_one_character() -> None:
    """Was "Au moins 1 caractères." beside a blank required field (the gateway's min_length)."""
    for code in ("string_too_short", None):
        detail = "String should have at least 1 character"
        assert field_message("fr", detail, code, {"min_length": 1}) == "Champ obligatoire."
    said = field_message("en", "", "string_too_short", {"min_length": 3})
    assert said == "At least 3 characters."
    # A blank input refused by a "not blank" pattern is required too; a typed one is malformed.
    problem = ApiProblem(
        400,
        {
            "type": "https://guichet.dev/problems/invalid_argument",
            "errors": [
                {"field": "screen_code", "code": "string_pattern_mismatch", "detail": "x"},
                {"field": "iban", "code": "string_pattern_mismatch", "detail": "x"},
            ],
        },
    )
    form = FormState.refused("fr", {"screen_code": " ", "iban": "FR76 1234"}, problem, {})
    assert form.errors["screen_code"] == "Champ obligatoire."
    assert form.errors["iban"] != "Champ obligatoire."


def test_a_generic_code_is_said_by_its_detail_when_the_detail_is_known() -> None:
    """Was "Cette valeur n'est pas acceptée" for an e-mail address (pydantic's value_error)."""
    detail = "value is not a valid email address: It must have exactly one @-sign."
    assert field_message("fr", detail, "value_error", {"reason": "x"}) == (
        "Adresse e-mail invalide."
    )


def test_an_unknown_complaint_or_reason_never_reaches_the_page() -> None:
    """Neither the English detail nor the reason's code: a sentence of the status instead."""
    problem = ApiProblem(
        409,
        {
            "type": "https://guichet.dev/problems/brand_new_rule",
            "detail": "brand new rule says no",
            "errors": [{"field": "name", "code": "brand_new_code", "detail": "is odd"}],
        },
    )
    form = FormState.refused("pt_BR", {"name": "x"}, problem, {})
    assert form.summary == translate("pt_BR", "problem.failed_precondition")
    assert form.errors == {"name": "Este valor não é aceito: verifique este campo."}
    assert "brand" not in summary_message("fr", problem)


def test_a_refusal_with_codes_maps_each_field_in_the_page_language() -> None:
    problem = ApiProblem(
        400,
        {
            "type": "https://guichet.dev/problems/invalid_argument",
            "errors": [
                {"field": "body.title", "code": "missing", "detail": "Field required"},
                {
                    "field": "body.screen_code",
                    "code": "string_too_long",
                    "detail": "String should have at most 40 characters",
                    "params": {"max_length": 40},
                },
            ],
        },
    )
    form = FormState.refused("pt_BR", {}, problem, {})
    assert form.errors == {"title": "Campo obrigatório.", "screen_code": "No máximo 40 caracteres."}
    assert form.summary == "Alguns campos precisam ser corrigidos."
