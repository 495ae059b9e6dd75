"""The portal's delivery, without a browser or a gateway (issue 25 items 4 and 7): confirmations
travel in the signed session and never in the URL, static files carry their hash and a year's
cache, responses are compressed, and the favicon answers. Each test failed before the change."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner
from starlette.middleware.sessions import SessionMiddleware

from web.app import create_app
from web.flash import flash, take_flash
from web.i18n import translate
from web.session import SESSION_COOKIE
from web.settings import WebSettings

SECRET = "s" * 40


def _flash_app() -> FastAPI:
    """The portal's session middleware and flash helpers around two bare routes."""
    create_app(WebSettings(session_secret=SECRET))  # registers every portal's messages
    app = FastAPI()

    @app.post("/act")
    async def act(request: Request) -> PlainTextResponse:
        flash(request, "groups.created", name="Équipe export")
        return PlainTextResponse("done")

    @app.get("/next")
    async def next_page(request: Request) -> PlainTextResponse:
        shown = take_flash(request, lambda key, **p: translate("fr", key, **p))
        return PlainTextResponse(shown.text if shown else "")

    app.add_middleware(SessionMiddleware, secret_key=SECRET, session_cookie=SESSION_COOKIE)
    return app


def test_a_confirmation_is_shown_once_on_the_next_page() -> None:
    with TestClient(_flash_app()) as client:
        client.post("/act")
        assert client.get("/next").text == "Le groupe « Équipe export » a été créé."
        assert client.get("/next").text == ""  # taken: a reload says nothing


def test_a_confirmation_cannot_be_forged() -> None:
    """A cookie written by anyone but the portal (unsigned, or signed with another key) and a
    key that is not one of our messages say nothing."""
    payload = {"flash": {"key": "groups.created", "params": {"name": "Votre compte sera supprimé"}}}
    encoded = base64.b64encode(json.dumps(payload).encode())
    other = TimestampSigner("another secret of forty characters......").sign(encoded)
    unknown = TimestampSigner(SECRET).sign(
        base64.b64encode(json.dumps({"flash": {"key": "Votre compte sera supprimé"}}).encode())
    )
    with TestClient(_flash_app()) as client:
        for cookie in (encoded, other, unknown):
            client.cookies.set(SESSION_COOKIE, cookie.decode())
            assert client.get("/next").text == ""


def test_a_flash_key_must_be_a_message() -> None:
    app = FastAPI()

    @app.get("/")
    async def bad(request: Request) -> PlainTextResponse:
        flash(request, "not a message key")
        return PlainTextResponse("")

    app.add_middleware(SessionMiddleware, secret_key=SECRET)
    with TestClient(app) as client, pytest.raises(KeyError):
        client.get("/")


@pytest.fixture(scope="module")
def portal() -> Iterator[TestClient]:
    settings = WebSettings(session_secret=SECRET, gateway_url="http://127.0.0.1:9")
    with TestClient(create_app(settings)) as client:
        yield client


def test_static_files_have_hashed_names_cached_for_a_year(portal: TestClient) -> None:
    page = portal.get("/sign-in")  # the gateway is not asked for the sign-in page
    links = re.findall(r'(?:href|src)="(/static/[^"]+)"', page.text)
    assert any(re.search(r"/guichet\.[0-9a-f]{10}\.css$", link) for link in links), links
    for link in links:
        answer = portal.get(link)
        assert answer.status_code == 200, link
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
    plain = portal.get("/static/guichet.css")
    assert plain.status_code == 200 and plain.headers["cache-control"] == "no-cache"


def test_responses_are_compressed(portal: TestClient) -> None:
    answer = portal.get("/static/htmx.min.js", headers={"accept-encoding": "gzip"})
    assert answer.headers["content-encoding"] == "gzip"
    assert len(answer.content) > 45_000  # the client inflated what came compressed
    page = portal.get("/sign-in", headers={"accept-encoding": "gzip"})
    assert page.headers["content-encoding"] == "gzip"


def test_htmx_is_loaded_only_by_the_pages_that_use_it(portal: TestClient) -> None:
    """A page without a live part does not pay for 50 KB of script (Lighthouse: blocking time)."""
    assert "htmx" not in portal.get("/sign-in").text


def test_the_favicon_and_a_description_are_there(portal: TestClient) -> None:
    icon = portal.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/vnd.microsoft.icon"
    page = portal.get("/sign-in").text
    assert re.search(r'<meta name="description" content="[^"]{40,}">', page)
    assert 'rel="icon"' in page
