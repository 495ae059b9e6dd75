"""The Jinja environment: templates and every filter they use, built by the app factory (never at
import), so that the filters a template needs are listed in one place."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from fastapi.templating import Jinja2Templates

from web import formatting, labels
from web.i18n import HTML_LANG, LANGUAGE_NAMES, LOCALES, language_name, localized
from web.pages import missing_label


def language_links(url: str, query: list[tuple[str, str]], current: str) -> list[dict[str, str]]:
    """The language switch: this page in each locale (its other query parameters kept)."""
    kept = [(k, v) for k, v in query if k != "lang"]
    links = []
    for code in LOCALES:
        href = f"{url}?{urlencode([*kept, ('lang', HTML_LANG[code])])}"
        links.append(
            {
                "code": code,
                "name": LANGUAGE_NAMES[code],
                "lang": HTML_LANG[code],
                "href": href,
                "current": "true" if code == current else "",
            }
        )
    return links


def build_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
    templates.env.filters.update(
        {
            "local_time": formatting.local_time,
            "missing_label": missing_label,
            "date": formatting.show_date,
            "money": formatting.money,
            "number": formatting.number,
            "percent": formatting.percent,
            "currency_symbol": formatting.currency_symbol,
            "amount_input": formatting.amount_input,
            "html_lang": lambda locale: HTML_LANG.get(locale, locale),
            "localized": localized,
            # The names the portals' templates used before: the same Babel formatting.
            "membership_date": formatting.show_date,
            "partners_money": formatting.money,
        }
    )
    templates.env.globals.update(
        {
            "language_links": language_links,
            "language_name": language_name,
            "audit_event": labels.audit_event,
            "record_event": labels.record_event,
            "failure_reason": labels.failure_reason,
            "cancellation_reason": labels.cancellation_reason,
            "registration_cancel_reason": labels.registration_cancel_reason,
            "order_event": labels.order_event,
        }
    )
    return templates
