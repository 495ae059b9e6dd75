"""French first (the seeds' language), English second: every message has both, by key.

Each portal module declares its own `MESSAGES = {key: (french, english)}` and registers it; a
template writes `{{ t("account.sign_in") }}`. tests/web/test_i18n.py checks that every key a
template or module uses exists in both languages.
"""

from __future__ import annotations

from collections.abc import Mapping

LOCALES = ("fr", "en")
DEFAULT_LOCALE = "fr"

_CATALOG: dict[str, tuple[str, str]] = {}


def register(messages: Mapping[str, tuple[str, str]]) -> None:
    for key, pair in messages.items():
        if key in _CATALOG and _CATALOG[key] != pair:
            raise ValueError(f"message {key!r} is declared twice with different texts")
        _CATALOG[key] = pair


def catalog() -> Mapping[str, tuple[str, str]]:
    return _CATALOG


def translate(locale: str, key: str, **params: object) -> str:
    """The message in the locale; a missing key shows as itself (and fails tests/web)."""
    pair = _CATALOG.get(key)
    if pair is None:
        return key
    text = pair[LOCALES.index(locale)] if locale in LOCALES else pair[0]
    return text.format(**params) if params else text


def negotiate(chosen: str | None, accept_language: str | None) -> str:
    """The cookie's choice, else the browser's first supported language, else French."""
    if chosen in LOCALES:
        return chosen
    for part in (accept_language or "").split(","):
        tag = part.split(";", 1)[0].strip().lower()[:2]
        if tag in LOCALES:
            return tag
    return DEFAULT_LOCALE
