"""The web portal's own checks that need no browser: every message exists in French and English,
every key the templates and modules use is declared, and the generated client is current."""

from __future__ import annotations

import re
from pathlib import Path

from web.app import create_app
from web.client.generate import TARGET, _formatted, gateway_openapi, render
from web.i18n import LOCALES, catalog

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
    missing = sorted(_used_keys() - set(catalog()))
    assert not missing, f"keys used in web/ but declared in no MESSAGES: {missing[:20]}"


def test_the_generated_client_matches_the_gateway() -> None:
    assert TARGET.read_text() == _formatted(render(gateway_openapi())), (
        "web/client/api.py is stale: run `python -m web.client.generate`"
    )
