"""The client groups walk-throughs of seed 001 in a browser, as dupont.jean (the business account
manager of SP-DUPONT) on the real stack: create a group with a client found by search, add and
remove clients behind CONFIRMER, delete behind SUPPRIMER, assign an employee and watch the
delegation reach "Terminée" in the process requests table, a taken or deleted name refused
beside the field, and martin.claire (program account manager) kept out.

Every group a test makes is named "Essai <uuid> …" and deleted through the gateway afterwards,
so that its clients are available again whatever order the tests run in."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from services.devstack.demo import DEMO_PASSWORD
from services.devstack.stack import Stack
from tests.web.conftest import PHONE, sign_in, url

PREFIX = "Essai "


class Gateway:
    """dupont.jean's own calls to the gateway: to prepare a test and to check what changed."""

    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=30)
        token = self.http.post(
            "/v1/auth/token", json={"username": "dupont.jean", "password": DEMO_PASSWORD}
        ).json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {token}"
        me = self.http.get("/v1/me").json()
        self.provider_id = str(me["memberships"][0]["organisation_id"])
        self.prefix = f"/v1/providers/{self.provider_id}"

    def get(self, path: str, **params: Any) -> Any:
        answer = self.http.get(self.prefix + path, params=params)
        answer.raise_for_status()
        return answer.json()

    def groups(self) -> list[dict[str, Any]]:
        return list(self.get("/groups", page_size=500)["items"])

    def group_named(self, name: str) -> dict[str, Any] | None:
        return next((g for g in self.groups() if g["name"] == name), None)

    def clients_of(self, group_id: str) -> set[str]:
        return {c["name"] for c in self.get(f"/groups/{group_id}/clients", page_size=500)["items"]}

    def available(self, count: int) -> list[dict[str, Any]]:
        """`count` available clients, taken out of "Grands comptes" when too few are free."""
        free = list(self.get("/available-clients", page_size=500)["items"])
        if len(free) < count:
            big = self.group_named("Grands comptes")
            assert big, "the demo group 'Grands comptes' is missing"
            members = self.get(f"/groups/{big['id']}/clients", page_size=count)["items"]
            self.http.post(
                f"{self.prefix}/groups/{big['id']}/changes",
                json={"remove_client_ids": [c["id"] for c in members[: count - len(free)]]},
                params={"confirmation": "CONFIRMER"},
            ).raise_for_status()
            free = list(self.get("/available-clients", page_size=500)["items"])
        assert len(free) >= count
        return free[:count]

    def create(self, name: str, clients: list[dict[str, Any]]) -> dict[str, Any]:
        answer = self.http.post(
            f"{self.prefix}/groups", json={"name": name, "client_ids": [c["id"] for c in clients]}
        )
        answer.raise_for_status()
        return dict(answer.json())

    def delete(self, group_id: str) -> None:
        self.http.delete(
            f"{self.prefix}/groups/{group_id}", params={"confirmation": "SUPPRIMER"}
        ).raise_for_status()

    def clean_up(self) -> None:
        for group in self.groups():
            if group["name"].startswith(PREFIX):
                self.delete(group["id"])


@pytest.fixture
def gateway(stack: Stack) -> Iterator[Gateway]:
    api = Gateway(stack.gateway_url)
    yield api
    api.clean_up()
    api.http.close()


@pytest.fixture
def tag() -> str:
    return f"{PREFIX}{uuid.uuid4().hex[:6]}"


def search(portal: Page, text: str) -> None:
    """Type in the client search and wait for htmx's refreshed list (no click may race it).
    htmx is loaded by the page itself: typing before it is ready would send nothing."""
    portal.wait_for_function("() => window.htmx !== undefined")
    with portal.expect_response(lambda answer: "/available" in answer.url):
        portal.get_by_label("Rechercher un client").fill(text)


def _groups(portal: Page, gateway: Gateway) -> str:
    return f"/providers/{gateway.provider_id}/groups"


