"""The portal's languages: gettext catalogs (Babel) in French (the seeds' language, the default),
English and Brazilian Portuguese (the support seed's customers).

A template writes `{{ t("account.sign_in") }}`, code `visitor.t("key", name=...)`: the key is the
gettext message id, `web/locale/<locale>/LC_MESSAGES/messages.po` holds its text in that locale
(docs/decisions.md, "Portal messages: keys as gettext message ids"). A key built at run time
(`t("role." ~ role)`) is declared once with `N_("role.member")` so that the extraction finds it.
`python -m services.kit.catalogs extract` updates the catalogs from the sources; `check` (in
`make test`) fails when they are stale or when a locale lacks a text; `make install` compiles
them to `.mo`.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

log = logging.getLogger(__name__)

LOCALES = ("fr", "en", "pt_BR")
DEFAULT_LOCALE = "fr"
# What each locale is called in its own language (the language switch) and its BCP 47 tag.
LANGUAGE_NAMES = {"fr": "Français", "en": "English", "pt_BR": "Português"}
HTML_LANG = {"fr": "fr", "en": "en", "pt_BR": "pt-BR"}
LOCALE_DIR = Path(__file__).with_name("locale")
DOMAIN = "messages"
# A language tag as browsers and people write it: "pt-BR", "pt_br", "PT", "en-GB".
_TAG = re.compile(r"^([A-Za-z]{2,3})(?:[-_]([A-Za-z0-9]{2,8}))*$")

# Tuple-style messages of a branch that has not moved to the catalogs yet: still shown (French
# or English), and reported by `python -m services.kit.catalogs check` until absorbed.
_LEGACY: dict[str, tuple[str, str]] = {}


def N_(key: str) -> str:
    """Marks a message id that a page builds at run time, so that the extraction finds it."""
    return key


def register(messages: Mapping[str, tuple[str, str]]) -> None:
    """The former way, kept so that a merged tuple-style module still works until absorbed."""
    _LEGACY.update(messages)


@cache
def translations(locale: str) -> NullTranslations:
    """The locale's compiled catalog; compiled from its `.po` in memory when the `.mo` is
    missing or older (a catalog edited since `make install`)."""
    po = LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    mo = po.with_suffix(".mo")
    if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
        with mo.open("rb") as fileobj:
            return Translations(fileobj, domain=DOMAIN)
    log.info("compiling %s in memory (run make install to compile it once)", po)
    with po.open("rb") as fileobj:
        catalog = read_po(fileobj, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


def load() -> None:
    """Loads every catalog (the app factory calls it: a broken catalog fails at start)."""
    for locale in LOCALES:
        translations(locale)


def has_text(locale: str, key: str) -> bool:
    return translations(locale).gettext(key) != key


def translate(locale: str, key: str, **params: object) -> str:
    """The message in the locale; a missing key shows as itself (and fails the catalog check)."""
    if locale not in LOCALES:
        locale = DEFAULT_LOCALE
    text = translations(locale).gettext(key)
    if text == key and key in _LEGACY:
        french, english = _LEGACY[key]
        text = english if locale == "en" else french
    return text.format(**params) if params else text


def locale_of(tag: str | None) -> str | None:
    """The supported locale a language tag asks for: "pt-BR", "pt_br" and "pt" → pt_BR,
    "fr-CA" → fr, "en-GB" → en; None for any other language."""
    if not tag or not _TAG.match(tag.strip()):
        return None
    parts = re.split(r"[-_]", tag.strip())
    language = parts[0].lower()
    if language == "pt":
        return "pt_BR"  # our only Portuguese: Brazil's (the support seed's customers)
    return language if language in LOCALES else None


def negotiate(chosen: str | None, accept_language: str | None) -> str:
    """The choice made (?lang= or the cookie), else the browser's preferred supported language
    (Accept-Language, by its q-values), else French."""
    picked = locale_of(chosen)
    if picked:
        return picked
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, rest = part.strip().partition(";")
        quality = 1.0
        match = re.search(r"q\s*=\s*([0-9.]+)", rest)
        if match:
            try:
                quality = float(match.group(1))
            except ValueError:
                quality = 0.0
        if quality > 0:
            ranked.append((-quality, position, tag))
    for _, _, tag in sorted(ranked):
        picked = locale_of(tag)
        if picked:
            return picked
    return DEFAULT_LOCALE


def localized(item: Mapping[str, Any], field: str, locale: str) -> str:
    """A text the data carries in several languages (a category's name, a FAQ answer, a program
    option), in the reader's: its translation for the locale's tag, else for the same language
    with another region, else the original."""
    original = str(item.get(field) or "")
    translations = item.get("translations") or ()
    tag = HTML_LANG.get(locale, locale)
    primary = tag.split("-")[0]
    fallback = None
    for translation in translations:
        text = translation.get(field)
        if not text:
            continue
        if translation.get("locale") == tag:
            return str(text)
        if fallback is None and str(translation.get("locale", "")).split("-")[0] == primary:
            fallback = str(text)
    return fallback or original


def language_name(tag: str | None) -> str:
    """A language tag ("pt-BR") as its speakers name it ("Português"); another tag as is."""
    for locale, html_tag in HTML_LANG.items():
        if tag == html_tag:
            return LANGUAGE_NAMES[locale]
    return tag or "—"
