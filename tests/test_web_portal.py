"""The web portal's own checks that need no browser: the catalogs are current and every locale has
every message, templates use only registered filters, and the generated client is current."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2 import nodes

from services.kit.catalogs import SPECS, problems
from web.client.generate import TARGET, _formatted, gateway_openapi, render
from web.i18n import translate
from web.problems import field_message
from web.templating import build_templates

WEB = Path(__file__).resolve().parent.parent / "web"


def test_the_catalogs_are_current_and_complete() -> None:
    """Like the generated-code check: the template matches the extraction from templates and
    code, and fr, en and pt_BR each have a text for every message, placeholders intact."""
    wrong = [line for spec in SPECS for line in problems(spec)]
    assert not wrong, "\n".join([*wrong, 'see docs/web.md, "Messages"'])


def test_a_locale_reads_its_own_catalog() -> None:
    assert translate("fr", "account.sign_in") == "Se connecter"
    assert translate("en", "account.sign_in") == "Sign in"
    assert translate("pt_BR", "account.sign_in") == "Entrar"
    assert translate("pt_BR", "admin.validated", username="ana") == "Conta de ana validada."


def test_every_filter_a_template_uses_is_registered() -> None:
    templates = build_templates()
    env = templates.env
    missing = {
        f"{path.relative_to(WEB)}: {node.name}"
        for path in WEB.rglob("*.html")
        for node in env.parse(path.read_text()).find_all(nodes.Filter)
        if node.name not in env.filters
    }
    assert not missing, f"filters used by templates but never registered: {sorted(missing)}"


@pytest.mark.parametrize(
    ("detail", "french", "english"),
    [
        ("Input should be greater than or equal to 1", "Au moins 1.", "At least 1."),
        ("Input should be greater than 0", "Plus de 0.", "More than 0."),
        ("Input should be less than or equal to 5000", "Au plus 5\u202f000.", "At most 5,000."),
        (
            "String should have at least 8 characters",
            "Au moins 8 caractères.",
            "At least 8 characters.",
        ),
        # Never the English sentence itself: a plain "check this field" in the page's language.
        (
            "no such colour",
            "Cette valeur n'est pas acceptée : vérifiez ce champ.",
            "This value is not accepted: check this field.",
        ),
    ],
)
def test_field_complaints_are_said_in_the_page_language(
    detail: str, french: str, english: str
) -> None:
    assert field_message("fr", detail) == french
    assert field_message("en", detail) == english


def test_the_generated_client_matches_the_gateway() -> None:
    assert TARGET.read_text() == _formatted(render(gateway_openapi())), (
        "web/client/api.py is stale: run `python -m web.client.generate`"
    )
