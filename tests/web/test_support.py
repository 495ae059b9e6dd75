"""Support's walk-throughs in a browser (seed 004): a category's questions and answers come
before the form, and "my answer was in the FAQ" is a measured deflection; otherwise the customer
opens a ticket (every field required, each missing one named beside it), finds it in "my
tickets" with its SLA deadline in the customer's time zone; the agent takes it from the queue,
replies and changes status and priority; the customer reads the answer and the new status, and
answers in the ticket. A customer never reads another organisation's ticket."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from playwright.sync_api import Browser, FilePayload, Page, expect

from services.devstack.demo import DEMO_PASSWORD
from services.devstack.signin import fresh_code_blocking
from services.devstack.stack import Stack
from services.kit.testing import scaled
from tests.web.conftest import sign_in, url
from web.formatting import local_time
from workflows.contracts.business_time import CalendarSpec, compile_calendar, next_closed_days

PARIS = "Europe/Paris"


_TOKENS: dict[tuple[str, str], tuple[float, str]] = {}


def _token(stack: Stack, username: str, password: str = DEMO_PASSWORD) -> str:
    """An access token for the gateway reads, reused for two minutes (it lives five): each
    login hashes a password, which a loaded machine makes slow."""
    key = (stack.gateway_url, username)
    cached = _TOKENS.get(key)
    if cached and time.monotonic() - cached[0] < 120:
        return cached[1]
    answer = httpx.post(
        f"{stack.gateway_url}/v1/auth/token",
        json={"username": username, "password": password},
        timeout=scaled(60),
    )
    answer.raise_for_status()
    if answer.status_code == 202:  # the ops admin's second step: its authenticator app's code
        code = fresh_code_blocking(stack.secrets.admin_totp_secret, username)
        answer = httpx.post(
            f"{stack.gateway_url}/v1/auth/second-factor",
            json={"ticket": answer.json()["ticket"], "code": code},
            timeout=scaled(60),
        )
        answer.raise_for_status()
    token = str(answer.json()["access_token"])
    _TOKENS[key] = (time.monotonic(), token)
    return token


def _get(stack: Stack, token: str, path: str, **query: Any) -> Any:
    answer = httpx.get(
        f"{stack.gateway_url}{path}",
        params=query,
        headers={"Authorization": f"Bearer {token}"},
        timeout=scaled(60),
    )
    answer.raise_for_status()
    return answer.json()


def _deflections(stack: Stack, category_name: str) -> int:
    """The category's deflections in the SLA report, read by the support team."""
    token = _token(stack, "ops.admin", stack.secrets.admin_password)
    now = dt.datetime.now(dt.UTC)
    report = _get(
        stack,
        token,
        "/v1/support/reports/sla",
        start=(now - dt.timedelta(days=2)).isoformat(),
        end=(now + dt.timedelta(days=2)).isoformat(),
    )
    return sum(
        row["deflections"] for row in report["deflections"] if row["category_name"] == category_name
    )


def _sign_out(portal: Page) -> None:
    portal.get_by_role("button", name="Se déconnecter").click()
    expect(portal.get_by_role("button", name="Se connecter", exact=True)).to_be_visible()


def test_an_answer_found_in_the_faq_is_counted_as_a_deflection(
    portal: Page, stack: Stack, screenshot: Callable[[Page, str], None]
) -> None:
    before = _deflections(stack, "Clients et contacts")
    sign_in(portal, "bois.user")
    portal.get_by_role("navigation", name="Menu principal").get_by_role(
        "link", name="Assistance"
    ).click()
    expect(portal.get_by_role("heading", name="Catégories")).to_be_visible()
    screenshot(portal, "support-categories")
    portal.get_by_role("link", name="Clients et contacts").click()
    expect(
        portal.get_by_role("heading", name="Questions fréquentes : Clients et contacts")
    ).to_be_visible()
    expect(portal.get_by_text("L'e-mail d'un contact n'est pas enregistré")).to_be_visible()
    expect(portal.get_by_text("cherchez un doublon dans Contacts")).to_be_visible()
    expect(portal.get_by_role("link", name="Cliquez ici pour ouvrir un ticket")).to_be_visible()
    screenshot(portal, "support-faq")
    portal.get_by_role("button", name="Ma réponse était dans la FAQ").click()
    expect(portal.get_by_role("status")).to_contain_text("aucun ticket n'a été ouvert")
    assert _deflections(stack, "Clients et contacts") >= before + 1


