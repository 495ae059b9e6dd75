"""A second factor in Chromium (issue #26's done-when): a business account manager sets up an
authenticator app and a passkey on the security page (Chromium's virtual authenticator, through
the DevTools protocol), makes the organisation require a second factor, then must use one to sign
in: the passkey, the app's code, or the passkey alone. A manager of that organisation without a
factor signs in without the manager's role and is led to the security page.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import BrowserContext, CDPSession, Page, expect

from services.devstack.signin import fresh_code_blocking
from services.devstack.stack import ADMIN_USERNAME, Stack
from tests.web.conftest import PASSWORD, mail_link, url

NAV = "Menu principal"
# gateway URL → (access token, when): reused for 4 of its 5 minutes (each sign-in costs a step).
_admin_tokens: dict[str, tuple[str, float]] = {}


def _admin(stack: Stack) -> dict[str, str]:
    """The ops admin's bearer header, signed in once through the gateway with its TOTP (the
    browser tests' event loop forbids the async helpers)."""
    cached = _admin_tokens.get(stack.gateway_url)
    if cached is None or time.monotonic() - cached[1] > 240:
        with httpx.Client(base_url=stack.gateway_url, timeout=30) as api:
            step = api.post(
                "/v1/auth/token",
                json={"username": ADMIN_USERNAME, "password": stack.secrets.admin_password},
            )
            assert step.status_code == 202, step.text
            code = fresh_code_blocking(stack.secrets.admin_totp_secret, ADMIN_USERNAME)
            done = api.post(
                "/v1/auth/second-factor", json={"ticket": step.json()["ticket"], "code": code}
            )
            assert done.status_code == 200, done.text
            cached = (done.json()["access_token"], time.monotonic())
            _admin_tokens[stack.gateway_url] = cached
    return {"Authorization": f"Bearer {cached[0]}"}


def _manager(stack: Stack, organisation_id: str | None = None) -> tuple[str, str]:
    """A provider (new unless given) and a business account manager of it with a password, made
    through the API by the ops admin: (organisation id, username)."""
    admin = _admin(stack)
    username = f"bam.{uuid.uuid4().hex[:8]}"
    email = f"{username}@example.org"
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as api:
        if organisation_id is None:
            created = api.post(
                "/v1/organisations",
                json={"kind": "service_provider", "name": f"Transit {username}"},
                headers=admin,
            )
            assert created.status_code == 201, created.text
            organisation_id = str(created.json()["id"])
        account = api.post(
            f"/v1/organisations/{organisation_id}/accounts",
            json={
                "username": username,
                "email": email,
                "first_name": "Bea",
                "last_name": "Manager",
                "roles": ["business_account_manager"],
            },
            headers=admin,
        )
        assert account.status_code == 201, account.text
        token = mail_link(stack, email, "/reset-password").split("token=", 1)[1]
        reset = api.post("/v1/password/reset", json={"token": token, "new_password": PASSWORD})
        assert reset.status_code == 204, reset.text
    return organisation_id, username


@pytest.fixture
def authenticator(portal: Page, context: BrowserContext) -> Iterator[CDPSession]:
    """Chromium's virtual authenticator: a platform passkey that verifies its user."""
    cdp = context.new_cdp_session(portal)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    yield cdp
    cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": added["authenticatorId"]})
    cdp.send("WebAuthn.disable")


def _password(page: Page, username: str) -> None:
    page.goto(url(page, "/sign-in"))
    page.get_by_label("Pseudo").fill(username)
    page.get_by_label("Mot de passe", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Se connecter", exact=True).click()


def _sign_out(page: Page) -> None:
    page.get_by_role("button", name="Se déconnecter").click()
    expect(page.get_by_role("heading", name="Se connecter")).to_be_visible()


def _has_the_managers_portal(page: Page) -> None:
    expect(
        page.get_by_role("navigation", name=NAV).get_by_role("link", name="Groupes de clients")
    ).to_be_visible()


def test_a_manager_enrols_an_app_and_a_passkey_then_must_use_one(
    portal: Page, stack: Stack, authenticator: CDPSession
) -> None:
    organisation_id, username = _manager(stack)
    _password(portal, username)
    _has_the_managers_portal(portal)

    # The authenticator app: scan (here: read the key), confirm with a code, keep the codes.
    portal.get_by_role("link", name="Sécurité").click()
    portal.get_by_role("button", name="Configurer une application").click()
    expect(portal.locator("figure.qr svg")).to_be_visible()
    secret = portal.locator("[data-totp-secret]").inner_text()
    portal.get_by_label("Code à 6 chiffres").fill(fresh_code_blocking(secret, username))
    portal.get_by_role("button", name="Confirmer").click()
    expect(portal.get_by_role("status").filter(has_text="Application configurée")).to_be_visible()
    expect(portal.locator("[data-recovery-codes] li")).to_have_count(10)
    expect(portal.get_by_text("Configurée.", exact=True)).to_be_visible()

    # A passkey, answered by Chromium's virtual authenticator.
    portal.get_by_label("Nom de la clé").fill("Ordinateur du bureau")
    portal.get_by_role("button", name="Ajouter une clé d'accès").click()
    expect(portal.get_by_role("status").filter(has_text="Clé d'accès ajoutée")).to_be_visible()
    expect(portal.get_by_text("Ordinateur du bureau")).to_be_visible()

    # The manager makes the organisation require a second factor of its managers.
    portal.goto(url(portal, f"/organisations/{organisation_id}/accounts"))
    portal.get_by_role("button", name="Exiger un second facteur").click()
    expect(portal.get_by_role("status").filter(has_text="Règle enregistrée")).to_be_visible()
    expect(portal.get_by_role("region", name="Second facteur obligatoire")).to_contain_text("Exigé")
    _sign_out(portal)

    # The password alone no longer opens the session: the passkey completes it...
    _password(portal, username)
    expect(portal.get_by_role("heading", name="Second facteur")).to_be_visible()
    portal.get_by_role("button", name="Utiliser ma clé d'accès").click()
    _has_the_managers_portal(portal)
    _sign_out(portal)

    # ... or the app's code; a wrong code is refused in words, beside the form.
    _password(portal, username)
    portal.get_by_label("Code de l'application").fill("000000")
    portal.get_by_role("button", name="Vérifier").first.click()
    expect(portal.get_by_role("alert")).to_contain_text("Ce code n'est pas valable")
    portal.get_by_label("Code de l'application").fill(fresh_code_blocking(secret, username))
    portal.get_by_role("button", name="Vérifier").first.click()
    _has_the_managers_portal(portal)
    _sign_out(portal)

    # And the passkey alone is a sign-in of its own (it verified its user).
    portal.get_by_role("button", name="Se connecter avec une clé d'accès").click()
    _has_the_managers_portal(portal)


def test_a_manager_without_a_factor_is_led_to_set_one_up(portal: Page, stack: Stack) -> None:
    organisation_id, _ = _manager(stack)
    admin = _admin(stack)
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as api:
        required = api.put(
            f"/v1/organisations/{organisation_id}/second-factor-policy",
            json={"required": True},
            headers=admin,
        )
        assert required.status_code == 200, required.text
    _, username = _manager(stack, organisation_id)
    _password(portal, username)
    expect(portal.get_by_role("heading", name="Sécurité du compte")).to_be_visible()
    alert = portal.get_by_role("alert")
    expect(alert).to_contain_text("Votre organisation exige un second facteur")
    expect(alert).to_contain_text("Gestionnaire de compte entreprise")  # the role held back
