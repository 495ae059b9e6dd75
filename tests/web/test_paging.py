"""Long lists page (issue 25, "Fast pages: long lists page"): a person reaches every row of a
list by its "next page" links, not only the rows of the first page the gateway answered.

The portal runs in this process (Starlette's TestClient) against the real stack's gateway, with
pages of a row or two (web/paging.py's PAGE_SIZE, lowered here), so that the demo data already
spans several pages and each walk stays a few requests. Each walk follows the shared navigation
(templates/_paging.html) by its `rel="next"` link and checks that the rows the gateway holds
(read by the API, whole) all show on some page, and that the first page alone did not show them
all. No browser: these are the pages' HTML, which the browser tests and axe check elsewhere.
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from services.devstack.demo import DEMO_PASSWORD
from services.devstack.signin import fresh_code_blocking
from services.devstack.stack import ADMIN_USERNAME, Stack
from tests.web.conftest import organisation_of
from tests.web.test_groups import PREFIX, Gateway
from web import paging
from web.app import create_app
from web.i18n import translate
from web.portals import partners_menu
from web.settings import WebSettings

_NAV = re.compile(r'<nav class="pager" aria-label="([^"]*)">(.*?)</nav>', re.DOTALL)
_NEXT = re.compile(r'<a href="([^"]+)" rel="next">')
_FIRST = re.compile(r'<a href="([^"]+)">')


def _fr(key: str) -> str:
    return translate("fr", key)


def _nav_label(caption_key: str) -> str:
    return translate("fr", "paging.nav_label", list=_fr(caption_key))


def _navs(page: str) -> dict[str, str]:
    """The page's paging navigations: aria-label → their links' HTML."""
    return {html.unescape(label): body for label, body in _NAV.findall(page)}


def _next_link(page: str, caption_key: str) -> str | None:
    body = _navs(page).get(_nav_label(caption_key))
    if body is None:
        return None
    found = _NEXT.search(body)
    return html.unescape(found.group(1)) if found else None


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of one row (three products); a list read whole (a form's choice) is read a row per
    call, so that it too needs several calls."""
    monkeypatch.setattr(paging, "PAGE_SIZE", 1)
    monkeypatch.setattr(paging, "EVERY_PAGE_SIZE", 1)
    monkeypatch.setattr(partners_menu, "PRODUCTS_PAGE", 3)


@contextmanager
def _portal(stack: Stack, username: str) -> Iterator[TestClient]:
    """The portal in this process, signed in as `username`: a demo user, or the ops admin (with
    the code of its authenticator app)."""
    settings = WebSettings(
        gateway_url=stack.gateway_url,
        secure_cookies=False,
        session_secret=SecretStr("a-test-secret-of-at-least-32-characters"),
    )
    admin = username == ADMIN_USERNAME
    password = stack.secrets.admin_password if admin else DEMO_PASSWORD
    with TestClient(create_app(settings), base_url="http://portal.test") as client:
        answer = client.post(
            "/sign-in", data={"username": username, "password": password, "next": "/"}
        )
        assert answer.status_code == 200, answer.text
        if admin:
            hidden = dict(
                re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', answer.text)
            )
            code = fresh_code_blocking(stack.secrets.admin_totp_secret, username)
            answer = client.post(
                "/sign-in/second-factor",
                data={**{k: html.unescape(v) for k, v in hidden.items()}, "code": code},
            )
            assert answer.status_code == 200, answer.text
        assert "guichet_access" in client.cookies, f"{username} was not signed in"
        yield client


@contextmanager
def _api(stack: Stack, username: str) -> Iterator[Callable[[str], list[dict[str, Any]]]]:
    """Every row of a gateway list, read page after page as `username`."""
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as http:
        token = http.post(
            "/v1/auth/token", json={"username": username, "password": DEMO_PASSWORD}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}

        def every(path: str) -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = []
            params: dict[str, Any] = {"page_size": 500}
            while True:
                answer = http.get(path, params=params, headers=headers)
                assert answer.status_code == 200, answer.text
                page = answer.json()
                rows.extend(page["items"])
                if not page.get("next_page_token"):
                    return rows
                params["page_token"] = page["next_page_token"]

        yield every