def test_create_a_group_with_a_client_found_by_search(
    portal: Page, gateway: Gateway, tag: str, screenshot: Callable[[Page, str], None]
) -> None:
    client = gateway.available(1)[0]
    sign_in(portal, "dupont.jean")
    portal.get_by_role("navigation", name="Menu principal").get_by_role(
        "link", name="Groupes de clients"
    ).click()
    expect(portal.get_by_role("heading", name="Gérer mes groupes de clients")).to_be_visible()
    expect(portal.get_by_role("table", name="Mes groupes de clients")).to_contain_text(
        "Grands comptes"
    )
    screenshot(portal, "groups-list")

    portal.get_by_role("link", name="Créer un groupe").last.click()
    expect(portal.get_by_role("heading", name="Créer un groupe de clients")).to_be_visible()
    portal.get_by_label("Nom du groupe").fill(f"{tag} Québec")
    # htmx: the list follows the typing; a search that matches nothing empties it.
    search(portal, "zzz-aucun-client")
    expect(portal.locator("#available")).to_contain_text("Aucun client disponible")
    search(portal, client["name"])
    available = portal.get_by_role("group", name="Clients disponibles")
    expect(available.get_by_label(client["name"])).to_be_visible()
    available.get_by_label(client["name"]).check()
    portal.get_by_role("button", name="Ajouter").click()
    chosen = portal.get_by_role("group", name="Clients du nouveau groupe")
    expect(chosen).to_contain_text(client["name"])
    expect(portal.get_by_label("Nom du groupe")).to_have_value(f"{tag} Québec")
    screenshot(portal, "groups-create")

    portal.get_by_role("button", name="Créer un groupe").click()
    expect(portal.get_by_role("status")).to_contain_text(f"Le groupe « {tag} Québec » a été créé")
    expect(portal.get_by_role("table", name="Clients du groupe")).to_contain_text(client["name"])
    screenshot(portal, "groups-detail")

    created = gateway.group_named(f"{tag} Québec")
    assert created and gateway.clients_of(created["id"]) == {client["name"]}


def test_a_name_already_used_even_by_a_deleted_group_is_refused_beside_the_field(
    portal: Page, gateway: Gateway, tag: str
) -> None:
    first, second = gateway.available(2)
    gone = gateway.create(f"{tag} ancien", [first])
    gateway.delete(gone["id"])
    sign_in(portal, "dupont.jean")
    portal.goto(url(portal, _groups(portal, gateway) + "/new"))
    search(portal, second["name"])
    portal.get_by_role("group", name="Clients disponibles").get_by_label(second["name"]).check()
    portal.get_by_role("button", name="Ajouter").click()

    portal.get_by_label("Nom du groupe").fill("grands COMPTES")
    portal.get_by_role("button", name="Créer un groupe").click()
    expect(portal.locator("#f-name-error")).to_contain_text("déjà celui d'un de vos groupes")
    expect(portal.get_by_label("Nom du groupe")).to_have_attribute("aria-invalid", "true")
    expect(portal.get_by_label("Nom du groupe")).to_have_value("grands COMPTES")
    expect(portal.get_by_role("group", name="Clients du nouveau groupe")).to_contain_text(
        second["name"]
    )

    portal.get_by_label("Nom du groupe").fill(f"{tag} ANCIEN")
    portal.get_by_role("button", name="Créer un groupe").click()
    expect(portal.locator("#f-name-error")).to_contain_text("groupe précédemment supprimé")
    expect(portal.get_by_role("alert")).to_be_visible()
    assert gateway.group_named(f"{tag} ANCIEN") is None

    # Without a client, create is refused too (the seed: at least one).
    portal.goto(url(portal, _groups(portal, gateway) + "/new"))
    portal.get_by_label("Nom du groupe").fill(f"{tag} vide")
    portal.get_by_role("button", name="Créer un groupe").click()
    expect(portal.locator("#f-client_ids-error")).to_contain_text("au moins un client")
    expect(portal.get_by_label("Nom du groupe")).to_have_value(f"{tag} vide")


