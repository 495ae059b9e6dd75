"""Phones, keyboards and screen readers (issue 25 items 4 and 6): tables become cards below
600 px, targets are at least 24 px, the focus ring stands out (3:1), htmx's updates are
announced, the current tab and filter are marked, and no message comes from the URL. Each test
failed before the change."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from services.devstack.stack import Stack
from tests.web.conftest import PHONE, organisation_of, sign_in, url


def test_the_ticket_queue_shows_every_column_on_a_phone(portal: Page, stack: Stack) -> None:
    """Defect: at 390 px the queue showed 4 of its 9 columns (the table scrolled sideways)."""
    portal.set_viewport_size(PHONE)
    sign_in(
        portal,
        "ops.admin",
        stack.secrets.admin_password,
        totp_secret=stack.secrets.admin_totp_secret,
    )
    portal.goto(url(portal, "/support/queue"))
    assert portal.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    cells = portal.get_by_role("table").first.locator("tbody tr").first.locator("td, th")
    count = cells.count()
    assert count == 9, count
    for index in range(count):
        box = cells.nth(index).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    labels = cells.evaluate_all("cells => cells.map(c => getComputedStyle(c, '::before').content)")
    assert '"Échéance SLA"' in labels and '"Ouvert le"' in labels, labels


def test_the_language_switch_is_a_target_of_24_px_at_least(portal: Page) -> None:
    """Defect: "EN" was a 22 by 19 px target."""
    portal.goto(url(portal, "/sign-in"))
    for choice in portal.locator(".langs .lang").all():
        box = choice.bounding_box()
        assert box is not None and box["width"] >= 24 and box["height"] >= 24, box


def test_the_focus_ring_has_three_to_one_contrast(portal: Page) -> None:
    """Defect: the ring was #7aa7f0 on white, 2.3:1."""
    portal.goto(url(portal, "/sign-in"))
    portal.get_by_label("Pseudo").focus()
    portal.keyboard.press("Tab")  # keyboard focus: the ring shows (:focus-visible)
    ring, width, background = portal.evaluate(
        """() => { const s = getComputedStyle(document.activeElement);
                   return [s.outlineColor, s.outlineWidth,
                           getComputedStyle(document.body).backgroundColor]; }"""
    )
    assert float(width.removesuffix("px")) >= 2
    assert _contrast(ring, background) >= 3, (ring, background)
    assert _contrast(ring, "rgb(255, 255, 255)") >= 3, ring


def test_search_results_are_announced_as_they_change(portal: Page, stack: Stack) -> None:
    """Defect: the client search refreshed its list with no aria-live announcement."""
    provider = organisation_of(stack, "dupont.jean", "service_provider")
    sign_in(portal, "dupont.jean")
    portal.goto(url(portal, f"/providers/{provider}/groups/new"))
    region = portal.locator("#available-status")
    expect(region).to_have_attribute("aria-live", "polite")
    portal.get_by_label("Rechercher un client").fill("zzz-nobody")
    expect(region).to_have_text("Aucun client disponible.")
    portal.get_by_label("Rechercher un client").fill("")
    expect(region).to_have_text(re.compile(r"^\d+ client\(s\) disponible\(s\)"))


def test_the_current_tab_and_filter_are_marked_and_the_filters_have_no_bullets(
    portal: Page, stack: Stack
) -> None:
    """Defects: the association tabs did not show the current one; the duplicates filter's
    bullets overlapped its links."""
    association = organisation_of(stack, "assoc.admin", "association")
    sign_in(portal, "assoc.admin")
    portal.goto(url(portal, f"/associations/{association}/duplicates?kind=certain"))
    tabs = portal.get_by_role("navigation", name=re.compile("Sections|Rubriques|association"))
    current = tabs.locator("[aria-current=page]")
    expect(current).to_have_count(1)
    assert current.evaluate("a => getComputedStyle(a).borderBottomWidth") != "0px"
    chosen = portal.locator("ul.filters-kind [aria-current=page]")
    expect(chosen).to_have_count(1)
    bullets = portal.locator("ul.filters-kind").evaluate("u => getComputedStyle(u).listStyleType")
    assert bullets == "none"


def test_a_confirmation_in_the_url_is_never_shown(portal: Page, stack: Stack) -> None:
    """Defect: `?done=created&name=…` made the page say anything a link wanted."""
    provider = organisation_of(stack, "dupont.jean", "service_provider")
    sign_in(portal, "dupont.jean")
    portal.goto(url(portal, f"/providers/{provider}/groups"))
    group = portal.get_by_role("table").first.get_by_role("link").first.get_attribute("href")
    assert group
    portal.goto(url(portal, f"{group}?done=created&name=Votre compte sera supprimé"))
    expect(portal.get_by_text("Votre compte sera supprimé")).to_have_count(0)
    expect(portal.get_by_role("status")).to_have_count(0)


def _contrast(first: str, second: str) -> float:
    def luminance(colour: str) -> float:
        channels = [int(c) / 255 for c in re.findall(r"\d+", colour)[:3]]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)
