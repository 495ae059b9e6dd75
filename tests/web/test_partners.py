"""The delivery-partner back office's walk-throughs (seed 003) in a browser, on the real stack:
orders in progress and the history with their reasons, a product that ran out, the
out-of-stock escalation that support settles, couriers, the daily check-in, a promotion in
its steps, a bank-detail change with its proof that the operator approves, and a partner who
may not open another store's pages."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from playwright.sync_api import Locator, Page, expect

from services.devstack.demo import DEMO_PASSWORD
from services.devstack.stack import Stack
from tests.web.conftest import organisation_of, sign_in, url

Shot = Callable[[Page, str], None]
PARIS = ZoneInfo("Europe/Paris")


def _store_id(stack: Stack, username: str) -> str:
    """The store is the delivery_partner organisation: its id is the user's organisation's."""
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as http:
        token = http.post(
            "/v1/auth/token", json={"username": username, "password": DEMO_PASSWORD}
        ).json()["access_token"]
        me = http.get("/v1/me", headers={"authorization": f"Bearer {token}"}).json()
    return str(me["organisation_id"])


def _sign_out(portal: Page) -> None:
    portal.get_by_role("button", name="Se déconnecter").click()
    expect(portal.get_by_role("button", name="Se connecter", exact=True)).to_be_visible()


def _local(moment: datetime) -> str:
    """What a datetime-local input takes, on the store's (Paris) clock."""
    return moment.astimezone(PARIS).strftime("%Y-%m-%dT%H:%M")


def test_orders_in_progress_and_the_history_with_cancellation_reasons(
    portal: Page, screenshot: Shot
) -> None:
    sign_in(portal, "napoli.manager")
    portal.get_by_role("link", name="Espace partenaire").first.click()
    expect(portal.get_by_role("heading", name="Pizzeria Napoli", level=1)).to_be_visible()
    expect(portal.get_by_label("E-mail du contact opérations")).to_have_value(
        "operations@napoli.example.com"
    )
    screenshot(portal, "partners-home")

    store_menu = portal.get_by_role("navigation", name="Menu de l'espace partenaire")
    store_menu.get_by_role("link", name="Commandes acceptées").click()
    accepted = portal.get_by_role("table", name="Commandes acceptées")
    expect(accepted.get_by_role("row", name=re.compile("NAP-1002"))).to_contain_text("Acceptée")
    screenshot(portal, "partners-orders")

    store_menu.get_by_role("link", name="Historique").click()
    portal.get_by_label("Statut").select_option(label="Annulée")
    portal.get_by_role("button", name="Filtrer").click()
    expect(portal).to_have_url(re.compile(r"status=cancelled"))
    history = portal.get_by_role("table", name="Historique")
    rows = history.locator("tbody tr")
    expect(rows.first).to_contain_text("Annulée")
    expect(history.locator("tbody")).not_to_contain_text("Livrée")
    reason = rows.first.locator("td").nth(4).inner_text()
    assert reason.strip(), "a cancelled order shows its reason in the history"
    screenshot(portal, "partners-history")

    rows.first.get_by_role("link").click()
    expect(portal.get_by_text("Raison de l'annulation")).to_be_visible()
    expect(portal.locator("dl")).to_contain_text(reason.strip())
    expect(portal.locator("dl")).to_contain_text(re.compile("Un paiement a eu lieu|Aucun paiement"))
    screenshot(portal, "partners-order")