def test_add_and_remove_clients_behind_confirmer(
    portal: Page, gateway: Gateway, tag: str, screenshot: Callable[[Page, str], None]
) -> None:
    first, second = gateway.available(2)
    group = gateway.create(f"{tag} transport", [first])
    sign_in(portal, "dupont.jean")
    portal.goto(url(portal, f"{_groups(portal, gateway)}/{group['id']}"))
    portal.get_by_role("link", name="Modifier").click()
    search(portal, second["name"])
    available = portal.get_by_role("group", name="Clients disponibles")
    available.get_by_label(second["name"]).check()
    portal.get_by_role("button", name="Ajouter").click()
    expect(portal.get_by_role("list", name="Clients à ajouter")).to_contain_text(second["name"])
    portal.get_by_role("button", name="Suivant").click()

    expect(portal.get_by_role("heading", name="Sommaire des accès")).to_be_visible()
    expect(portal.locator("main")).to_contain_text("1 client(s) ajouté(s)")
    portal.get_by_label("Tapez CONFIRMER").fill("oui")
    portal.get_by_role("button", name="Enregistrer les modifications").click()
    expect(portal.locator("#f-confirmation-error")).to_contain_text("Tapez exactement CONFIRMER")
    assert gateway.clients_of(group["id"]) == {first["name"]}  # nothing changed
    screenshot(portal, "groups-confirm")

    portal.get_by_label("Tapez CONFIRMER").fill("CONFIRMER")
    portal.get_by_role("button", name="Enregistrer les modifications").click()
    expect(portal.get_by_role("status")).to_contain_text("a été mis à jour")
    members = portal.get_by_role("table", name="Clients du groupe")
    expect(members).to_contain_text(second["name"])
    assert gateway.clients_of(group["id"]) == {first["name"], second["name"]}

    # Remove ("effacer") the first client.
    portal.get_by_role("link", name="Modifier").click()
    portal.get_by_role("group", name="Clients du groupe").get_by_label(first["name"]).check()
    portal.get_by_role("button", name="Effacer").click()
    expect(portal.get_by_role("list", name="Clients à retirer")).to_contain_text(first["name"])
    portal.get_by_role("button", name="Suivant").click()
    expect(portal.locator("main")).to_contain_text("1 client(s) retiré(s)")
    portal.get_by_label("Tapez CONFIRMER").fill("confirmer")
    portal.get_by_role("button", name="Enregistrer les modifications").click()
    expect(portal.get_by_role("status")).to_contain_text("a été mis à jour")
    portal.reload()
    members = portal.get_by_role("table", name="Clients du groupe")
    expect(members).to_contain_text(second["name"])
    expect(members).not_to_contain_text(first["name"])
    assert gateway.clients_of(group["id"]) == {second["name"]}


def test_delete_a_group_behind_supprimer(portal: Page, gateway: Gateway, tag: str) -> None:
    client = gateway.available(1)[0]
    group = gateway.create(f"{tag} à supprimer", [client])
    sign_in(portal, "dupont.jean")
    portal.goto(url(portal, f"{_groups(portal, gateway)}/{group['id']}"))
    portal.get_by_role("link", name="Supprimer").click()
    expect(
        portal.get_by_role("heading", name=f"Supprimer le groupe « {tag} à supprimer »")
    ).to_be_visible()
    portal.get_by_label("Tapez SUPPRIMER").fill("effacer")
    portal.get_by_role("button", name="Supprimer le groupe").click()
    expect(portal.locator("#f-confirmation-error")).to_contain_text("Tapez exactement SUPPRIMER")
    assert gateway.group_named(f"{tag} à supprimer") is not None

    portal.get_by_label("Tapez SUPPRIMER").fill("SUPPRIMER")
    portal.get_by_role("button", name="Supprimer le groupe").click()
    expect(portal.get_by_role("status")).to_contain_text(
        f"Le groupe « {tag} à supprimer » a été supprimé"
    )
    expect(portal.get_by_role("table", name="Mes groupes de clients")).not_to_contain_text(
        f"{tag} à supprimer"
    )
    assert gateway.group_named(f"{tag} à supprimer") is None
    assert client["id"] in {c["id"] for c in gateway.get("/available-clients")["items"]}


