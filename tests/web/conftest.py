"""Browser tests: Playwright (pytest-playwright) driving Debian's Chromium against the web portal
of the whole stack (tests/stack_fixture.py: gateway, services, PostgreSQL, Temporal, SMTP sink).

Playwright's own browser download cannot reach the internet here, so the browser is the system's
`chromium` (CHROMIUM overrides the path). Without one, every test here is skipped with the reason,
never passed. `GUICHET_SCREENSHOTS=<folder>` (make screenshots) saves each page a test names.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserType,
    Page,
    Playwright,
    ViewportSize,
    expect,
    sync_playwright,
)

from services.devstack.demo import DEMO_PASSWORD
from services.devstack.signin import fresh_code_blocking
from services.devstack.stack import Stack
from services.kit.testing import scaled
from tests.web.axe import AxeWatch, watching

CHROMIUM = (
    os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
)
PHONE: ViewportSize = {"width": 390, "height": 844}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CHROMIUM:
        return
    skip = pytest.mark.skip(reason="no Chromium: `apt-get install chromium` (or set CHROMIUM)")
    for item in items:
        if "tests/web/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(skip)


# pytest-playwright starts one sync Playwright per session. Its event loop then counts as running
# in this thread until the session ends, so every async test xdist schedules on this worker after
# the browser tests fails with "Runner.run() cannot be called from a running event loop". These
# overrides give Playwright, and the browser on it, the life of this package instead.


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    driver = sync_playwright().start()
    try:
        yield driver
    finally:
        driver.stop()


@pytest.fixture(scope="package")
def browser_type(playwright: Playwright, browser_name: str) -> BrowserType:
    browser_type: BrowserType = getattr(playwright, browser_name)
    return browser_type


@pytest.fixture(scope="package")
def launch_browser(
    browser_type_launch_args: dict[str, Any], browser_type: BrowserType
) -> Callable[..., Browser]:
    def launch(**overrides: Any) -> Browser:
        return browser_type.launch(**{**browser_type_launch_args, **overrides})

    return launch


@pytest.fixture(scope="package")
def browser(launch_browser: Callable[..., Browser]) -> Iterator[Browser]:
    launched = launch_browser()
    try:
        yield launched
    finally:
        launched.close()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """The system Chromium; no sandbox, since the suite may run as root in a container."""
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": ["--no-sandbox"]}


@pytest.fixture(scope="package")
def browser_context_args() -> dict[str, Any]:
    """The seeds' locale and zone (pytest-playwright's own version needs its session driver)."""
    return {"locale": "fr-FR", "timezone_id": "Europe/Paris"}


@pytest.fixture
def axe_watch(monkeypatch: pytest.MonkeyPatch) -> Iterator[AxeWatch]:
    """axe-core on every document of the pages a test attaches (tests/web/axe.py)."""
    yield from watching(monkeypatch)


@pytest.fixture
def portal(
    stack: Stack, page: Page, axe_watch: AxeWatch, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A page on the portal: relative URLs resolve against it, waits scale with the load, and
    axe-core checks every document it shows (tests/web/axe.py)."""
    page.set_default_timeout(scaled(15) * 1000)
    expect.set_options(timeout=scaled(15) * 1000)
    page._guichet_base = stack.web_url  # type: ignore[attr-defined]
    axe_watch.attach(page)
    yield page
    axe_watch.collect(page)
    request.node.user_properties.append(("axe", (len(axe_watch.checked), axe_watch.seconds)))


@pytest.fixture
def second_portal(
    stack: Stack, browser: Browser, axe_watch: AxeWatch, browser_context_args: dict[str, Any]
) -> Iterator[Page]:
    """Another person's browser beside `portal` (an admin while a member registers): its own
    cookies, the same checks."""
    context = browser.new_context(**browser_context_args)
    try:
        page = context.new_page()
        page.set_default_timeout(scaled(15) * 1000)
        page._guichet_base = stack.web_url  # type: ignore[attr-defined]
        axe_watch.attach(page)
        yield page
        axe_watch.collect(page)
    finally:
        context.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """What axe-core cost: the documents checked and the time the tests waited for it."""
    documents, seconds = 0, 0.0
    for reports in terminalreporter.stats.values():
        for report in reports:
            for name, value in getattr(report, "user_properties", ()):
                if name == "axe" and getattr(report, "when", "") == "teardown":
                    documents += value[0]
                    seconds += value[1]
    if documents:
        terminalreporter.write_line(
            f"axe-core: {documents} documents checked, {seconds:.1f} s spent waiting for it"
        )


def url(page: Page, path: str) -> str:
    return str(page._guichet_base) + path  # type: ignore[attr-defined]


# The cookies of a complete sign-in with a second factor, by username, and when it was made.
_SIGNED_IN: dict[str, tuple[list[Any], float]] = {}
# Kept well inside the test stack's access-token lifetime (ACCESS_TOKEN_TTL_SECONDS=3600 in
# tests/stack_fixture.py): a reused session never refreshes, so no refresh token is used twice.
_REUSE_SECONDS = 20 * 60