def test_a_ticket_form_with_missing_fields_names_each_beside_it_and_keeps_the_values(
    portal: Page,
) -> None:
    sign_in(portal, "bois.user")
    portal.goto(url(portal, "/support"))
    portal.get_by_role("link", name="Facturation et notes fiscales").click()
    portal.get_by_role("link", name="Cliquez ici pour ouvrir un ticket").click()
    expect(portal.get_by_role("heading", name="Ouvrir un ticket")).to_be_visible()
    expect(portal.get_by_label("Catégorie")).to_have_value(
        portal.get_by_role("option", name="Facturation et notes fiscales").get_attribute("value")
        or ""
    )
    portal.get_by_label("Titre court").fill("Impression impossible")
    portal.get_by_label("Description").fill("Rien ne sort quand je clique sur Facturer.")
    portal.get_by_role("button", name="Ouvrir le ticket").click()
    alert = portal.get_by_role("alert")
    expect(alert).to_contain_text("Code de l'écran : Champ obligatoire.")
    expect(alert).to_contain_text("Exemple d'enregistrement : Champ obligatoire.")
    expect(portal.locator("#f-screen_code-error")).to_have_text("Champ obligatoire.")
    expect(portal.locator("#f-example_record-error")).to_have_text("Champ obligatoire.")
    expect(portal.get_by_label("Code de l'écran")).to_have_attribute("aria-invalid", "true")
    expect(portal.get_by_label("Titre court")).to_have_value("Impression impossible")
    expect(portal.get_by_label("Description")).to_have_value(
        "Rien ne sort quand je clique sur Facturer."
    )
    expect(portal.locator("#f-title-error")).to_have_count(0)
    expect(portal.locator("body")).not_to_contain_text("is required")


