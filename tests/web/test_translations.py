"""Data in the reader's language (issue 25): the program team writes a banner-program option's
name and benefit in Portuguese in the portal (a half-written translation refused beside its
field); a workshop reading its page in Portuguese sees them, and the options nobody translated
in their original words."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from services.devstack.stack import Stack
from tests.web.conftest import sign_in, url


def test_the_program_team_translates_an_option_that_a_workshop_then_reads_in_portuguese(
    portal: Page, stack: Stack, screenshot: Callable[[Page, str], None]
) -> None:
    sign_in(
        portal,
        "ops.admin",
        stack.secrets.admin_password,
        totp_secret=stack.secrets.admin_totp_secret,
    )
    portal.goto(url(portal, "/operator"))
    portal.get_by_role("link", name="Programmes de bannière").click()
    portal.get_by_role("link", name="Diagnostic avancé").click()
    expect(
        portal.get_by_role("heading", name="Modifier l'option : Diagnostic avancé")
    ).to_be_visible()
    portal.get_by_label("Nom en Português").fill("Diagnóstico avançado")
    portal.get_by_role("button", name="Enregistrer l'option").click()
    # A name without its benefit: refused beside the benefit's field, what was typed kept.
    benefit = portal.get_by_label("Bénéfice en Português")
    expect(benefit).to_have_attribute("aria-invalid", "true")
    expect(portal.get_by_role("alert")).to_contain_text("Champ obligatoire.")
    expect(portal.get_by_label("Nom en Português")).to_have_value("Diagnóstico avançado")
    benefit.fill("Acesso às ferramentas de diagnóstico das montadoras")
    portal.get_by_role("button", name="Enregistrer l'option").click()
    expect(portal.get_by_role("status")).to_contain_text("Option enregistrée.")
    row = portal.get_by_role("row").filter(has_text="Diagnostic avancé")
    expect(row).to_contain_text("pt-BR")
    screenshot(portal, "operator-programs")
    portal.get_by_role("button", name="Se déconnecter").click()

    sign_in(portal, "garage.owner")
    portal.goto(url(portal, "/?lang=pt-BR"))
    portal.get_by_role("navigation", name="Menu principal").get_by_role(
        "link", name="Minha oficina"
    ).click()
    options = portal.get_by_role("table", name="Opções")
    expect(options).to_contain_text("Diagnóstico avançado")
    expect(options).to_contain_text("Acesso às ferramentas de diagnóstico das montadoras")
    # Not translated: the original, rather than nothing.
    expect(options).to_contain_text("Dépannage 24/7")
    expect(portal.get_by_label("Opção", exact=True).locator("option")).to_contain_text(
        ["— Escolher —", "Dépannage 24/7", "Diagnóstico avançado"]
    )