def test_deactivating_a_product_keeps_the_reason_and_refuses_a_past_reactivation(
    portal: Page, screenshot: Shot
) -> None:
    sign_in(portal, "napoli.manager")
    portal.get_by_role("link", name="Espace partenaire").first.click()
    portal.get_by_role("link", name="Mon menu").click()
    card = _product(portal, "Panna cotta")
    card.get_by_text("Modifier « Panna cotta »").click()  # the product's forms fold under it
    reason = card.get_by_label(re.compile("^Raison"))
    reason.fill("plus de crème")
    card.get_by_label(re.compile("^Réactiver automatiquement")).fill(
        _local(datetime.now(PARIS) - timedelta(days=1))
    )
    card.get_by_role("button", name="Désactiver — Panna cotta").click()

    card = _product(portal, "Panna cotta")
    expect(card.get_by_role("alert")).to_be_focused()
    expect(card.locator(".field.invalid")).to_contain_text("La date doit être dans le futur.")
    expect(card.get_by_label(re.compile("^Raison"))).to_have_value("plus de crème")

    card.get_by_label(re.compile("^Réactiver automatiquement")).fill(
        _local(datetime.now(PARIS) + timedelta(days=2))
    )
    card.get_by_role("button", name="Désactiver — Panna cotta").click()
    # Defects: the confirmation sat 5,400 px above the view; the same words for both moves.
    card = _product(portal, "Panna cotta")
    done = card.get_by_role("status")
    expect(done).to_have_text("« Panna cotta » est désactivé : il n'est plus proposé aux clients.")
    expect(done).to_be_focused()
    expect(done).to_be_in_viewport()
    expect(card.get_by_role("heading")).to_contain_text("Désactivé")
    expect(card).to_contain_text("plus de crème")
    expect(card).to_contain_text("Jusqu'au")
    screenshot(portal, "partners-products")
    portal.reload()
    expect(portal.get_by_role("status")).to_have_count(0)  # said once, not on every visit

    card = _product(portal, "Panna cotta")
    card.get_by_text("Modifier « Panna cotta »").click()
    card.get_by_role("button", name="Réactiver — Panna cotta").click()
    card = _product(portal, "Panna cotta")
    expect(card.get_by_role("heading")).to_contain_text("Actif")
    expect(card.get_by_role("status")).to_contain_text("« Panna cotta » est réactivé")


def test_the_menu_pages_instead_of_growing_without_end(portal: Page, stack: Stack) -> None:
    """Defect: the products page was 16,000 px tall (every product's forms open, no paging)."""
    sign_in(portal, "napoli.manager")
    store = organisation_of(stack, "napoli.manager", "delivery_partner")
    portal.goto(url(portal, f"/partners/{store}/products"))
    assert portal.locator("li.product").count() <= 20
    height = portal.evaluate("document.documentElement.scrollHeight")
    assert height < 4_000, f"the menu page is {height} px tall"
    # A URL cannot make the page say anything (defect: ?saved=<text> was shown as is).
    portal.goto(url(portal, f"/partners/{store}/products?saved=Votre compte sera supprimé"))
    expect(portal.get_by_text("Votre compte sera supprimé")).to_have_count(0)
    expect(portal.get_by_role("status")).to_have_count(0)


def _product(portal: Page, name: str) -> Locator:
    return portal.locator("li.product", has=portal.get_by_role("heading", name=name))


def test_reporting_a_courier_from_the_history_and_contacting_a_late_one(
    portal: Page, screenshot: Shot
) -> None:
    sign_in(portal, "napoli.manager")
    portal.get_by_role("link", name="Espace partenaire").first.click()
    portal.get_by_role("link", name="Commandes acceptées").click()
    portal.get_by_role("link", name="NAP-1002").click()
    portal.get_by_label("Message (facultatif)").fill("Où êtes-vous ?")
    portal.get_by_role("button", name="Contacter le coursier").click()
    expect(portal.get_by_role("status")).to_contain_text("Contact avec le coursier enregistré.")

    portal.get_by_role("link", name="Historique").click()
    portal.get_by_label("Statut").select_option(label="Livrée")
    portal.get_by_role("button", name="Filtrer").click()
    expect(portal).to_have_url(re.compile(r"status=delivered"))
    rows = portal.get_by_role("table", name="Historique").locator("tbody tr")
    rows.nth(1).get_by_role("link").click()
    portal.get_by_label("Motif du signalement").select_option(label="Retard")
    portal.get_by_label("Commentaire (facultatif)").fill("40 minutes de retard")
    portal.get_by_role("button", name="Signaler le coursier").click()
    expect(portal.get_by_role("status")).to_contain_text("Coursier signalé.")
    portal.reload()
    expect(portal.get_by_text("Coursier signalé : Retard")).to_be_visible()
    expect(portal.get_by_role("button", name="Signaler le coursier")).to_have_count(0)


