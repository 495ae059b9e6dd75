"""The web portal's own checks that need no browser: every message exists in French and English,
every key the templates and modules use is declared, and the generated client is current."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from jinja2 import nodes

from web.app import create_app
from web.client.generate import TARGET, _formatted, gateway_openapi, render
from web.i18n import LOCALES, catalog
from web.problems import field_message
from web.templating import build_templates

WEB = Path(__file__).resolve().parent.parent / "web"
# t("key") and t('key') in templates and Python; visitor.t(...) included.
_USED = re.compile(r"""\bt\(\s*["']([a-z][a-z0-9_.]+)["']""")


def _used_keys() -> set[str]:
    keys: set[str] = set()
    for path in [*WEB.rglob("*.html"), *WEB.rglob("*.py")]:
        keys |= set(_USED.findall(path.read_text()))
    return keys


def test_every_message_is_in_both_languages() -> None:
    create_app()  # imports every portal, so every catalog is registered
    empty = [
        key for key, texts in catalog().items() if len(texts) != len(LOCALES) or not all(texts)
    ]
    assert not empty, f"messages without a French and an English text: {empty[:10]}"


def test_every_key_used_is_declared() -> None:
    create_app()
    declared = set(catalog())
    # `t("admin.status." ~ status)`: a prefix completed at run time needs keys under it.
    missing = sorted(
        key
        for key in _used_keys() - declared
        if not (key.endswith(".") and any(d.startswith(key) for d in declared))
    )
    assert not missing, f"keys used in web/ but declared in no MESSAGES: {missing[:20]}"


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
        ("Input should be greater than 0", "Au moins 0.", "At least 0."),
        ("Input should be less than or equal to 500", "Au plus 500.", "At most 500."),
        (
            "String should have at least 8 characters",
            "Au moins 8 caractères.",
            "At least 8 characters.",
        ),
        ("no such colour", "Valeur refusée : no such colour", "no such colour"),
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