def test_a_ticket_opened_after_the_faq_is_answered_by_the_agent_and_read_by_the_customer(
    portal: Page, stack: Stack, screenshot: Callable[[Page, str], None]
) -> None:
    title = f"E-mail du contact perdu {uuid.uuid4().hex[:8]}"
    sign_in(portal, "bois.user")
    portal.goto(url(portal, "/support"))
    portal.get_by_role("link", name="Clients et contacts").click()
    expect(portal.get_by_text("cherchez un doublon dans Contacts")).to_be_visible()
    portal.get_by_role("link", name="Cliquez ici pour ouvrir un ticket").click()
    portal.get_by_label("Titre court").fill(title)
    portal.get_by_label("Description").fill(
        "J'ai créé le client code 100 via l'écran ATW0001, mais l'e-mail du contact Bruno "
        "n'a pas été enregistré. Merci de vérifier."
    )
    portal.get_by_label("Code de l'écran").fill("ATW0001")
    portal.get_by_label("Exemple d'enregistrement").fill("client 100, contact Bruno")
    portal.get_by_label("Priorité").select_option(label="Haute")
    screenshot(portal, "support-new-ticket")
    portal.get_by_role("button", name="Ouvrir le ticket").click()
    expect(portal.get_by_role("status")).to_contain_text("ouvert")
    expect(portal.locator("#ticket-status")).to_have_text("Ouvert")

    customer = _token(stack, "bois.user")
    found = _get(stack, customer, "/v1/support/tickets", q=title)["items"]
    assert [t["title"] for t in found] == [title]
    ticket = found[0]
    assert ticket["priority"] == "high" and ticket["next_due_at"]
    due = local_time(ticket["next_due_at"], PARIS, "fr")

    portal.get_by_role("link", name="Mes tickets").click()
    row = portal.get_by_role("row").filter(has_text=title)
    expect(row).to_contain_text("Ouvert")
    expect(row).to_contain_text("Haute")
    expect(row).to_contain_text(due)
    expect(portal.get_by_text(f"fuseau {PARIS}")).to_be_visible()
    screenshot(portal, "support-my-tickets")
    portal.get_by_label("Mots-clés").fill(title)
    portal.get_by_role("button", name="Rechercher").click()
    expect(portal.get_by_role("row")).to_have_count(2)
    row.get_by_role("link", name=title).click()
    expect(portal.get_by_role("heading", level=1, name=title)).to_be_visible()
    expect(portal.locator("#ticket-due")).to_contain_text(due)
    capture: FilePayload = {
        "name": "capture.txt",
        "mimeType": "text/plain",
        "buffer": b"ATW0001 contact",
    }
    portal.get_by_label("Fichier").set_input_files(files=[capture])
    portal.get_by_role("button", name="Joindre le fichier").click()
    expect(portal.get_by_role("status")).to_contain_text("Fichier joint")
    expect(portal.get_by_role("link", name="capture.txt")).to_be_visible()
    screenshot(portal, "support-ticket")
    _sign_out(portal)

    sign_in(
        portal,
        "ops.admin",
        stack.secrets.admin_password,
        totp_secret=stack.secrets.admin_totp_secret,
    )
    portal.get_by_role("navigation", name="Menu principal").get_by_role(
        "link", name="File des tickets"
    ).click()
    expect(portal.get_by_role("heading", name="File des tickets")).to_be_visible()
    queued = portal.get_by_role("row").filter(has_text=title)
    expect(queued).to_contain_text("Menuiserie Bois & Cie")
    expect(queued).to_contain_text(due)
    screenshot(portal, "support-queue")
    queued.get_by_role("link", name=title).click()
    expect(portal.get_by_role("heading", name="Traitement (équipe d'assistance)")).to_be_visible()
    portal.get_by_label("Réponse", exact=True).fill(
        "Pouvez-vous nous envoyer une capture de l'écran ?"
    )
    portal.get_by_label("Statut après la réponse").select_option(label="En attente du client")
    portal.get_by_role("button", name="Répondre").click()
    expect(portal.get_by_role("status")).to_contain_text("Réponse enregistrée")
    expect(portal.locator("#ticket-status")).to_have_text("En attente du client")
    expect(portal.locator("#ticket-due")).to_have_text("En pause (en attente du client)")
    portal.get_by_label("Priorité", exact=True).select_option(label="Urgente")
    portal.get_by_role("button", name="Changer la priorité").click()
    expect(portal.get_by_role("status")).to_contain_text("Priorité changée")
    expect(portal.locator("#ticket-priority")).to_have_text("Urgente")
    screenshot(portal, "support-agent-ticket")
    _sign_out(portal)

    sign_in(portal, "bois.user")
    portal.goto(url(portal, f"/support/tickets/{ticket['id']}"))
    expect(portal.locator("#ticket-status")).to_have_text("En attente du client")
    expect(portal.get_by_text("Pouvez-vous nous envoyer une capture de l'écran ?")).to_be_visible()
    expect(portal.get_by_text("Équipe d'assistance")).to_be_visible()
    portal.get_by_label("Réponse", exact=True).fill("La capture est jointe au ticket.")
    portal.get_by_role("button", name="Répondre").click()
    expect(portal.get_by_role("status")).to_contain_text("Réponse enregistrée")
    expect(portal.locator("#ticket-status")).to_have_text("En cours")
    history = _get(stack, customer, f"/v1/support/tickets/{ticket['id']}")
    assert history["ticket"]["status"] == "in_progress"
    assert history["ticket"]["priority"] == "urgent"
    assert [m["side"] for m in history["messages"]] == ["agent", "customer"]
    assert [a["filename"] for a in history["attachments"]] == ["capture.txt"]


def test_a_customer_cannot_read_another_organisations_ticket_nor_the_queue(
    portal: Page, stack: Stack
) -> None:
    partner = _token(stack, "napoli.manager")
    theirs = _get(stack, partner, "/v1/support/tickets")["items"]
    assert theirs, "the demo has a partner message from Pizzeria Napoli"
    sign_in(portal, "bois.user")
    portal.goto(url(portal, f"/support/tickets/{theirs[0]['id']}"))
    expect(portal.get_by_role("heading", name="Un problème est survenu")).to_be_visible()
    expect(portal.get_by_role("alert")).to_contain_text("Introuvable, ou pas accessible.")
    expect(portal.locator("body")).not_to_contain_text(theirs[0]["title"])
    portal.goto(url(portal, "/support/queue"))
    expect(portal.get_by_role("alert")).to_contain_text("Vous n'avez pas le droit de faire cela.")


