"""Who is looking at a page: their tokens (HttpOnly cookies), their language, and the gateway
client that acts on their behalf. The portal keeps no state of its own: the gateway's access
token is the session, renewed with its refresh token when it expires."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from fastapi import Request

from web.client.api import GatewayApi, Organisation, User
from web.client.transport import ApiProblem, Transport
from web.i18n import HTML_LANG, negotiate, translate

ACCESS_COOKIE = "guichet_access"
REFRESH_COOKIE = "guichet_refresh"
# The gateway's device cookie, kept by the browser for the portal (docs/identity.md): it is what
# keeps a person's own browser out of a lock that others' failed sign-ins earned.
DEVICE_COOKIE = "guichet_device"
DEVICE_COOKIE_MAX_AGE = 365 * 86400
LANGUAGE_COOKIE = "guichet_lang"
# Starlette's signed session (web/flash.py): only a confirmation waiting for the next page.
SESSION_COOKIE = "guichet_session"
# Set by web/static/tz.js from the browser: the zone a person reads times in.
TIME_ZONE_COOKIE = "guichet_tz"


class SignInRequired(Exception):
    """The page needs a signed-in person (the app answers with a redirect to the sign-in page)."""


@dataclass
class Visitor:
    request: Request
    locale: str
    api: GatewayApi
    transport: Transport
    access_token: str | None
    refresh_token: str | None
    # Set when the tokens changed during the request (sign-in, renewal, sign-out): the app writes
    # them into cookies on the way out. ("", "") clears them.
    renewed: tuple[str, str] | None = None
    _me: User | None = None
    _organisations: dict[str, Organisation] = field(default_factory=dict)

    def t(self, key: str, **params: object) -> str:
        return translate(self.locale, key, **params)

    @property
    def time_zone(self) -> str | None:
        """The browser's IANA time zone (from its cookie), when it names a real one."""
        name = unquote(self.request.cookies.get(TIME_ZONE_COOKIE, ""))  # tz.js encodes the "/"
        if not name or len(name) > 64:
            return None
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return None
        return name

    @property
    def signed_in(self) -> bool:
        return bool(self.access_token or self.refresh_token)

    async def me(self) -> User:
        """The signed-in account (fetched once per request); SignInRequired when nobody is."""
        if self._me is None:
            if not self.signed_in:
                raise SignInRequired
            try:
                self._me = await self.api.get_me()
            except ApiProblem as problem:
                if problem.status == 401:
                    self.forget()
                    raise SignInRequired from problem
                raise
        return self._me

    async def organisation(self, organisation_id: str) -> Organisation:
        if organisation_id not in self._organisations:
            self._organisations[organisation_id] = await self.api.get_organisation(organisation_id)
        return self._organisations[organisation_id]

    def remember(self, access_token: str, refresh_token: str) -> None:
        self.access_token, self.refresh_token = access_token, refresh_token
        self.transport.access_token = access_token
        self.renewed = (access_token, refresh_token)
        self._me = None

    @property
    def device_cookie(self) -> str | None:
        """A device cookie the gateway handed out during this request, to keep in the browser."""
        return self.transport.received_device_token

    def forget(self) -> None:
        self.access_token = self.refresh_token = None
        self.transport.access_token = None
        self.renewed = ("", "")
        self._me = None

    async def renew(self) -> None:
        """New tokens now (a second factor was just set up: the session may carry more)."""
        await self._refresh()

    async def _refresh(self) -> str | None:
        """A new access token from the refresh token (one rotation per request at most)."""
        if not self.refresh_token:
            return None
        self.transport.refresh = None
        self.transport.access_token = None
        try:
            pair = await self.api.refresh_token({"refresh_token": self.refresh_token})
        except ApiProblem:
            self.forget()
            return None
        self.remember(pair["access_token"], pair["refresh_token"])
        return pair["access_token"]


def visitor_for(request: Request, http: httpx.AsyncClient) -> Visitor:
    chosen = request.query_params.get("lang") or request.cookies.get(LANGUAGE_COOKIE)
    locale = negotiate(chosen, request.headers.get("accept-language"))
    access = request.cookies.get(ACCESS_COOKIE) or None
    refresh = request.cookies.get(REFRESH_COOKIE) or None
    forwarded = request.headers.get("x-forwarded-for")
    peer = request.client.host if request.client else None
    transport = Transport(
        http,
        access_token=access,
        forwarded_for=", ".join(p for p in (forwarded, peer) if p) or None,
        language=HTML_LANG.get(locale, locale),
        device_token=request.cookies.get(DEVICE_COOKIE) or None,
    )
    visitor = Visitor(request, locale, GatewayApi(transport), transport, access, refresh)
    transport.refresh = visitor._refresh
    request.state.visitor = visitor
    return visitor


def cookie_settings(secure: bool) -> dict[str, Any]:
    return {"httponly": True, "secure": secure, "samesite": "lax", "path": "/"}
