"""The web portal: server-rendered pages (Jinja, a little htmx) over the public gateway API.

It holds no data and no secret of its own: every page is one or a few gateway calls made with
the visitor's own access token, so the gateway's rules, limits and problems apply unchanged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.sessions import SessionMiddleware

from web.assets import HashedStatic
from web.client.transport import ApiProblem
from web.i18n import load as load_catalogs, locale_of, negotiate, translate
from web.nav import NavCache
from web.pages import render
from web.paging import PageLinkRefused
from web.portals import ROUTERS
from web.problems import summary_message
from web.session import (
    ACCESS_COOKIE,
    DEVICE_COOKIE,
    DEVICE_COOKIE_MAX_AGE,
    LANGUAGE_COOKIE,
    REFRESH_COOKIE,
    SESSION_COOKIE,
    SignInRequired,
    Visitor,
    cookie_settings,
    visitor_for,
)
from web.settings import WebSettings
from web.templating import build_templates

log = logging.getLogger(__name__)


# Security headers on every page: no framing, no sniffing, scripts and styles from here only.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def create_app(settings: WebSettings | None = None) -> FastAPI:
    settings = settings or WebSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(
            base_url=settings.gateway_url,
            timeout=settings.gateway_timeout,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        ) as http:
            # One client serves every visitor: it must keep no cookie (the gateway's device
            # cookie belongs to one person's browser; the transport carries it per request).
            refuse_cookies(http)
            app.state.http = http
            yield

    app = FastAPI(
        title="Guichet web portal",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    load_catalogs()  # a broken catalog fails here, at start
    app.state.templates = build_templates()
    app.state.nav_cache = NavCache()
    assets = HashedStatic(Path(__file__).with_name("static"))
    app.state.templates.env.globals["static"] = assets.url
    app.mount("/static", assets, "static")
    for router in ROUTERS:
        app.include_router(router)

    @app.middleware("http")
    async def session_cookies(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """Refuses cross-site form posts, and writes renewed tokens and headers on the way out."""
        started = time.perf_counter()
        if request.method in _UNSAFE and not _same_origin(request):
            locale = negotiate(
                request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language")
            )
            return PlainTextResponse(translate(locale, "error.forbidden_origin"), 403)
        response = await call_next(request)
        visitor: Visitor | None = getattr(request.state, "visitor", None)
        cookies = cookie_settings(settings.secure_cookies)
        if visitor is not None and visitor.renewed is not None:
            access, refresh = visitor.renewed
            if access:
                response.set_cookie(ACCESS_COOKIE, access, **cookies)
                response.set_cookie(REFRESH_COOKIE, refresh, **cookies)
            else:
                response.delete_cookie(ACCESS_COOKIE, path="/")
                response.delete_cookie(REFRESH_COOKIE, path="/")
        if visitor is not None and visitor.device_cookie:
            response.set_cookie(
                DEVICE_COOKIE,
                visitor.device_cookie,
                max_age=DEVICE_COOKIE_MAX_AGE,
                **{**cookies, "samesite": "strict"},
            )
        chosen = locale_of(request.query_params.get("lang"))
        if chosen and visitor is not None and chosen == visitor.locale:
            response.set_cookie(LANGUAGE_COOKIE, chosen, max_age=365 * 86400, samesite="lax")
        for name, value in _HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers["Server-Timing"] = _server_timing(started, visitor)
        return response

    # Outermost last: gzip wraps everything; the session (flash messages, web/flash.py) is
    # signed with SESSION_SECRET and lives only until the next page has shown its message.
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.session_secret_value(),
        session_cookie=SESSION_COOKIE,
        max_age=600,
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    app.add_middleware(GZipMiddleware, minimum_size=512, compresslevel=6)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        """Browsers ask for it on every site: answered, so no page logs a 404."""
        return FileResponse(
            Path(__file__).with_name("static") / "favicon.ico",
            media_type="image/vnd.microsoft.icon",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    @app.exception_handler(SignInRequired)
    async def sign_in_first(request: Request, _: Exception) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response = RedirectResponse(f"/sign-in?next={quote(target)}", status_code=303)
        if request.headers.get("hx-request"):
            response.headers["HX-Redirect"] = response.headers["location"]
        return response

    @app.exception_handler(ApiProblem)
    async def problem_page(request: Request, exc: Exception) -> Response:
        """A refusal no form handled: a page in the visitor's language, never the raw problem."""
        assert isinstance(exc, ApiProblem)
        if exc.status == 401:
            return await sign_in_first(request, exc)
        visitor = _visitor_of(request)
        message = summary_message(visitor.locale, exc)
        status = exc.status if exc.status in (403, 404, 409, 412, 429, 503, 504) else 502
        if exc.status >= 500:
            log.warning("gateway answered %s on %s: %s", exc.status, request.url.path, exc)
        return await _error_page(visitor, message, status)

    @app.exception_handler(PageLinkRefused)
    async def page_link_refused(request: Request, exc: Exception) -> Response:
        """A list's page link the gateway refused (forged, or from another list): said in
        words, with the way back to the list's first page."""
        assert isinstance(exc, PageLinkRefused)
        visitor = _visitor_of(request)
        return await render(
            visitor,
            "error.html",
            {"message": visitor.t("field.page_token"), "first_page": exc.first_page},
            status_code=400,
        )

    @app.exception_handler(httpx.HTTPError)
    async def gateway_unreachable(request: Request, exc: Exception) -> Response:
        """The gateway did not answer (down, or slower than GATEWAY_TIMEOUT): say so, retryable."""
        log.warning("gateway unreachable on %s: %r", request.url.path, exc)
        visitor = _visitor_of(request)
        response = await _error_page(visitor, visitor.t("problem.unavailable"), 503)
        response.headers["Retry-After"] = "5"
        return response

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s", request.url.path)
        visitor = _visitor_of(request)
        return await _error_page(visitor, visitor.t("problem.internal", request_id="—"), 500)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> Response:
        """Ready when the gateway is: a portal without its API serves nothing useful."""
        try:
            answer = await request.app.state.http.get("/readyz", timeout=2)
        except httpx.HTTPError:
            return PlainTextResponse("gateway unreachable", 503)
        return PlainTextResponse(
            "ok" if answer.status_code == 200 else "gateway not ready",
            200 if answer.status_code == 200 else 503,
        )

    return app