def test_the_support_team_writes_a_category_and_its_faq_that_customers_then_read(
    portal: Page, stack: Stack, screenshot: Callable[[Page, str], None]
) -> None:
    suffix = uuid.uuid4().hex[:8]
    name = f"Retours et avoirs {suffix}"
    sign_in(
        portal,
        "ops.admin",
        stack.secrets.admin_password,
        totp_secret=stack.secrets.admin_totp_secret,
    )
    portal.goto(url(portal, "/support/queue"))
    portal.get_by_role("link", name="Catégories et FAQ").click()
    expect(portal.get_by_role("heading", name="Nouvelle catégorie")).to_be_visible()
    portal.get_by_label("Code").fill(f"RETURNS-{suffix}")
    first = portal.get_by_role("group", name="Question et réponse 1")
    first.get_by_label("Question", exact=True).fill("Comment saisir un avoir ?")
    portal.get_by_role("button", name="Créer la catégorie").click()
    expect(portal.locator("#f-name-error")).to_have_text("Champ obligatoire.")
    expect(first.get_by_label("Réponse proposée")).to_have_attribute("aria-invalid", "true")
    expect(first.get_by_text("Champ obligatoire.")).to_be_visible()
    expect(portal.get_by_label("Code")).to_have_value(f"RETURNS-{suffix}")
    expect(first.get_by_label("Question", exact=True)).to_have_value("Comment saisir un avoir ?")
    portal.get_by_label("Nom", exact=True).fill(name)
    first.get_by_label("Réponse proposée").fill("Ventes > Avoirs > Nouveau, depuis la facture.")
    # Portuguese for the support seed's customers: the name, the question and its answer.
    portal.get_by_text("Traductions du nom").click()
    portal.get_by_label("Nom en Português").fill(f"Devoluções {suffix}")
    first.get_by_text("Traductions de la question 1").click()
    first.get_by_label("Question en Português").fill("Como lançar uma devolução?")
    first.get_by_label("Réponse en Português").fill("Vendas > Devoluções > Nova, a partir da nota.")
    portal.get_by_role("button", name="Créer la catégorie").click()
    expect(portal.get_by_role("status")).to_contain_text("Catégorie créée.")
    expect(portal.get_by_role("heading", name=f"Modifier : {name}")).to_be_visible()
    screenshot(portal, "support-admin-categories")
    portal.goto(url(portal, "/support/reports/sla"))
    expect(portal.get_by_role("table", name="Déviations par la FAQ")).to_be_visible()
    screenshot(portal, "support-sla-report")
    _sign_out(portal)

    sign_in(portal, "bois.user")
    portal.goto(url(portal, "/support"))
    portal.get_by_role("link", name=name).click()
    expect(portal.get_by_text("Comment saisir un avoir ?")).to_be_visible()
    expect(portal.get_by_text("Ventes > Avoirs > Nouveau, depuis la facture.")).to_be_visible()
    # A Portuguese reader reads the translation; an English one, with none, the original.
    portal.goto(url(portal, "/support?lang=pt-BR"))
    portal.get_by_role("link", name=f"Devoluções {suffix}").click()
    expect(
        portal.get_by_role("heading", name=f"Perguntas frequentes: Devoluções {suffix}")
    ).to_be_visible()
    expect(portal.get_by_text("Como lançar uma devolução?")).to_be_visible()
    expect(portal.get_by_text("Vendas > Devoluções > Nova, a partir da nota.")).to_be_visible()
    portal.goto(url(portal, "/support?lang=en"))
    portal.get_by_role("link", name=name).click()
    expect(portal.get_by_text("Comment saisir un avoir ?")).to_be_visible()


def test_a_customer_cancels_a_ticket_that_then_stays_listed_closed_and_english_reads_too(
    portal: Page, stack: Stack
) -> None:
    customer = _token(stack, "bois.user")
    categories = [
        c
        for c in _get(stack, customer, "/v1/support/categories", audience="customer")["items"]
        if c["code"] == "ERP-INVOICING"
    ]
    title = f"Question résolue {uuid.uuid4().hex[:8]}"
    sign_in(portal, "bois.user")
    portal.goto(url(portal, f"/support/new?category_id={categories[0]['id']}"))
    portal.get_by_label("Titre court").fill(title)
    portal.get_by_label("Description").fill("Finalement trouvé tout seul.")
    portal.get_by_label("Code de l'écran").fill("FAT0100")
    portal.get_by_label("Exemple d'enregistrement").fill("commande 4522")
    portal.get_by_role("button", name="Ouvrir le ticket").click()
    expect(portal.locator("#ticket-status")).to_have_text("Ouvert")
    ticket_id = portal.url.split("/support/tickets/")[1].split("?")[0]
    portal.get_by_label("Motif (facultatif)").fill("Réponse trouvée")
    portal.get_by_role("button", name="Annuler ce ticket").click()
    expect(portal.get_by_role("status")).to_contain_text("Ticket annulé.")
    expect(portal.locator("#ticket-status")).to_have_text("Annulé")
    expect(portal.get_by_text("Ce ticket est clos")).to_be_visible()
    expect(portal.get_by_role("button", name="Répondre")).to_have_count(0)
    assert _get(stack, customer, f"/v1/support/tickets/{ticket_id}")["ticket"]["status"] == (
        "cancelled"
    )
    portal.goto(url(portal, "/support/tickets?status=cancelled&lang=en"))
    expect(portal.get_by_role("heading", name="My tickets")).to_be_visible()
    expect(portal.get_by_role("row").filter(has_text=title)).to_contain_text("Cancelled")