def sign_in(
    page: Page, username: str, password: str = DEMO_PASSWORD, *, totp_secret: str | None = None
) -> None:
    """Password, then (an account with an authenticator app, the ops admin's) its current code.

    Identity takes each 30-second TOTP step once per account, so a second sign-in within a step
    waits for the next (up to 30 s, and a dozen tests sign in as the ops admin): an account with
    a second factor signs in through the form once, later tests open the portal with that
    session's cookies, and sign in again only if it has ended (a test signed out, say).
    tests/web/test_second_factor.py goes through the form itself."""
    if totp_secret is not None and (kept := _SIGNED_IN.get(username)) is not None:
        cookies, at = kept
        if time.monotonic() - at < _REUSE_SECONDS:
            page.context.add_cookies(cookies)
            page.goto(url(page, "/"))
            if page.get_by_role("button", name="Se déconnecter").count():
                return
            page.context.clear_cookies()
        del _SIGNED_IN[username]
    page.goto(url(page, "/sign-in"))
    page.get_by_label("Pseudo").fill(username)
    page.get_by_label("Mot de passe", exact=True).fill(password)
    page.get_by_role("button", name="Se connecter", exact=True).click()
    if totp_secret is not None:
        page.get_by_label("Code de l'application").fill(fresh_code_blocking(totp_secret, username))
        page.get_by_role("button", name="Vérifier").first.click()
    expect(page.get_by_role("button", name="Se déconnecter")).to_be_visible()
    if totp_secret is not None:
        _SIGNED_IN[username] = (page.context.cookies(), time.monotonic())


@pytest.fixture
def screenshot() -> Callable[[Page, str], None]:
    """`screenshot(page, "groups-list")`: saved under $GUICHET_SCREENSHOTS when it is set."""
    folder = os.environ.get("GUICHET_SCREENSHOTS")

    def take(page: Page, name: str) -> None:
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)

    return take


def mail_link(stack: Stack, address: str, path: str, *, since: int = 0, timeout: float = 30) -> str:
    """The portal link (e.g. /verify-email?token=…) of the first mail to `address` after the
    `since` mails it had already received, waited for with a deadline that scales with the
    load. Pass `since=len(stack.smtp.to(address))` taken before the action, so that an older
    mail (the demo's own reset link, say) is never mistaken for the new one."""
    deadline = time.monotonic() + scaled(timeout)
    pattern = re.compile(re.escape(path) + r"\?token=[A-Za-z0-9_\-.~%]+")
    while time.monotonic() < deadline:
        for mail in stack.smtp.to(address)[since:]:
            found = pattern.search(mail.body)
            if found:
                return found.group(0)
        time.sleep(0.1)
    raise AssertionError(f"no mail to {address} with a {path} link within {scaled(timeout):.0f} s")


PASSWORD = "Une-phrase-de-passe-solide-2026"


def organisation_of(stack: Stack, username: str, kind: str) -> str:
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as api:
        token = api.post(
            "/v1/auth/token", json={"username": username, "password": DEMO_PASSWORD}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        for membership in api.get("/v1/me", headers=headers).json()["memberships"]:
            organisation_id = str(membership["organisation_id"])
            answer = api.get(f"/v1/organisations/{organisation_id}", headers=headers).json()
            if answer["kind"] == kind:
                return organisation_id
    raise AssertionError(f"{username} belongs to no {kind}")


def registered_member(stack: Stack, organisation_id: str, last_name: str) -> str:
    """A member who registered, confirmed the e-mail and completed the profile (by the API: the
    browser walk-through of those steps is tests/web/test_account.py); answers the username.
    Tests that change a password use one of these, never a demo user shared by other tests."""
    username = f"{last_name.lower()}.{uuid.uuid4().hex[:6]}"
    email = f"{username}@example.org"
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as api:
        registered = api.post(
            "/v1/registrations",
            json={
                "organisation_id": organisation_id,
                "username": username,
                "email": email,
                "password": PASSWORD,
                "first_name": "Léa",
                "last_name": last_name,
            },
        )
        assert registered.status_code == 201, registered.text
        token = mail_link(stack, email, "/verify-email").split("token=", 1)[1]
        assert api.post("/v1/registrations/verify-email", json={"token": token}).is_success
        access = api.post(
            "/v1/auth/token", json={"username": username, "password": PASSWORD}
        ).json()["access_token"]
        profile = api.put(
            "/v1/me/profile",
            headers={"Authorization": f"Bearer {access}"},
            json={
                "first_name": "Léa",
                "last_name": last_name,
                "phone": "+33 6 12 34 56 78",
                "address_line": "3 quai des Brumes",
                "postal_code": "69002",
                "city": "Lyon",
                "birth_date": "1988-02-29",
            },
        )
        assert profile.is_success, profile.text
    return username
