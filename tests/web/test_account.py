"""Identity's walk-throughs in a browser (seeds 002 and 003): sign-in shows the person's portals,
registration with e-mail verification, password reset from the mailed link, the profile, the
errors shown next to their fields in the page's language, and the English locale."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from services.devstack.stack import Stack
from tests.web.conftest import (
    PHONE,
    mail_link,
    organisation_of,
    registered_member,
    sign_in,
    url,
)
from web.session import ACCESS_COOKIE, REFRESH_COOKIE


def test_signing_in_as_a_demo_user_shows_that_users_portals(
    portal: Page, screenshot: Callable[[Page, str], None]
) -> None:
    portal.goto(url(portal, "/"))
    expect(portal).to_have_url(url(portal, "/sign-in"))
    screenshot(portal, "account-sign-in")
    sign_in(portal, "dupont.jean")
    expect(portal.get_by_role("heading", name="Bonjour Jean")).to_be_visible()
    menu = portal.get_by_role("navigation", name="Menu principal")
    expect(menu.get_by_role("link", name="Groupes de clients")).to_be_visible()
    expect(menu.get_by_role("link", name="Assistance")).to_be_visible()
    expect(menu.get_by_role("link", name="Espace partenaire")).to_have_count(0)
    screenshot(portal, "account-home")


def test_a_wrong_password_is_refused_in_french_and_keeps_the_username(portal: Page) -> None:
    portal.goto(url(portal, "/sign-in"))
    portal.get_by_label("Pseudo").fill("DUPONT.jean")
    portal.get_by_label("Mot de passe", exact=True).fill("not the password")
    portal.get_by_role("button", name="Se connecter", exact=True).click()
    expect(portal.get_by_role("alert")).to_contain_text("Identifiant ou mot de passe incorrect")
    expect(portal.get_by_label("Pseudo")).to_have_value("DUPONT.jean")
    expect(portal.get_by_label("Mot de passe", exact=True)).to_have_value("")
    expect(portal.locator("body")).not_to_contain_text("request_id")


def test_english_is_the_second_locale(portal: Page) -> None:
    portal.goto(url(portal, "/sign-in?lang=en"))
    expect(portal.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(portal.locator("html")).to_have_attribute("lang", "en")
    portal.goto(url(portal, "/forgot-password"))  # the choice is remembered
    expect(portal.get_by_role("heading", name="Forgotten password")).to_be_visible()


def test_registration_verification_and_profile_in_a_browser(
    portal: Page, stack: Stack, screenshot: Callable[[Page, str], None]
) -> None:
    sign_in(portal, "assoc.admin")
    association = portal.get_by_role("link", name="Association").first.get_attribute("href")
    assert association and association.startswith("/associations/")
    organisation_id = association.split("/")[2]
    portal.get_by_role("button", name="Se déconnecter").click()

    portal.goto(url(portal, f"/register?organisation={organisation_id}"))
    portal.get_by_label("Pseudo").fill("Lefebvre.Anne")
    portal.get_by_label("Adresse e-mail").fill("not-an-address")
    portal.get_by_label("Prénom").fill("Anne")
    portal.get_by_label("Nom", exact=True).fill("Lefebvre")
    portal.get_by_label("Mot de passe", exact=True).fill("Une-phrase-de-passe-solide-2026")
    portal.get_by_role("button", name="Créer un compte").click()
    email_error = portal.locator("#f-email-error")
    expect(email_error).to_contain_text("Adresse e-mail invalide")
    expect(portal.get_by_label("Adresse e-mail")).to_have_attribute("aria-invalid", "true")
    expect(portal.get_by_label("Prénom")).to_have_value("Anne")
    screenshot(portal, "account-register-error")

    portal.get_by_label("Adresse e-mail").fill("anne.lefebvre@example.org")
    portal.get_by_label("Mot de passe", exact=True).fill("Une-phrase-de-passe-solide-2026")
    portal.get_by_role("button", name="Créer un compte").click()
    expect(portal.get_by_role("status")).to_contain_text("Compte créé")

    link = mail_link(stack, "anne.lefebvre@example.org", "/verify-email")
    portal.goto(url(portal, link))
    portal.get_by_role("button", name="Confirmer mon adresse").click()
    expect(portal.get_by_role("status")).to_contain_text("Adresse e-mail confirmée")

    sign_in(portal, "lefebvre.anne", "Une-phrase-de-passe-solide-2026")
    expect(portal.get_by_text("Il manque à votre profil : téléphone")).to_be_visible()
    portal.get_by_role("link", name="Compléter mon profil").click()
    portal.get_by_label("Téléphone").fill("+33 1 23 45 67 89")
    portal.get_by_label("Adresse", exact=True).fill("12 rue Oberkampf")
    portal.get_by_label("Code postal").fill("75011")
    portal.get_by_label("Ville").fill("Paris")
    portal.get_by_label("Date de naissance").fill("1990-05-17")
    portal.get_by_role("button", name="Enregistrer").click()
    expect(portal.get_by_role("status").filter(has_text="Profil enregistré")).to_be_visible()
    expect(portal.get_by_label("Ville")).to_have_value("Paris")
    expect(portal.get_by_text("attend la validation d'un administrateur")).to_be_visible()


def test_password_reset_from_the_mailed_link(portal: Page, stack: Stack) -> None:
    erp = organisation_of(stack, "bois.user", "erp_customer")
    username = registered_member(stack, erp, "Fabre")  # not a demo user: others sign in as those
    address = f"{username}@example.org"
    before = len(stack.smtp.to(address))  # the registration's own mails come first
    portal.goto(url(portal, "/forgot-password"))
    portal.get_by_label("Pseudo ou adresse e-mail").fill(username)
    portal.get_by_role("button", name="Envoyer le lien").click()
    expect(portal.get_by_role("status")).to_contain_text("lien de réinitialisation")
    link = mail_link(stack, address, "/reset-password", since=before)
    portal.goto(url(portal, link))
    portal.get_by_label("Nouveau mot de passe").fill("court")
    portal.get_by_role("button", name="Enregistrer").click()
    expect(portal.get_by_role("alert")).to_be_visible()
    expect(portal.get_by_role("alert")).not_to_contain_text("même temps")
    portal.get_by_label("Nouveau mot de passe").fill("Menuiserie-Bois-Nouveau-2026")
    portal.get_by_role("button", name="Enregistrer").click()
    expect(portal.get_by_role("status")).to_contain_text("Mot de passe changé")
    sign_in(portal, username, "Menuiserie-Bois-Nouveau-2026")


def test_pages_fit_a_phone_and_work_from_the_keyboard(portal: Page) -> None:
    portal.set_viewport_size(PHONE)
    portal.goto(url(portal, "/sign-in"))
    width = portal.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the sign-in page scrolls sideways on a phone ({width}px)"
    portal.keyboard.press("Tab")
    expect(portal.get_by_role("link", name="Aller au contenu")).to_be_focused()


def test_a_session_renewed_on_an_error_page_stays_signed_in(portal: Page, stack: Stack) -> None:
    """The access token has expired (here: is unreadable), so the portal renews it with the
    refresh token while serving a page the gateway then refuses. The error page must hand the
    renewed tokens back: the old refresh token is spent, and presenting it again would revoke
    the session."""
    sign_in(portal, "bois.user")
    refresh_before = _cookie(portal, REFRESH_COOKIE)
    portal.context.add_cookies(
        [{"name": ACCESS_COOKIE, "value": "expired", "url": url(portal, "/")}]
    )
    portal.goto(url(portal, "/support/queue"))
    expect(portal.get_by_role("alert")).to_contain_text("Vous n'avez pas le droit de faire cela.")
    assert _cookie(portal, REFRESH_COOKIE) not in (None, refresh_before)
    assert _cookie(portal, ACCESS_COOKIE) not in (None, "expired")
    portal.goto(url(portal, "/"))
    expect(portal.get_by_role("button", name="Se déconnecter")).to_be_visible()


def _cookie(page: Page, name: str) -> str | None:
    return next((c["value"] for c in page.context.cookies() if c["name"] == name), None)