def test_a_customer_reads_sla_deadlines_in_the_browsers_own_time_zone(
    stack: Stack, browser: Browser
) -> None:
    """The gateway gives a customer no time zone: the portal takes the browser's (tz.js).
    (`stack` first: its async set-up must run before Playwright's sync loop starts.)"""
    tokyo = "Asia/Tokyo"  # a canonical name: Chromium reports links (Montreal) as their target
    context = browser.new_context(locale="fr-FR", timezone_id=tokyo)
    try:
        page = context.new_page()
        page._guichet_base = stack.web_url  # type: ignore[attr-defined]
        sign_in(page, "bois.user")
        tickets = _get(stack, _token(stack, "bois.user"), "/v1/support/tickets")["items"]
        due = [t for t in tickets if t["next_due_at"]]
        assert due, "the demo data gives bois.user a ticket with an SLA deadline"
        page.goto(url(page, "/support/tickets"))
        expect(page.get_by_text(f"fuseau {tokyo}")).to_be_visible()
        row = page.get_by_role("row").filter(has_text=due[0]["title"]).first
        expect(row).to_contain_text(local_time(due[0]["next_due_at"], tokyo, "fr"))
    finally:
        context.close()


def test_an_admin_chooses_a_calendars_holiday_categories_and_sees_the_days_it_will_skip(
    portal: Page, stack: Stack, screenshot: Callable[[Page, str], None]
) -> None:
    token = _token(stack, "ops.admin", stack.secrets.admin_password)
    name = f"Suporte São Paulo {uuid.uuid4().hex[:6]}"
    weekdays = ["09:00-18:00"] * 5 + ["", ""]
    created = httpx.post(
        f"{stack.gateway_url}/v1/support/calendars",
        json={
            "name": name,
            "time_zone": "America/Sao_Paulo",
            "weekly_hours": weekdays,
            "country": "BR",
        },
        headers={"Authorization": f"Bearer {token}"},
        timeout=scaled(60),
    )
    created.raise_for_status()
    calendar = created.json()

    def expected(categories: list[str]) -> list[str]:
        spec = CalendarSpec("America/Sao_Paulo", weekdays, "BR", categories=categories)
        today = dt.datetime.now(ZoneInfo("America/Sao_Paulo")).date()
        return [d.day.isoformat() for d in next_closed_days(compile_calendar(spec), today)]

    sign_in(
        portal,
        "ops.admin",
        stack.secrets.admin_password,
        totp_secret=stack.secrets.admin_totp_secret,
    )
    portal.goto(url(portal, "/support/queue"))
    portal.get_by_role("link", name="Calendriers").click()
    portal.get_by_role("link", name=name).click()
    days = portal.get_by_role("table", name="Prochains jours sautés (America/Sao_Paulo)")
    expect(days.locator("tbody tr td:first-child")).to_have_text(expected([]))

    # A wrong zone is named beside its field, and nothing changes.
    portal.get_by_label("Fuseau horaire").fill("America/Sao_Paolo")
    portal.get_by_label("Facultatifs (optional)").check()
    portal.get_by_role("button", name="Enregistrer le calendrier").click()
    expect(portal.locator("#f-time_zone-error")).to_be_visible()
    expect(portal.get_by_label("Facultatifs (optional)")).to_be_checked()
    expect(days.locator("tbody tr td:first-child")).to_have_text(expected([]))

    portal.get_by_label("Fuseau horaire").fill("America/Sao_Paulo")
    portal.get_by_role("button", name="Enregistrer le calendrier").click()
    expect(portal.get_by_role("status")).to_contain_text("Calendrier enregistré")
    expect(portal.get_by_label("Facultatifs (optional)")).to_be_checked()
    expect(days.locator("tbody tr td:first-child")).to_have_text(expected(["optional", "public"]))
    screenshot(portal, "support-admin-calendar")
    assert calendar["holiday_categories"] == []