def test_the_daily_check_in_and_the_stores_support_sees_missing(
    portal: Page, stack: Stack, screenshot: Shot
) -> None:
    sign_in(portal, "napoli.manager")
    portal.get_by_role("link", name="Espace partenaire").first.click()
    portal.get_by_role("link", name="Pointage").click()
    portal.get_by_role("button", name="Pointer aujourd'hui").click()
    expect(portal.get_by_role("status")).to_contain_text("Pointage enregistré pour le")
    today = datetime.now(PARIS).date().isoformat()
    expect(portal.get_by_role("table", name="Pointage")).to_contain_text(today)
    screenshot(portal, "partners-check-ins")
    portal.get_by_role("button", name="Pointer aujourd'hui").click()
    expect(portal.get_by_role("alert")).to_contain_text("Vous avez déjà pointé aujourd'hui.")
    _sign_out(portal)

    sign_in(
        portal,
        "ops.admin",
        stack.secrets.admin_password,
        totp_secret=stack.secrets.admin_totp_secret,
    )
    portal.goto(url(portal, "/operator/partners/check-ins/missing"))
    expect(portal.get_by_role("heading", name="Magasins sans pointage")).to_be_visible()
    expect(portal.locator("main")).not_to_contain_text("Pizzeria Napoli")
    screenshot(portal, "partners-operator-missing")


def test_creating_configuring_and_activating_a_promotion(portal: Page, screenshot: Shot) -> None:
    name = f"Happy hour {uuid.uuid4().hex[:6]}"
    sign_in(portal, "napoli.manager")
    portal.get_by_role("link", name="Espace partenaire").first.click()
    portal.get_by_role("link", name="Promotions").click()
    expect(portal.get_by_role("table", name="Promotions actives")).to_contain_text("Margherita")
    screenshot(portal, "partners-promotions")
    portal.get_by_label("Nom").fill(name)
    portal.get_by_label("Type").select_option(label="Pourcentage de remise")
    portal.get_by_role("button", name="Créer").click()
    expect(portal.get_by_role("status")).to_contain_text("Promotion créée")

    now = datetime.now(PARIS)
    portal.get_by_label("Remise (%)").fill("95")
    portal.get_by_label("Diavola").check()
    portal.get_by_label("Début").fill(_local(now + timedelta(minutes=5)))
    portal.get_by_label("Fin").fill(_local(now + timedelta(days=7)))
    portal.get_by_role("button", name="Enregistrer la configuration").click()
    expect(portal.get_by_role("alert")).to_be_visible()
    expect(portal.locator(".field.invalid")).to_contain_text("Au plus 90.")
    expect(portal.get_by_label("Remise (%)")).to_have_value("95")

    portal.get_by_label("Remise (%)").fill("15")
    portal.get_by_role("button", name="Enregistrer la configuration").click()
    expect(portal.get_by_role("status")).to_contain_text("Promotion configurée")
    portal.get_by_role("button", name="Activer la promotion").click()
    expect(portal.get_by_role("status")).to_contain_text("Promotion activée.")
    expect(portal.get_by_role("heading", level=1)).to_contain_text("Actif")
    screenshot(portal, "partners-promotion")

    portal.get_by_label("Décrivez le problème").fill("La remise ne s'affiche pas.")
    portal.get_by_role("button", name="Signaler un problème").click()
    expect(portal.get_by_role("status")).to_contain_text("Problème signalé à l'assistance.")

    portal.get_by_role("link", name="Promotions").click()
    active = portal.get_by_role("table", name="Promotions actives")
    expect(active.get_by_role("row", name=re.compile(name))).to_contain_text("15 %")