def test_assign_an_employee_and_watch_the_delegation_complete(
    portal: Page, gateway: Gateway, tag: str, screenshot: Callable[[Page, str], None]
) -> None:
    client = gateway.available(1)[0]
    group = gateway.create(f"{tag} délégation", [client])
    sign_in(portal, "dupont.jean")
    portal.goto(url(portal, _groups(portal, gateway)))
    portal.get_by_role("link", name="Employés", exact=True).first.click()
    expect(portal.get_by_role("heading", name="Employés")).to_be_visible()
    portal.get_by_label("Sélectionner Claire Martin").check()
    portal.get_by_role("group", name="Groupe de clients").get_by_label(f"{tag} délégation").check()
    portal.get_by_label("Rôle dans le groupe").select_option(label="Lecture seule")
    screenshot(portal, "groups-employees")
    portal.get_by_role("button", name="Suivant").click()

    summary = portal.get_by_role("table", name="Sommaire des accès")
    expect(summary).to_contain_text("martin.claire")
    expect(summary).to_contain_text("Lecture seule")
    portal.get_by_label("Tapez CONFIRMER").fill("CONFIRMER")
    portal.get_by_role("button", name="Enregistrer les modifications").click()

    expect(portal.get_by_role("heading", name="Demandes de traitement")).to_be_visible()
    expect(portal.get_by_role("status")).to_contain_text("en cours de mise à jour")
    row = portal.locator("tr.highlight")
    expect(row).to_contain_text("Affectation d'employés")
    expect(row).to_contain_text(f"{tag} délégation")
    expect(row).to_contain_text("dupont.jean")
    # The table refreshes itself until the delegation is finished, then stops polling.
    expect(row.locator(".badge")).to_have_text("Terminée")
    expect(portal.locator("#requests")).to_have_attribute("data-running", "false")
    accounts = client["program_account_count"]
    expect(row).to_contain_text(f"{accounts} / {accounts}")
    screenshot(portal, "groups-process-requests")

    saved = gateway.get(f"/groups/{group['id']}")
    assert [(a["username"], a["role"]) for a in saved["assignments"]] == [
        ("martin.claire", "read_only")
    ]
    row.get_by_role("link").click()
    expect(portal.locator("#request-live")).to_contain_text("Terminée")
    expect(portal.locator("main")).to_contain_text("Aucun échec")


def test_a_program_account_manager_may_not_see_the_groups(portal: Page, gateway: Gateway) -> None:
    sign_in(portal, "martin.claire")
    portal.goto(url(portal, _groups(portal, gateway)))
    expect(portal.get_by_role("heading", name="Un problème est survenu")).to_be_visible()
    expect(portal.get_by_role("alert")).to_contain_text("Vous n'avez pas le droit")
    expect(portal.locator("main")).not_to_contain_text("Grands comptes")
    portal.goto(url(portal, f"/providers/{gateway.provider_id}/process-requests"))
    expect(portal.get_by_role("alert")).to_contain_text("Vous n'avez pas le droit")


def test_the_relationships_page_says_why_a_client_is_not_available(
    portal: Page, gateway: Gateway, screenshot: Callable[[Page, str], None]
) -> None:
    sign_in(portal, "dupont.jean")
    portal.goto(url(portal, _groups(portal, gateway)))
    portal.get_by_role("link", name="Relations d'affaires").click()
    table = portal.get_by_role("table", name="Mes relations d'affaires")
    expect(table.get_by_role("row", name="Vins Okanagan")).to_contain_text("Expirée")
    expect(table.get_by_role("row", name="Textiles Gaspé")).to_contain_text(
        "En attente d'approbation"
    )
    expect(table.get_by_role("row", name="Importations Laval")).to_contain_text(
        "Importateurs du Québec"
    )
    screenshot(portal, "groups-relationships")


def test_creating_a_group_works_without_javascript_on_a_phone(
    browser: Browser, stack: Stack, gateway: Gateway, tag: str
) -> None:
    """Progressive enhancement: the search is a plain submit, "Ajouter" a plain post."""
    client = gateway.available(1)[0]
    context = browser.new_context(java_script_enabled=False, viewport=PHONE, locale="fr-FR")
    try:
        page = context.new_page()
        page._guichet_base = stack.web_url  # type: ignore[attr-defined]
        sign_in(page, "dupont.jean")
        page.goto(url(page, f"/providers/{gateway.provider_id}/groups/new"))
        page.get_by_label("Nom du groupe").fill(f"{tag} sans JS")
        page.get_by_label("Rechercher un client").fill(client["name"])
        page.get_by_role("button", name="Rechercher").click()
        expect(page.get_by_label("Rechercher un client")).to_have_value(client["name"])
        page.get_by_role("group", name="Clients disponibles").get_by_label(client["name"]).check()
        page.get_by_role("button", name="Ajouter").click()
        expect(page.get_by_role("group", name="Clients du nouveau groupe")).to_contain_text(
            client["name"]
        )
        page.get_by_role("button", name="Créer un groupe").click()
        expect(page.get_by_role("status")).to_contain_text(f"« {tag} sans JS » a été créé")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the group page scrolls sideways at 390 px ({width})"
    finally:
        context.close()
    created = gateway.group_named(f"{tag} sans JS")
    assert created and gateway.clients_of(created["id"]) == {client["name"]}
