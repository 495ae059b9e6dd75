"""Languages for what services write to people (mails) and for the texts they store in several
languages (a category's name, a FAQ answer, a program option).

Languages travel as BCP 47 tags ("fr", "en", "pt-BR"); gettext catalogs are named by locale
("pt_BR"). The supported ones are those of the portal (French first: the seeds' language).
The portal has its own copy of the negotiation (web/i18n.py): the portal may not import
services, and services may not import the portal (docs/decisions.md, "Portal messages").
"""

from __future__ import annotations

import io
import re
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from services.kit.errors import Validator

# Supported languages, as tags (what the API and the database carry).
LANGUAGES = ("fr", "en", "pt-BR")
DEFAULT_LANGUAGE = "fr"
# A well-formed language tag with an optional region: "en", "pt-BR", "es-419".
TAG = re.compile(r"^[a-z]{2,3}(-([A-Z]{2}|[0-9]{3}))?$")
# At most this many translations per text (every supported language and a few to come).
MAX_TRANSLATIONS = 12


def language_of(tag: str | None) -> str | None:
    """The supported language a tag asks for: "pt", "pt-br", "pt_BR" → "pt-BR"; "fr-CA" →
    "fr"; None for another language."""
    if not tag:
        return None
    primary = re.split(r"[-_]", tag.strip(), maxsplit=1)[0].lower()
    if primary == "pt":
        return "pt-BR"  # the only Portuguese supported: Brazil's (the support seed's customers)
    return primary if primary in LANGUAGES else None


def negotiate(accept_language: str | None) -> str:
    """The first supported language of an Accept-Language header (by q-value), else French."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, rest = part.strip().partition(";")
        quality = 1.0
        match = re.search(r"q\s*=\s*([0-9.]{1,5})", rest)
        if match:
            try:
                quality = float(match.group(1))
            except ValueError:
                quality = 0.0
        if quality > 0:
            ranked.append((-quality, position, tag))
    for _, _, tag in sorted(ranked):
        language = language_of(tag)
        if language:
            return language
    return DEFAULT_LANGUAGE


def locale_name(language: str) -> str:
    """The gettext catalog name of a tag: "pt-BR" → "pt_BR"."""
    return language.replace("-", "_")


def check_tag(v: Validator, field: str, tag: str) -> None:
    """A translation's language must be a well-formed tag (written "pt-BR", not "pt_br")."""
    v.check(
        bool(TAG.match(tag)),
        field,
        'must be a language tag such as "fr", "en" or "pt-BR"',
        code="string_pattern_mismatch",
    )


def pick(translations: dict[str, dict[str, str]], language: str, key: str, original: str) -> str:
    """A stored text in the reader's language: the exact tag, else the same language with
    another region, else the original."""
    exact = translations.get(language, {}).get(key)
    if exact:
        return exact
    primary = language.split("-")[0]
    for tag, texts in sorted(translations.items()):
        if tag.split("-")[0] == primary and texts.get(key):
            return texts[key]
    return original


class Texts:
    """A service's gettext catalog (`<locale_dir>/<locale>/LC_MESSAGES/<domain>.po`, compiled
    at install), read by message id: `texts.text("pt-BR", "mail.answered.subject", number=12)`.
    """

    def __init__(self, locale_dir: Path, domain: str) -> None:
        self.locale_dir, self.domain = locale_dir, domain

    @cache  # noqa: B019 (a handful of instances, alive as long as the process)
    def translations(self, language: str) -> NullTranslations:
        po = self.locale_dir / locale_name(language) / "LC_MESSAGES" / f"{self.domain}.po"
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            with mo.open("rb") as fileobj:
                return Translations(fileobj, domain=self.domain)
        with po.open("rb") as fileobj:
            catalog = read_po(fileobj, locale=locale_name(language))
        buffer = io.BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        return Translations(buffer, domain=self.domain)

    def text(self, language: str, key: str, **params: object) -> str:
        """The message in the language (French when it is not supported); a missing id shows as
        itself (and fails `python -m services.kit.catalogs check`)."""
        chosen = language if language in LANGUAGES else DEFAULT_LANGUAGE
        text = self.translations(chosen).gettext(key)
        return text.format(**params) if params else text