def test_a_bank_detail_change_with_its_proof_is_approved_by_the_operator(
    portal: Page, stack: Stack, screenshot: Shot
) -> None:
    holder = f"Napoli SARL {uuid.uuid4().hex[:6]}"
    sign_in(portal, "napoli.manager")
    portal.get_by_role("link", name="Espace partenaire").first.click()
    portal.get_by_role("link", name="Coordonnées bancaires").click()
    portal.get_by_label("IBAN").fill("FR76 1234")
    portal.get_by_label("BIC").fill("AGRIFRPP")
    portal.get_by_label("Titulaire du compte").fill(holder)
    portal.get_by_role("button", name="Demander le changement").click()
    expect(portal.get_by_role("alert")).to_be_visible()
    expect(portal.locator(".field.invalid")).to_contain_text("Cet IBAN n'est pas valide.")
    expect(portal.get_by_label("Titulaire du compte")).to_have_value(holder)

    portal.get_by_label("IBAN").fill("FR76 3000 6000 0112 3456 7890 189")
    portal.get_by_role("button", name="Demander le changement").click()
    expect(portal.get_by_role("status")).to_contain_text("joignez maintenant le justificatif")
    portal.get_by_label("Justificatif de la banque").set_input_files(
        {"name": "rib.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4\n% RIB\n"}
    )
    portal.get_by_role("button", name="Envoyer le justificatif").click()
    expect(portal.get_by_role("status")).to_contain_text("Justificatif envoyé")
    expect(portal.locator("section.card").first).to_contain_text("Justificatif envoyé")
    screenshot(portal, "partners-bank")
    _sign_out(portal)

    sign_in(
        portal,
        "ops.admin",
        stack.secrets.admin_password,
        totp_secret=stack.secrets.admin_totp_secret,
    )
    portal.goto(url(portal, "/operator/partners/bank-detail-changes"))
    card = portal.locator("section.card", has_text=holder)
    with portal.expect_download() as download:
        card.get_by_role("link", name=re.compile("Télécharger le justificatif")).click()
    with open(download.value.path(), "rb") as proof:
        assert proof.read().startswith(b"%PDF-")
    screenshot(portal, "partners-operator-bank")
    card.get_by_role("button", name=f"Approuver — {holder}").click()
    expect(portal.get_by_role("status")).to_contain_text("Changement approuvé.")
    _sign_out(portal)

    sign_in(portal, "napoli.manager")
    portal.get_by_role("link", name="Espace partenaire").first.click()
    portal.get_by_role("link", name="Coordonnées bancaires").click()
    expect(portal.locator("section.card", has_text=holder)).to_contain_text("Approuvée")
    expect(portal.get_by_text("Compte bancaire actuel : FR76 **** 0189")).to_be_visible()


def test_messages_and_content_changes_reach_support_and_the_operator(
    portal: Page, stack: Stack, screenshot: Shot
) -> None:
    subject = f"Facture de novembre {uuid.uuid4().hex[:6]}"
    new_name = f"Panna cotta maison {uuid.uuid4().hex[:4]}"
    sign_in(portal, "napoli.manager")
    portal.get_by_role("link", name="Espace partenaire").first.click()
    portal.get_by_role("link", name="Aide et ressources").click()
    portal.get_by_label("Sujet").select_option(label="Factures et commandes")
    portal.get_by_label("Code de commande").fill("NAP-000010")
    portal.get_by_role("button", name="Envoyer").click()
    expect(portal.get_by_role("alert")).to_be_visible()
    expect(portal.locator(".field.invalid").first).to_contain_text("Champ obligatoire.")
    expect(portal.get_by_label("Code de commande")).to_have_value("NAP-000010")
    portal.get_by_label("Objet").fill(subject)
    portal.get_by_label("Message", exact=True).fill("Le montant ne correspond pas.")
    portal.get_by_role("button", name="Envoyer").click()
    expect(portal.get_by_role("status")).to_contain_text("Message envoyé.")
    expect(portal.get_by_role("table", name="Messages envoyés")).to_contain_text(subject)
    screenshot(portal, "partners-messages")

    portal.get_by_role("link", name="Modifications du contenu").click()
    portal.get_by_label("Produit concerné").select_option(label="Panna cotta")
    portal.get_by_label("Nouveau nom").fill(new_name)
    portal.get_by_role("button", name="Envoyer").click()
    expect(portal.get_by_role("status")).to_contain_text("Demande de modification envoyée.")
    expect(portal.get_by_role("table", name="Modifications du contenu")).to_contain_text(new_name)
    screenshot(portal, "partners-content-changes")
    _sign_out(portal)

    # The operator picks the store by its name (defect: a store id had to be typed).
    sign_in(
        portal,
        "ops.admin",
        stack.secrets.admin_password,
        totp_secret=stack.secrets.admin_totp_secret,
    )
    portal.goto(url(portal, "/operator/partners/content-changes"))
    portal.get_by_label("Magasin").select_option(label="Pizzeria Napoli")
    portal.get_by_role("button", name="Afficher").click()
    portal.get_by_role("button", name=f"Approuver — {new_name}").click()
    expect(portal.get_by_role("status")).to_contain_text("Modification appliquée.")
    expect(portal.locator("section.card", has_text=new_name)).to_contain_text("Appliquée")
    screenshot(portal, "partners-operator-content")


