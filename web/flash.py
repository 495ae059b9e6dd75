"""Confirmations that follow a redirect ("flash" messages), carried by the signed session cookie.

After a form is accepted, the page redirects (303, so that reloading does not post again) and the
next page says what happened. That sentence must never come from the URL: anyone could send a
link that makes Guichet say anything ("Le groupe « Votre compte sera supprimé… » a été créé").
So it travels in the session cookie that Starlette's `SessionMiddleware` signs with
`SESSION_SECRET` (itsdangerous: HMAC and a timestamp). A link cannot set a cookie, and a cookie
set by anyone else (a sibling domain, a proxy on plain HTTP) fails the signature. The cookie holds
a message *key* and its parameters, never a sentence: a key that is not a registered message is
dropped, so even our own old cookie can only say one of our sentences. The next full page takes
the message and clears it (docs/decisions.md, "Flash messages").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request

from web.i18n import DEFAULT_LOCALE, translate

_KEY = "flash"


@dataclass(frozen=True)
class Flash:
    """A confirmation to show once: its text in the reader's language, and where.

    `anchor` names the element it belongs beside (a product's row, say): that page shows it
    there, where the person is, instead of at the top.
    """

    text: str
    anchor: str | None = None


def flash(request: Request, key: str, *, anchor: str | None = None, **params: Any) -> None:
    """Says `key` (a registered message, with its parameters) on the next page shown."""
    if not _known(key):
        raise KeyError(f"flash message {key!r} is not registered")
    entry: dict[str, Any] = {"key": key, "params": {k: str(v) for k, v in params.items()}}
    if anchor:
        entry["anchor"] = anchor
    request.session[_KEY] = entry


def take_flash(request: Request, translate: Any) -> Flash | None:
    """The pending confirmation, translated, and cleared; None when there is none (or it is
    not one of ours)."""
    if "session" not in request.scope:
        return None
    entry = request.session.pop(_KEY, None)
    if not isinstance(entry, dict) or not _known(entry.get("key")):
        return None
    params = entry.get("params")
    params = {str(k): str(v) for k, v in params.items()} if isinstance(params, dict) else {}
    try:
        text = translate(entry["key"], **params)
    except (KeyError, IndexError, ValueError):  # parameters that do not fit the sentence
        return None
    anchor = entry.get("anchor")
    return Flash(str(text), anchor if isinstance(anchor, str) else None)


def _known(key: object) -> bool:
    return isinstance(key, str) and translate(DEFAULT_LOCALE, key) != key