def _walk(client: TestClient, path: str, caption_key: str) -> list[str]:
    """Every page of a list, following its "next page" link from `path`."""
    pages: list[str] = []
    address: str | None = path
    while address is not None:
        answer = client.get(address)
        assert answer.status_code == 200, f"{address}: {answer.status_code}"
        pages.append(answer.text)
        address = _next_link(answer.text, caption_key)
        assert len(pages) <= 40, f"{path}: the next page never ends"
    return pages


@dataclass(frozen=True)
class Case:
    """One long list: whose it is, the page that shows it, its caption (naming its navigation),
    the API list that holds its rows, and what of a row the page shows."""

    user: str
    kind: str | None  # the kind of the user's organisation, whose id fills {org}
    page: str
    caption: str
    api: str
    shown: Callable[[dict[str, Any]], str]


CASES = {
    "groups": Case(
        "dupont.jean",
        "service_provider",
        "/providers/{org}/groups",
        "groups.list_caption",
        "/v1/providers/{org}/groups",
        lambda row: f"/groups/{row['id']}",
    ),
    "relationships": Case(
        "dupont.jean",
        "service_provider",
        "/providers/{org}/relationships",
        "groups.relationships_title",
        "/v1/providers/{org}/relationships",
        lambda row: str(row["client"]["name"]),
    ),
    "a group's clients": Case(
        "dupont.jean",
        "service_provider",
        "/providers/{org}/groups/{group}",
        "groups.members",
        "/v1/providers/{org}/groups/{group}/clients",
        lambda row: str(row["name"]),
    ),
    "support tickets": Case(
        "bois.user",
        None,
        "/support/tickets",
        "support.my_tickets",
        "/v1/support/tickets",
        lambda row: f"/support/tickets/{row['id']}",
    ),
    "menu": Case(
        "napoli.manager",
        "delivery_partner",
        "/partners/{org}/products",
        "partners.products",
        "/v1/partners/{org}/products",
        lambda row: f'id="p-{row["id"]}"',
    ),
    "trainings": Case(
        "assoc.admin",
        "association",
        "/associations/{org}/trainings",
        "association.trainings",
        "/v1/associations/{org}/trainings",
        lambda row: f"/trainings/{row['id']}",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_every_row_of_a_long_list_is_reached_page_after_page(
    stack: Stack, small_pages: None, name: str
) -> None:
    case = CASES[name]
    org = organisation_of(stack, case.user, case.kind) if case.kind else ""
    with _api(stack, case.user) as every:
        big = ""
        if "{group}" in case.api:  # the demo's largest group
            groups = every(f"/v1/providers/{org}/groups")
            big = max(groups, key=lambda g: int(g["client_count"]))["id"]
        rows = every(case.api.format(org=org, group=big))
    page = case.page.format(org=org, group=big)
    assert len(rows) > paging.PAGE_SIZE, f"{name}: the demo data fits one page, seed more"
    with _portal(stack, case.user) as client:
        pages = _walk(client, page, case.caption)
    texts = [html.unescape(page) for page in pages]
    missing = [case.shown(row) for row in rows if not any(case.shown(row) in t for t in texts)]
    assert not missing, f"{name}: rows no page shows: {missing}"
    assert len(pages) >= 2
    assert any(case.shown(row) not in texts[0] for row in rows), "the first page showed all"
    # From the second page on, the way back to the first page (the gateway pages forward only).
    first = _FIRST.search(_navs(pages[1])[_nav_label(case.caption)])
    assert first is not None
    assert html.unescape(first.group(1)) == page
    assert _fr("paging.first_page") in pages[1]


def test_a_filter_stays_on_the_following_pages(
    stack: Stack, small_pages: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's order history filtered by status: every page keeps the filter, and shows
    every order of that status and no other."""
    monkeypatch.setattr(paging, "PAGE_SIZE", 8)
    store = organisation_of(stack, "napoli.manager", "delivery_partner")
    with _api(stack, "napoli.manager") as every:
        orders = every(f"/v1/partners/{store}/orders/history")
    counts = {s: sum(o["status"] == s for o in orders) for s in {o["status"] for o in orders}}
    status = max(counts, key=lambda s: counts[s])
    assert counts[status] > paging.PAGE_SIZE, "too few orders of one status: seed more"
    assert len(counts) > 1, "every order has one status: the filter would show nothing"
    with _portal(stack, "napoli.manager") as client:
        pages = _walk(client, f"/partners/{store}/history?status={status}", "partners.history")
    assert len(pages) >= 2
    assert all(f"status={status}" in (_next_link(p, "partners.history") or "") for p in pages[:-1])
    shown = "".join(pages)
    for order in orders:
        assert (f"/orders/{order['id']}" in shown) == (order["status"] == status), order


def test_two_lists_of_one_page_page_apart(stack: Stack, small_pages: None) -> None:
    """A workshop's technicians page lists its technicians and its course registrations, each
    paged by its own parameter; the registration form still offers every technician; a forged
    token for one list leads back to that list's first page and keeps the other's."""
    workshop = organisation_of(stack, "garage.owner", "workshop")
    page = f"/workshops/{workshop}/technicians"
    with _api(stack, "garage.owner") as every:
        technicians = every(f"/v1/workshops/{workshop}/technicians")
        registrations = every(f"/v1/workshops/{workshop}/training-registrations")
    assert len(technicians) > paging.PAGE_SIZE and registrations, "seed more"
    with _portal(stack, "garage.owner") as client:
        pages = _walk(client, page, "workshop.technicians")
        link = _next_link(pages[0], "workshop.technicians")
        assert link is not None and link.startswith(f"{page}?page_token=")
        refused = client.get(f"{link}&history_page=forged")
    shown = "".join(pages)
    assert all(t["last_name"] in shown for t in technicians)
    for text in pages:  # the registrations list stays on its first page meanwhile
        assert registrations[0]["technician_name"] in text
        choice = text.split('id="f-technician_id"', 1)[1].split("</select>", 1)[0]
        assert all(f'value="{t["id"]}"' in choice for t in technicians), "a partial choice"
    assert refused.status_code == 400
    back = _FIRST.findall(refused.text.split('role="alert"', 1)[1])[0]
    assert html.unescape(back) == link, "the first page of the registrations, not of both"


def test_the_live_requests_table_refreshes_the_page_it_shows(
    stack: Stack, small_pages: None
) -> None:
    """The process requests table polls itself while a request runs: the poll asks for the
    page it refreshes, and its links lead to the page, not to the bare table."""
    gateway = Gateway(stack.gateway_url)
    try:
        # A group deleted is a request of its own: the demo's single request then pages.
        group = gateway.create(f"{PREFIX}{uuid.uuid4().hex[:6]} pages", gateway.available(1))
        gateway.delete(group["id"])
        org = gateway.provider_id
        requests = gateway.get("/process-requests", page_size=500)["items"]
    finally:
        gateway.http.close()
    assert len(requests) > paging.PAGE_SIZE
    with _portal(stack, "dupont.jean") as client:
        pages = _walk(client, f"/providers/{org}/process-requests", "groups.requests_caption")
        second = _next_link(pages[0], "groups.requests_caption")
        assert second is not None
        query = second.split("?", 1)[1]
        table = client.get(f"/providers/{org}/process-requests/table?{query}").text
    shown = "".join(pages)
    assert all(f'id="pr-{r["id"]}"' in shown for r in requests)
    ids = re.findall(r'id="pr-([0-9a-f-]+)"', pages[1])
    assert ids and re.findall(r'id="pr-([0-9a-f-]+)"', table) == ids
    links = "".join(_navs(table).values())
    assert f'href="/providers/{org}/process-requests' in links
    assert "/process-requests/table" not in links, "the table's links lead to the bare fragment"


@pytest.mark.parametrize(
    "token", ["forged", "x" * 2000], ids=["forged", "longer than the gateway takes"]
)
def test_a_page_link_the_gateway_refuses_is_said_in_words(stack: Stack, token: str) -> None:
    org = organisation_of(stack, "dupont.jean", "service_provider")
    with _portal(stack, "dupont.jean") as client:
        answer = client.get(f"/providers/{org}/groups", params={"page_token": token})
    assert answer.status_code == 400
    alert = re.search(r'<div class="alert" role="alert"><p>(.*?)</p></div>', answer.text)
    assert alert is not None and html.unescape(alert.group(1)) == _fr("field.page_token")
    assert f'<a href="/providers/{org}/groups">{_fr("paging.first_page")}</a>' in answer.text


def test_a_choice_in_a_form_offers_every_row(stack: Stack, small_pages: None) -> None:
    """The employees page pages its employees, but its choice of group lists every group (read
    a row per call here), and "Tous" picks every employee of every page."""
    org = organisation_of(stack, "dupont.jean", "service_provider")
    with _api(stack, "dupont.jean") as every:
        groups = every(f"/v1/providers/{org}/groups")
        employees = every(f"/v1/providers/{org}/employees")
    assert len(groups) > paging.EVERY_PAGE_SIZE and employees
    with _portal(stack, "dupont.jean") as client:
        page = client.get(f"/providers/{org}/employees").text
        assert all(f'name="group_id" value="{g["id"]}"' in page for g in groups)
        summary = client.post(
            f"/providers/{org}/employees",
            data={"all_employees": "1", "group_id": groups[0]["id"], "role": "read_only"},
        )
    assert summary.status_code == 200, summary.text
    picked = re.findall(r'<input type="hidden" name="employee_ids" value="([^"]+)">', summary.text)
    assert sorted(picked) == sorted(e["id"] for e in employees)


def test_every_paged_page_opens_with_its_lists(stack: Stack, small_pages: None) -> None:
    """Every page whose lists now page (or read a whole list for a choice) opens for the people
    who use it, with pages of one row; a page whose list has several rows shows its links."""
    provider = organisation_of(stack, "dupont.jean", "service_provider")
    workshop = organisation_of(stack, "garage.owner", "workshop")
    association = organisation_of(stack, "assoc.admin", "association")
    store = organisation_of(stack, "napoli.manager", "delivery_partner")
    with _api(stack, "dupont.jean") as every:
        request = every(f"/v1/providers/{provider}/process-requests")[0]["id"]
        group = every(f"/v1/providers/{provider}/groups")[0]["id"]
    with _api(stack, "assoc.admin") as every:
        training = every(f"/v1/associations/{association}/trainings")[0]["id"]
        public = every(f"/v1/associations/{association}/public-trainings")
    with _api(stack, "napoli.manager") as every:
        promotion = every(f"/v1/partners/{store}/promotions")[0]["id"]
        in_progress = every(f"/v1/partners/{store}/orders/in-progress")
        order = in_progress[0]["id"]
    with _api(stack, "bois.user") as every:
        customer = every("/v1/support/tickets")[0]["opened_by_id"]
    pages: dict[str, list[tuple[str, bool]]] = {  # (page, whether it must show paging links)
        "dupont.jean": [
            (f"/providers/{provider}/process-requests/{request}", False),
            (f"/providers/{provider}/process-requests/{request}/progress", False),
            (f"/providers/{provider}/groups/{group}", False),
        ],
        "garage.owner": [
            (f"/workshops/{workshop}", False),
            (f"/workshops/{workshop}/claims", False),
        ],
        "assoc.admin": [
            (f"/associations/{association}", False),
            (f"/associations/{association}/trainings/{training}", False),
            (f"/associations/{association}/public-trainings", len(public) > 1),
            (f"/associations/{association}/dps-requests", False),
            (f"/associations/{association}/records", True),
            (f"/associations/{association}/duplicates", False),
            (f"/associations/{association}/audit", False),
        ],
        "napoli.manager": [
            # Other tests on the shared stack deliver or cancel orders: links when 2 or more remain.
            (f"/partners/{store}/orders", len(in_progress) > 1),
            (f"/partners/{store}/orders/{order}", False),
            (f"/partners/{store}/content-changes", False),
            (f"/partners/{store}/check-ins", False),
            (f"/partners/{store}/promotions", False),
            (f"/partners/{store}/promotions/{promotion}", False),
            (f"/partners/{store}/messages", False),
            (f"/partners/{store}/bank-details", False),
        ],
        ADMIN_USERNAME: [
            ("/operator", True),
            (f"/organisations/{association}/accounts?last_name=a", False),
            (f"/accounts/{customer}", False),
            ("/support/queue", True),
            ("/support/admin/calendars", False),
            ("/operator/programs", False),
            ("/operator/partners/escalations?status=cancelled", False),
            ("/operator/partners/escalations/table?status=escalated", False),
            ("/operator/partners/bank-detail-changes", False),
            (f"/operator/partners/content-changes?store_id={store}", False),
            ("/operator/partners/check-ins/missing", False),
        ],
    }
    for user, paths in pages.items():
        with _portal(stack, user) as client:
            for path, paged in paths:
                answer = client.get(path)
                assert answer.status_code == 200, f"{user} {path}: {answer.status_code}"
                assert f"<h1>{_fr('error.title')}</h1>" not in answer.text, f"{user} {path}"
                if paged:
                    assert 'class="pager"' in answer.text, f"{user} {path}: no paging links"