def _server_timing(started: float, visitor: Visitor | None) -> str:
    """The page's own time and its gateway calls' (bench/pages.py reads it; so do DevTools)."""
    total = (time.perf_counter() - started) * 1000
    timing = f"app;dur={total:.1f}"
    if visitor is not None and visitor.transport.calls:
        spent = visitor.transport.seconds * 1000
        timing += f', gateway;dur={spent:.1f};desc="{visitor.transport.calls} calls"'
    return timing


def _visitor_of(request: Request) -> Visitor:
    """The request's own visitor when a page made one: it may hold tokens renewed during the
    request, which the error page must hand back (the old refresh token is spent: reusing it
    revokes the whole session)."""
    visitor: Visitor | None = getattr(request.state, "visitor", None)
    return visitor if visitor is not None else visitor_for(request, request.app.state.http)


async def _error_page(visitor: Visitor, message: str, status: int) -> HTMLResponse:
    return await render(
        visitor, "error.html", {"message": message}, status_code=status, signed_in_nav=False
    )


def refuse_cookies(http: httpx.AsyncClient) -> None:
    """The client's jar accepts no domain: responses' Set-Cookie are never stored."""
    http.cookies.jar.set_policy(DefaultCookiePolicy(allowed_domains=[]))


def _same_origin(request: Request) -> bool:
    """A form post must come from our own pages: the Origin (or Referer) names this host."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source:
        return True  # not a browser (curl, tests): nothing to protect with cookies
    return urlsplit(source).netloc == request.headers.get("host", "")
