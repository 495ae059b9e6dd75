"""Another tenant's ids inside a rightful caller's request body or query.

The matrix (test_tenant_matrix.py) moves the ids of the path; here the path is the caller's own
and one id in the body (or query) is tenant b's: a client to group, an employee to assign, a
record to merge into, a technician, an order item, a product, an organisation to act for. Each
must be refused exactly as an id that exists nowhere (same status, same problem type), and
never succeed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from tests.security.harness import World, unique

# pick("id:<key>") / pick("org:<key>") / pick("user:<actor>"): tenant b's value, or an unknown id.
Pick = Callable[[str], str]


@dataclass(frozen=True)
class Case:
    caller: str
    method: str
    path: Callable[[World], str]
    body: Callable[[World, Pick], Any] | None = None
    query: Callable[[World, Pick], Any] | None = None
    # A search: answering 200 is right, as long as it is the answer for an unknown id.
    listing: bool = False


def _a(world: World, key: str) -> str:
    source, _, name = key.partition(":")
    if source == "org":
        return world.a.orgs[name]
    if source == "user":
        return world.a.actors[name].user_id
    return world.a.ids[name]


CASES: dict[str, Case] = {
    "group of another provider's clients": Case(
        "business_account_manager",
        "POST",
        lambda w: f"/v1/providers/{_a(w, 'org:provider')}/groups",
        lambda w, pick: {"name": unique("Volés "), "client_ids": [pick("id:free_client")]},
    ),
    "assignment to another provider's group": Case(
        "business_account_manager",
        "POST",
        lambda w: f"/v1/providers/{_a(w, 'org:provider')}/employees/assignments",
        lambda w, pick: {
            "group_id": pick("id:group"),
            "role": "read_only",
            "employee_ids": [_a(w, "user:read_only")],
        },
        lambda w, pick: {"confirmation": "CONFIRMER"},
    ),
    "another provider's employee": Case(
        "business_account_manager",
        "POST",
        lambda w: f"/v1/providers/{_a(w, 'org:provider')}/employees/assignments",
        lambda w, pick: {
            "group_id": _a(w, "id:group"),
            "role": "read_only",
            "employee_ids": [pick("user:read_only")],
        },
        lambda w, pick: {"confirmation": "CONFIRMER"},
    ),
    "merge into another association's record": Case(
        "association_admin",
        "POST",
        lambda w: (
            f"/v1/associations/{_a(w, 'org:association')}/client-records/"
            f"{_a(w, 'id:dps_record')}/merge"
        ),
        lambda w, pick: {"target_id": pick("id:registration_record")},
    ),
    "merge preview with another association's record": Case(
        "association_admin",
        "GET",
        lambda w: (
            f"/v1/associations/{_a(w, 'org:association')}/client-records/"
            f"{_a(w, 'id:dps_record')}/merge-preview"
        ),
        query=lambda w, pick: {"target_id": pick("id:registration_record")},
    ),
    "course registration of another workshop's technician": Case(
        "workshop_owner",
        "POST",
        lambda w: f"/v1/workshops/{_a(w, 'org:workshop')}/training-registrations",
        lambda w, pick: {"course_id": w.shared["course"], "technician_id": pick("id:technician")},
    ),
    "claim naming another workshop's technician": Case(
        "workshop_owner",
        "POST",
        lambda w: f"/v1/workshops/{_a(w, 'org:workshop')}/warranty-claims",
        lambda w, pick: {
            "vehicle_vin": "VF1RFB00X12345678",
            "repair_order": unique("OR-"),
            "repair_date": (date.today() - timedelta(days=1)).isoformat(),
            "technician_id": pick("id:technician"),
            "labour_minutes": 30,
            "amount_cents": 4500,
            "description": "Réparation",
        },
    ),
    "stock-out of another store's order item": Case(
        "partner_manager",
        "POST",
        lambda w: f"/v1/partners/{_a(w, 'org:store')}/orders/{_a(w, 'id:order')}/out-of-stock",
        lambda w, pick: {"item_id": pick("id:order_item")},
    ),
    "content change of another store's product": Case(
        "partner_manager",
        "POST",
        lambda w: f"/v1/partners/{_a(w, 'org:store')}/content-changes",
        lambda w, pick: {"product_id": pick("id:product"), "proposed_name": "Volée"},
    ),
    "promotion on another store's products": Case(
        "partner_manager",
        "PUT",
        lambda w: (
            f"/v1/partners/{_a(w, 'org:store')}/promotions/{_a(w, 'id:promotion')}/configuration"
        ),
        lambda w, pick: {
            "percent_off": 10,
            "product_ids": [pick("id:product")],
            "starts_at": "2030-01-01T00:00:00Z",
            "ends_at": "2030-01-08T00:00:00Z",
        },
    ),
    "ticket opened for another company": Case(
        "customer_user",
        "POST",
        lambda w: "/v1/support/tickets",
        lambda w, pick: {
            "category_id": w.shared["category"],
            "title": "Pour eux",
            "description": "Ouvert au nom d'une autre société.",
            "screen_code": "ATW0009",
            "example_record": "client 9",
            "organisation_id": pick("org:erp"),
        },
    ),
    "partner message for another store": Case(
        "partner_manager",
        "POST",
        lambda w: "/v1/support/partner-messages",
        lambda w, pick: {
            "category_id": w.shared["partner_category"],
            "subject": "Pour eux",
            "body": "Au nom d'un autre magasin",
            "organisation_id": pick("org:store"),
        },
    ),
    "role in another association": Case(
        "association_admin",
        "POST",
        lambda w: f"/v1/accounts/{_a(w, 'user:member')}/roles",
        lambda w, pick: {"organisation_id": pick("org:association"), "role": "member"},
    ),
    "tickets listed for another company": Case(
        "customer_user",
        "GET",
        lambda w: "/v1/support/tickets",
        query=lambda w, pick: {"organisation_id": pick("org:erp")},
        listing=True,
    ),
}


def _picker(world: World, foreign: bool) -> Pick:
    def pick(key: str) -> str:
        if not foreign:
            return str(uuid.uuid4())
        source, _, name = key.partition(":")
        if source == "org":
            return world.b.orgs[name]
        if source == "user":
            return world.b.actors[name].user_id
        return world.b.ids[name]

    return pick


async def _send(http: httpx.AsyncClient, world: World, case: Case, foreign: bool) -> Any:
    pick = _picker(world, foreign)
    kwargs: dict[str, Any] = {}
    if case.body is not None:
        kwargs["json"] = case.body(world, pick)
    if case.query is not None:
        kwargs["params"] = case.query(world, pick)
    return await http.request(
        case.method, case.path(world), headers=world.a.actors[case.caller].headers, **kwargs
    )


def _answer(response: httpx.Response) -> tuple[int, Any]:
    """Status and body, without what differs on every request: the messages must not tell a
    foreign id from an unknown one either."""
    if not response.content:
        return response.status_code, None
    body = response.json()
    for key in ("request_id", "trace_id", "instance"):
        body.pop(key, None)
    return response.status_code, body


@pytest.mark.parametrize("name", list(CASES))
async def test_a_foreign_id_in_the_body_is_an_unknown_one(
    world: World, http: httpx.AsyncClient, name: str, record_property: Callable[[str, Any], None]
) -> None:
    case = CASES[name]
    foreign = await _send(http, world, case, foreign=True)
    unknown = await _send(http, world, case, foreign=False)
    record_property(
        "reliability",
        {
            "kind": "matrix",
            "name": f"foreign id in body: {name}",
            "tried": 2,
            "lost": int(_answer(foreign) != _answer(unknown) or foreign.status_code >= 500),
        },
    )
    assert foreign.status_code < 500, foreign.text
    if not case.listing:
        assert foreign.status_code >= 400, f"another tenant's id was accepted: {foreign.text}"
    assert _answer(foreign) == _answer(unknown), (foreign.text, unknown.text)
