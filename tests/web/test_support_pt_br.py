"""The support portal, its FAQ and its mails, end to end in Brazilian Portuguese (seed 004, the
UNO Extranet): a customer whose browser speaks pt-BR signs in, picks a category, reads its
questions and answers in Portuguese, opens an "ocorrência" (a missing field refused in
Portuguese), receives the receipt in Portuguese; the support team answers from its French
pages; the customer reads the answer in Portuguese, with dates as Brazilians write them, and
the answer's mail is in Portuguese too. Nothing on the way shows French, English or a code.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

from playwright.sync_api import Browser, Page, expect

from services.devstack.demo import DEMO_PASSWORD
from services.devstack.stack import Stack
from services.kit.smtpsink import ReceivedMail
from services.kit.testing import scaled
from tests.web.conftest import sign_in, url

CUSTOMER = "souza.user"
ADDRESS = "souza.user@demo.guichet.example.com"
SAO_PAULO = "America/Sao_Paulo"


def _mail(stack: Stack, subject: str, *, since: int) -> ReceivedMail:
    """The first mail to the customer with that subject after `since` mails, waited for."""
    deadline = time.monotonic() + scaled(60)
    while time.monotonic() < deadline:
        for mail in stack.smtp.to(ADDRESS)[since:]:
            if mail.subject == subject:
                return mail
        time.sleep(0.1)
    seen = [m.subject for m in stack.smtp.to(ADDRESS)[since:]]
    raise AssertionError(f"no mail {subject!r} to {ADDRESS} (received: {seen})")


def _no_foreign_words(page: Page) -> None:
    """French, English or a code would give the page away."""
    text = page.locator("main").inner_text()
    for word in ("Ticket", "Catégorie", "Demande", "waiting_on_customer", "in_progress", "None"):
        assert word not in text, f"{word!r} on a Portuguese page: {text[:400]}"


def test_a_brazilian_customer_is_served_in_portuguese_from_the_faq_to_the_answer_and_its_mail(
    stack: Stack, browser: Browser, portal: Page, screenshot: Callable[[Page, str], None]
) -> None:
    title = f"E-mail do contato não gravado {uuid.uuid4().hex[:6]}"
    before = len(stack.smtp.to(ADDRESS))
    context = browser.new_context(locale="pt-BR", timezone_id=SAO_PAULO)
    try:
        customer = context.new_page()
        customer.set_default_timeout(scaled(15) * 1000)
        customer._guichet_base = stack.web_url  # type: ignore[attr-defined]

        # The browser's language is enough: no ?lang=, no cookie yet.
        customer.goto(url(customer, "/sign-in"))
        expect(customer.locator("html")).to_have_attribute("lang", "pt-BR")
        customer.get_by_label("Login", exact=True).fill(CUSTOMER)
        customer.get_by_label("Senha", exact=True).fill(DEMO_PASSWORD)
        customer.get_by_role("button", name="Entrar", exact=True).click()
        expect(customer.get_by_role("heading", name="Olá, Ana")).to_be_visible()
        nav = customer.get_by_role("navigation", name="Idioma")
        expect(nav.get_by_text("Português")).to_have_attribute("aria-current", "true")

        customer.get_by_role("link", name="Suporte").first.click()
        expect(customer.get_by_text("Escolha a categoria da sua dúvida")).to_be_visible()
        customer.get_by_role("link", name="Clientes e contatos").click()
        expect(
            customer.get_by_role("heading", name="Perguntas frequentes: Clientes e contatos")
        ).to_be_visible()
        expect(
            customer.get_by_text("O e-mail de um contato não foi gravado (tela ATW0001).")
        ).to_be_visible()
        expect(customer.get_by_text("procure um registro duplicado em Contatos")).to_be_visible()
        _no_foreign_words(customer)
        screenshot(customer, "support-faq-pt-br")

        customer.get_by_role(
            "link",
            name="Caso não tenha encontrado a resposta, clique aqui para abrir uma ocorrência",
        ).click()
        expect(customer.get_by_role("heading", name="Abertura de ocorrência")).to_be_visible()
        customer.get_by_label("Título curto").fill(title)
        customer.get_by_role("button", name="Abrir a ocorrência").click()
        # Refused in Portuguese, beside each field, what was typed kept.
        expect(customer.get_by_label("Título curto")).to_have_value(title)
        expect(customer.get_by_label("Descrição")).to_have_attribute("aria-invalid", "true")
        expect(customer.locator("#f-description-error")).to_have_text("Campo obrigatório.")
        customer.get_by_label("Descrição").fill(
            "Cadastrei o cliente código 100 através da tela ATW0001, porém o e-mail do contato "
            "Bruno não foi gravado. Favor verificar."
        )
        customer.get_by_label("Código da tela").fill("ATW0001")
        customer.get_by_label("Exemplo de registro").fill("cliente 100, contato Bruno")
        customer.get_by_label("Prioridade").select_option(label="Alta")
        customer.get_by_role("button", name="Abrir a ocorrência").click()
        opened = customer.get_by_role("status")
        expect(opened).to_contain_text("A equipe de suporte já pode vê-la.")
        number = re.search(r"nº (\d+)", opened.inner_text())
        assert number, opened.inner_text()
        ticket_url = customer.url
        expect(customer.locator("#ticket-status")).to_have_text("Aberta")
        _no_foreign_words(customer)

        receipt = _mail(
            stack, f"[Guichet nº {number.group(1)}] Ocorrência aberta: {title}", since=before
        )
        assert receipt.body.startswith("Olá, souza.user,")
        assert "categoria: Clientes e contatos, prioridade: alta" in receipt.body
        assert "Lista de ocorrências" in receipt.body
    finally:
        context.close()

    # The support team answers from its own (French) pages.
    agent = portal
    sign_in(
        agent,
        "ops.admin",
        stack.secrets.admin_password,
        totp_secret=stack.secrets.admin_totp_secret,
    )
    agent.goto(url(agent, "/support/queue"))
    agent.get_by_role("row").filter(has_text=title).get_by_role("link", name=title).click()
    # The agent sees which language to answer in.
    expect(agent.locator("#ticket-language")).to_have_text("Português")
    agent.get_by_label("Réponse", exact=True).fill(
        "Pode nos enviar uma captura da tela ATW0001, por favor?"
    )
    agent.get_by_label("Statut après la réponse").select_option(label="En attente du client")
    agent.get_by_role("button", name="Répondre").click()
    expect(agent.get_by_role("status")).to_contain_text("Réponse enregistrée")

    answer = _mail(stack, f"[Guichet nº {number.group(1)}] Re: {title}", since=before)
    assert "O suporte respondeu à sua ocorrência" in answer.body
    assert "(status: aguardando a sua resposta)" in answer.body
    assert "Pode nos enviar uma captura da tela ATW0001, por favor?" in answer.body
    assert "ops.admin, Suporte Guichet" in answer.body

    context = browser.new_context(locale="pt-BR", timezone_id=SAO_PAULO)
    try:
        customer = context.new_page()
        customer.set_default_timeout(scaled(15) * 1000)
        customer._guichet_base = stack.web_url  # type: ignore[attr-defined]
        customer.goto(url(customer, "/sign-in"))
        customer.get_by_label("Login", exact=True).fill(CUSTOMER)
        customer.get_by_label("Senha", exact=True).fill(DEMO_PASSWORD)
        customer.get_by_role("button", name="Entrar", exact=True).click()
        customer.goto(ticket_url.split("?")[0])
        expect(customer.locator("#ticket-status")).to_have_text("Aguardando o cliente")
        expect(
            customer.get_by_text("Pode nos enviar uma captura da tela ATW0001, por favor?")
        ).to_be_visible()
        expect(customer.get_by_text("ops.admin · Equipe de suporte")).to_be_visible()
        # Dates as Brazilians write them, in the browser's own zone.
        expect(customer.get_by_text(f"Horários exibidos no fuso {SAO_PAULO}.")).to_be_visible()
        expect(customer.locator("main")).to_contain_text(
            re.compile(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}")
        )
        _no_foreign_words(customer)
        screenshot(customer, "support-ticket-pt-br")
        customer.get_by_label("Resposta", exact=True).fill("A captura está anexada. Obrigada!")
        customer.get_by_role("button", name="Responder").click()
        expect(customer.get_by_role("status")).to_contain_text("Resposta registrada.")
        expect(customer.locator("#ticket-status")).to_have_text("Em andamento")
        customer.get_by_role("link", name="Minhas ocorrências").click()
        row = customer.get_by_role("row").filter(has_text=title)
        expect(row).to_contain_text("Em andamento")
        expect(row).to_contain_text("Clientes e contatos")  # the category, translated
        expect(row).to_contain_text("Alta")
        _no_foreign_words(customer)
    finally:
        context.close()
