"""Rendering: one Jinja environment, the visitor's language and navigation in every page, and
the small helpers every portal's routes use (form values, redirects, the signed-in account)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from web.flash import take_flash
from web.i18n import LOCALES
from web.nav import portal_links
from web.session import Visitor


def missing_label(item: str, t: Callable[..., str]) -> str:
    """An item of an account's `missing` list (identity's words) as the page names it: a
    profile field by its label, the e-mail and its confirmation by their own words."""
    if item in ("email", "email_verified"):
        return t(f"missing.{item}")
    return t(f"account.{item}").lower()


async def render(
    visitor: Visitor,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    signed_in_nav: bool = True,
) -> HTMLResponse:
    """A whole page (or, for an htmx request of a fragment template, the fragment).

    A whole page takes the confirmation waiting in the session (web/flash.py); a fragment that
    htmx refreshes never does, or a poll would swallow it."""
    links = []
    me = None
    if signed_in_nav and visitor.signed_in:
        me = await visitor.me()
        links = await portal_links(visitor, me)
    page = {
        "request": visitor.request,
        "t": visitor.t,
        "locale": visitor.locale,
        "locales": LOCALES,
        "me": me,
        "portal_links": links,
        "path": visitor.request.url.path,
        # How often live parts (a running delegation, the escalations) refresh: PROGRESS_POLL_MS.
        "poll_ms": visitor.request.app.state.settings.progress_poll_ms,
        # A fragment htmx asked for: it may fill live regions out of band (hx-swap-oob).
        "htmx": bool(visitor.request.headers.get("hx-request")),
        "flash": None
        if visitor.request.headers.get("hx-request")
        else take_flash(visitor.request, visitor.t),
        **(context or {}),
    }
    templates: Jinja2Templates = visitor.request.app.state.templates
    return templates.TemplateResponse(visitor.request, template, page, status_code=status_code)


async def form_values(request: Request) -> dict[str, str]:
    """The posted form, as text (files are read by the routes that take them)."""
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


def redirect(url: str) -> RedirectResponse:
    """After a successful POST: 303, so that reloading the next page does not post again."""
    return RedirectResponse(url, status_code=303)


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site paths: a `next` parameter never sends anyone to another site."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default