def test_a_partner_cannot_open_another_stores_pages(portal: Page, stack: Stack) -> None:
    napoli = _store_id(stack, "napoli.manager")
    sign_in(portal, "port.manager")
    for path in ("", "/orders", "/history", "/bank-details"):
        response = portal.goto(url(portal, f"/partners/{napoli}{path}"))
        assert response is not None and response.status == 404
        expect(portal.get_by_role("alert")).to_contain_text("Introuvable, ou pas accessible.")
        expect(portal.locator("body")).not_to_contain_text("Pizzeria Napoli")
        expect(portal.locator("body")).not_to_contain_text("NAP-")
    response = portal.goto(url(portal, "/operator/partners/escalations"))
    assert response is not None and response.status in (403, 404)
    expect(portal.get_by_role("alert")).to_be_visible()


def test_out_of_stock_answered_then_support_cancels_the_order(
    portal: Page, stack: Stack, screenshot: Shot
) -> None:
    """Seed: deactivate the product, call the customer; they refuse, so support cancels."""
    sign_in(portal, "napoli.manager")
    portal.get_by_role("link", name="Espace partenaire").first.click()
    portal.get_by_role("link", name="Commandes acceptées").click()
    portal.get_by_role("link", name="NAP-1001").click()
    portal.get_by_label("Produit épuisé").select_option(label="Tiramisu")
    portal.get_by_role("button", name="Signaler le produit épuisé").click()
    expect(portal.get_by_role("status")).to_contain_text("Produit signalé épuisé et désactivé")

    # The customer accepts but no replacement is chosen: refused beside the field.
    portal.get_by_label("Le client accepte l'alternative").check()
    portal.get_by_role("button", name="Enregistrer la réponse").click()
    expect(portal.get_by_role("alert")).to_be_visible()
    expect(portal.locator(".field.invalid")).to_have_count(1)
    expect(portal.get_by_label("Le client accepte l'alternative")).to_be_checked()

    portal.get_by_label("Le client refuse").check()
    portal.get_by_label("Note (facultatif)").fill("Le client ne veut pas d'autre dessert")
    portal.get_by_role("button", name="Enregistrer la réponse").click()
    expect(portal.get_by_role("status")).to_contain_text("Réponse du client enregistrée.")
    _sign_out(portal)

    sign_in(
        portal,
        "ops.admin",
        stack.secrets.admin_password,
        totp_secret=stack.secrets.admin_totp_secret,
    )
    portal.goto(url(portal, "/operator/partners/escalations"))
    cancel = portal.get_by_role("button", name="Annuler la commande NAP-1001")
    expect(cancel).to_be_visible()  # the table follows the workflow (htmx) until it escalates
    screenshot(portal, "partners-operator-escalations")
    cancel.click()
    expect(portal.get_by_role("status")).to_contain_text("Commande NAP-1001 annulée et remboursée.")
    _sign_out(portal)

    sign_in(portal, "napoli.manager")
    portal.get_by_role("link", name="Espace partenaire").first.click()
    portal.get_by_role("link", name="Historique").click()
    row = portal.get_by_role("table", name="Historique").get_by_role(
        "row", name=re.compile("NAP-1001")
    )
    expect(row).to_contain_text("Annulée")
    expect(portal.get_by_role("table", name="Commandes acceptées")).to_have_count(0)
