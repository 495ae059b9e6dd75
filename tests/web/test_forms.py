"""One round of errors (issue 25 item 3): a form reports every problem at once, each error
names its field and links to it, the focus lands on the summary, what was typed is kept, and a
badly typed value says what was expected. Each test failed before the change."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from services.devstack.stack import Stack
from tests.web.conftest import organisation_of, sign_in, url

CLAIM_FIELDS = (
    "NIV du véhicule",
    "Bon de travail",
    "Date de la réparation",
    "Main d'œuvre (minutes)",
    "Montant (€)",
    "Description",
)


def _claims(portal: Page, stack: Stack) -> None:
    workshop = organisation_of(stack, "garage.owner", "workshop")
    sign_in(portal, "garage.owner")
    portal.goto(url(portal, f"/workshops/{workshop}/claims"))


def test_an_empty_claim_form_names_every_missing_field_in_one_round(
    portal: Page, stack: Stack
) -> None:
    """Defect: the empty form flagged three fields, then three others, then the VIN; its
    summary was three identical "Champ obligatoire." links naming no field."""
    _claims(portal, stack)
    portal.get_by_role("button", name="Soumettre une garantie").click()
    summary = portal.get_by_role("alert")
    expect(summary).to_be_focused()
    links = summary.get_by_role("link")
    expect(links).to_have_count(len(CLAIM_FIELDS))
    texts = links.all_inner_texts()
    for label, text in zip(CLAIM_FIELDS, texts, strict=True):
        assert text.startswith(f"{label} : "), texts
    assert len(set(texts)) == len(texts), texts
    for label in CLAIM_FIELDS:
        expect(portal.get_by_label(label, exact=True)).to_have_attribute("aria-invalid", "true")
    links.first.click()
    expect(portal.get_by_label("NIV du véhicule")).to_be_focused()


def test_a_claim_with_a_bad_vin_and_1h30_minutes_says_both_at_once_and_keeps_the_values(
    portal: Page, stack: Stack
) -> None:
    """Defects: "1h30" in minutes said "Champ obligatoire."; the VIN's format came a round
    after the other fields."""
    _claims(portal, stack)
    portal.get_by_label("NIV du véhicule").fill("VF1-ABC")
    portal.get_by_label("Main d'œuvre (minutes)").fill("1h30")
    portal.get_by_label("Montant (€)").fill("135,50")
    portal.get_by_role("button", name="Soumettre une garantie").click()
    expect(portal.get_by_role("alert")).to_be_focused()
    expect(portal.locator("#f-labour_minutes-error")).to_have_text(
        "Un nombre de minutes est attendu, par exemple 90 pour 1 h 30."
    )
    expect(portal.locator("#f-vehicle_vin-error")).to_be_visible()
    expect(portal.locator("#f-repair_order-error")).to_be_visible()  # same round
    expect(portal.locator("#f-amount-error")).to_have_count(0)  # 135,50 is an amount
    expect(portal.get_by_label("NIV du véhicule")).to_have_value("VF1-ABC")
    expect(portal.get_by_label("Main d'œuvre (minutes)")).to_have_value("1h30")
    expect(portal.get_by_label("Montant (€)")).to_have_value("135,50")


def test_typed_inputs_carry_their_attributes_without_quotes(portal: Page, stack: Stack) -> None:
    """Defect: `inputmode` was written with the quotes inside its value."""
    _claims(portal, stack)
    minutes = portal.get_by_label("Main d'œuvre (minutes)")
    expect(minutes).to_have_attribute("inputmode", "numeric")
    expect(portal.get_by_label("Montant (€)")).to_have_attribute("inputmode", "decimal")
    # A minutes field takes text (a number input would send "" for "1h30").
    expect(minutes).to_have_attribute("type", "text")
