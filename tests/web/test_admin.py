"""Account administration in a browser (seeds 002 and 003): the validation queue of an
organisation's admin, finding a member by name, completing a missing e-mail, sending a reset link,
roles, the account's history, the operator's username recovery, and who may not."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from playwright.sync_api import Page, expect

from services.devstack.stack import ADMIN_USERNAME, Stack
from tests.web.conftest import PASSWORD, mail_link, organisation_of, registered_member, sign_in, url


def test_an_admin_validates_a_complete_account_from_the_queue(
    portal: Page, stack: Stack, screenshot: Callable[[Page, str], None]
) -> None:
    client_business = organisation_of(stack, "laval.paul", "client_business")
    last_name = f"Garnier{uuid.uuid4().hex[:4]}"
    username = registered_member(stack, client_business, last_name)
    sign_in(portal, "laval.paul")
    portal.get_by_role("navigation", name="Menu principal").get_by_role(
        "link", name="Comptes"
    ).click()
    queue = portal.get_by_role("table", name="Comptes à valider")
    row = queue.get_by_role("row").filter(has_text=username)
    expect(row).to_contain_text("En attente")
    screenshot(portal, "admin-accounts")
    row.get_by_role("button", name=f"Valider {username}").click()
    expect(portal.get_by_role("status")).to_contain_text(f"Compte de {username} validé")
    expect(
        portal.get_by_role("table", name="Comptes à valider").get_by_text(username)
    ).to_have_count(0)
    # The member now has full access: signing in shows no pending notice.
    portal.get_by_role("button", name="Se déconnecter").click()
    sign_in(portal, username, PASSWORD)
    expect(portal.get_by_text("attend la validation")).to_have_count(0)


def test_an_association_member_with_an_unpaid_fee_is_not_validated(
    portal: Page, stack: Stack
) -> None:
    association = organisation_of(stack, "assoc.admin", "association")
    username = registered_member(stack, association, f"Roux{uuid.uuid4().hex[:4]}")
    sign_in(portal, "assoc.admin")
    portal.goto(url(portal, f"/organisations/{association}/accounts"))
    row = (
        portal.get_by_role("table", name="Comptes à valider")
        .get_by_role("row")
        .filter(has_text=username)
    )
    row.get_by_role("button", name=f"Valider {username}").click()
    expect(portal.get_by_role("alert")).to_contain_text("cotisation de ce membre n'est pas réglée")
    row = (
        portal.get_by_role("table", name="Comptes à valider")
        .get_by_role("row")
        .filter(has_text=username)
    )
    expect(row).to_contain_text("En attente")


def test_an_admin_creates_a_member_finds_them_completes_the_email_and_sends_a_reset_link(
    portal: Page, stack: Stack, screenshot: Callable[[Page, str], None]
) -> None:
    association = organisation_of(stack, "assoc.admin", "association")
    last_name = f"Moulin{uuid.uuid4().hex[:4]}"
    username = f"{last_name.lower()}.jeanne"
    sign_in(portal, "assoc.admin")
    portal.goto(url(portal, f"/organisations/{association}/accounts"))
    create = portal.get_by_role("form", name="Créer un compte")
    create.get_by_label("Pseudo").fill(username)
    create.get_by_label("Prénom").fill("Jeanne")
    create.get_by_label("Nom", exact=True).fill(last_name)
    create.get_by_label("Rôle").select_option("member")
    create.get_by_role("button", name="Créer un compte").click()
    expect(portal.get_by_role("status")).to_contain_text(f"Compte {username} créé")
    expect(portal.get_by_role("heading", name=f"Compte {username}")).to_be_visible()

    portal.goto(url(portal, f"/organisations/{association}/accounts"))
    search = portal.get_by_role("search", name="Rechercher un membre")
    search.get_by_label("Nom", exact=True).fill(last_name.lower())
    search.get_by_role("button", name="Rechercher").click()
    portal.get_by_role("table", name="Résultats").get_by_role(
        "link", name=f"{last_name} Jeanne"
    ).click()
    expect(portal.get_by_role("heading", name=f"Compte {username}")).to_be_visible()

    portal.get_by_label("Adresse e-mail").fill("pas une adresse")
    portal.get_by_role("button", name="Enregistrer").click()
    expect(portal.locator("#f-email-error")).to_contain_text("Adresse e-mail invalide")
    expect(portal.get_by_label("Adresse e-mail")).to_have_value("pas une adresse")

    address = f"{username}@example.org"
    portal.get_by_label("Adresse e-mail").fill(address)
    portal.get_by_role("button", name="Enregistrer").click()
    expect(portal.get_by_role("status")).to_contain_text("Adresse e-mail enregistrée")
    portal.get_by_role("button", name="Envoyer un lien de réinitialisation").click()
    expect(portal.get_by_role("status")).to_contain_text("lien de réinitialisation a été envoyé")
    assert mail_link(stack, address, "/reset-password")  # a link, never a password
    history = portal.get_by_role("table", name="Historique du compte")
    expect(history).to_contain_text("Lien de réinitialisation envoyé")
    expect(history).to_contain_text("E-mail complété par un administrateur")
    screenshot(portal, "admin-account")

    # An address already there is the member's own: the admin may not overwrite it.
    portal.get_by_label("Adresse e-mail").fill(f"other.{address}")
    portal.get_by_role("button", name="Enregistrer").click()
    expect(portal.get_by_role("alert")).to_contain_text("seul le membre peut la changer")


def test_the_operator_lists_organisations_and_recovers_a_username(
    portal: Page, stack: Stack, screenshot: Callable[[Page, str], None]
) -> None:
    sign_in(
        portal,
        ADMIN_USERNAME,
        stack.secrets.admin_password,
        totp_secret=stack.secrets.admin_totp_secret,
    )
    portal.get_by_role("navigation", name="Menu principal").get_by_role(
        "link", name="Opérations"
    ).click()
    organisations = portal.get_by_role("table", name="Organisations")
    expect(organisations).to_contain_text("Pizzeria Napoli")
    portal.get_by_label("Type").select_option("delivery_partner")
    portal.get_by_role("button", name="Rechercher").click()
    expect(organisations).not_to_contain_text("Garage du Centre")
    portal.get_by_label("Adresse e-mail").fill("napoli.manager@demo.guichet.example.com")
    portal.get_by_role("button", name="Envoyer le pseudo").click()
    expect(portal.get_by_role("alert")).to_be_visible()  # no verification reference: refused
    expect(portal.get_by_label("Adresse e-mail")).to_have_value(
        "napoli.manager@demo.guichet.example.com"
    )
    portal.get_by_label("Référence de la vérification").fill("ID-CHECK-2026-0042")
    portal.get_by_role("button", name="Envoyer le pseudo").click()
    expect(portal.get_by_role("status")).to_contain_text("son pseudo vient d'être envoyé")
    screenshot(portal, "operator-home")


def test_an_admin_of_one_organisation_cannot_open_another_ones_accounts(
    portal: Page, stack: Stack
) -> None:
    association = organisation_of(stack, "assoc.admin", "association")
    sign_in(portal, "laval.paul")
    answer = portal.goto(url(portal, f"/organisations/{association}/accounts"))
    assert answer is not None and answer.status in (403, 404)
    expect(portal.get_by_role("heading", name="Un problème est survenu")).to_be_visible()
    expect(portal.locator("body")).not_to_contain_text("Dupont")
