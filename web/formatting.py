"""Dates, times, numbers and money as the reader writes them, by Babel (CLDR) for the page's
locale: 05/12/2026 11:00 in French and Portuguese, 12/5/2026, 11:00 AM in English; 1 234,50 €
in French, € 1.234,50 in Portuguese, €1,234.50 in English. Money is always in the currency the
data carries (an order's, a store's, a program's), never a symbol written by hand.

The template filters are registered by web/templating.py; pages call these functions directly.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_skeleton, format_time
from babel.numbers import format_currency, format_decimal, format_percent, get_currency_symbol

from web.i18n import DEFAULT_LOCALE, LOCALES

DEFAULT_ZONE = "Europe/Paris"
DEFAULT_CURRENCY = "EUR"
_NONE = "—"


def _locale(locale: str) -> str:
    return locale if locale in LOCALES else DEFAULT_LOCALE


def local_time(value: str | None, zone: str | None = None, locale: str = DEFAULT_LOCALE) -> str:
    """An RFC 3339 instant from the API, in a time zone (the person's, else Paris), with the
    zone's abbreviation: "05/12/2026 11:00 (CET)"."""
    if not value:
        return _NONE
    try:
        instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return _NONE
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=ZoneInfo("UTC"))
    shown = instant.astimezone(ZoneInfo(zone or DEFAULT_ZONE))
    loc = _locale(locale)
    day = format_skeleton("yMd", shown, locale=loc)
    hour = format_time(shown, "short", locale=loc)
    pattern = Locale.parse(loc).datetime_formats["short"]
    return f"{pattern.format(hour, day)} ({shown.tzname()})"


def show_date(value: str | date | None, locale: str = DEFAULT_LOCALE) -> str:
    """A calendar date (YYYY-MM-DD from the API) as people write it: 05/12/2026, 12/5/2026."""
    if not value:
        return _NONE
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value[:10])
        except ValueError:
            return _NONE
    return str(format_skeleton("yMd", value, locale=_locale(locale)))


def money(
    cents: int | None, currency: str | None = DEFAULT_CURRENCY, locale: str = DEFAULT_LOCALE
) -> str:
    """An amount in minor units, in its currency: 1790 EUR → "17,90 €" in French."""
    if cents is None:
        return _NONE
    return str(
        format_currency(
            Decimal(cents) / 100, (currency or DEFAULT_CURRENCY).upper(), locale=_locale(locale)
        )
    )


def currency_symbol(currency: str | None, locale: str = DEFAULT_LOCALE) -> str:
    """The symbol the locale writes for a currency: "€", "R$", "US$"."""
    return str(get_currency_symbol((currency or DEFAULT_CURRENCY).upper(), locale=_locale(locale)))


def amount_input(cents: int | None, locale: str = DEFAULT_LOCALE) -> str:
    """An amount as a form shows it for editing, without symbol or grouping: "9,50", "9.50"."""
    if cents is None:
        return ""
    return str(format_decimal(Decimal(cents) / 100, format="0.00", locale=_locale(locale)))


def number(value: float | int | None, locale: str = DEFAULT_LOCALE) -> str:
    """A count or a measure with the locale's separators: 1 234 in French, 1,234 in English."""
    if value is None:
        return _NONE
    return str(format_decimal(value, locale=_locale(locale)))


def percent(value: float | None, locale: str = DEFAULT_LOCALE) -> str:
    """A share given in percent (87.5 → "88 %" in French, "88%" in English)."""
    if value is None:
        return _NONE
    return str(format_percent(value / 100, locale=_locale(locale)))
