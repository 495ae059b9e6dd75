"""Concurrent requests on the rules a race could break, through the gateway of the running stack.

Each test fires N identical (or conflicting) requests at once with asyncio.gather and checks
that exactly one wins, that every other gets the precise refusal, and that what is stored
afterwards is exactly one change. What tests/<service>/ already races is not repeated here:
one group per client per provider (tests/groups/test_gateway.py, 50 saves), the double
check-in (tests/partners/test_checkins_promotions_messages.py and test_gateway.py), two
concurrent identical merges (tests/membership/test_association.py), two operators cancelling
one escalated order (tests/partners/test_escalation.py), one open bank-detail change
(tests/partners/test_bank_details.py), concurrent failed logins (tests/identity/test_tokens.py).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx

from tests.security.harness import Actor, Tenant, World, submit_order, unique

N = 8

Record = Callable[[str, Any], None]


def _report(record: Record, name: str, tried: int, lost: int = 0) -> None:
    record("reliability", {"kind": "race", "name": name, "tried": tried, "lost": lost})


def _problem_type(response: httpx.Response) -> str:
    return str(response.json().get("type", "")).rsplit("/", 1)[-1]


async def _at_once(
    http: httpx.AsyncClient, actor: Actor | None, method: str, url: str, bodies: list[Any]
) -> list[httpx.Response]:
    headers = actor.headers if actor else {}
    return list(
        await asyncio.gather(
            *(http.request(method, url, headers=headers, json=body) for body in bodies)
        )
    )


def _split(responses: list[httpx.Response], won: int) -> tuple[list[Any], list[Any]]:
    winners = [r for r in responses if r.status_code == won]
    losers = [r for r in responses if r.status_code != won]
    return winners, losers


async def test_group_names_are_unique_under_concurrent_creation(
    world: World, http: httpx.AsyncClient, record_property: Record
) -> None:
    """N managers' tabs create the same name (in different cases) for different clients."""
    tenant = world.b
    bam = tenant.actors["business_account_manager"]
    base = f"/v1/providers/{tenant.orgs['provider']}"
    clients = tenant.ids["clients"].split(",")
    name = unique("Course ")
    spellings = [name.upper(), name.lower(), name.title(), name]
    bodies = [
        {"name": spellings[i % len(spellings)], "client_ids": [clients[3 + i % 2]]}
        for i in range(N)
    ]
    responses = await _at_once(http, bam, "POST", f"{base}/groups", bodies)
    winners, losers = _split(responses, 201)
    _report(record_property, "unique group name per provider", N, abs(len(winners) - 1))
    assert len(winners) == 1, [r.text for r in responses]
    assert {(r.status_code, _problem_type(r)) for r in losers} <= {
        (409, "group_name_taken"),
        (409, "client_already_grouped"),
    }, [r.text for r in losers]
    listed = await http.get(f"{base}/groups", headers=bam.headers, params={"page_size": 500})
    named = [g for g in listed.json()["items"] if g["name"].lower() == name.lower()]
    assert len(named) == 1
    # The winner's client is grouped, the other one is still available.
    removed = await http.delete(
        f"{base}/groups/{named[0]['id']}", headers=bam.headers, params={"confirmation": "DELETE"}
    )
    assert removed.status_code == 202, removed.text


async def _register(http: httpx.AsyncClient, tenant: Tenant, person: dict[str, str]) -> Any:
    url = (
        f"/v1/associations/{tenant.orgs['association']}/trainings/"
        f"{tenant.ids['training']}/registrations"
    )
    return await http.post(url, json={"trainee": person})


async def test_one_validated_registration_per_person_and_type(
    world: World, http: httpx.AsyncClient, record_property: Record
) -> None:
    """Validations of a registration race new registrations of the same person for the same
    type: either the validation comes first and every new registration is refused, or a new
    registration comes first and the validation finds its registration cancelled. Never a
    validated registration beside a live one."""
    tenant = world.b
    admin = tenant.actors["association_admin"]
    base = f"/v1/associations/{tenant.orgs['association']}"
    person = {
        "first_name": unique("Élise"),
        "last_name": "Concurrente",
        "birth_date": "1988-08-08",
        "email": "elise@security.example.com",
    }
    first = await _register(http, tenant, person)
    assert first.status_code == 201, first.text
    registration = first.json()["registration"]["id"]
    validations = [
        http.post(f"{base}/registrations/{registration}/validation", headers=admin.headers)
        for _ in range(N // 2)
    ]
    again = [_register(http, tenant, person) for _ in range(N // 2)]
    results = list(await asyncio.gather(*validations, *again))
    validated = [r for r in results[: N // 2] if r.status_code == 200]
    registered = [r for r in results[N // 2 :] if r.status_code == 201]
    assert all(r.status_code < 500 for r in results), [r.text for r in results]
    trainees = await http.get(
        f"{base}/trainings/{tenant.ids['training']}/trainees",
        headers=admin.headers,
        params={"include_cancelled": "true", "page_size": 500},
    )
    mine = [
        t for t in trainees.json()["items"] if t["trainee"]["first_name"] == person["first_name"]
    ]
    statuses = Counter(t["status"] for t in mine)
    live = statuses["validated"] + statuses["registered"]
    _report(record_property, "one validated training registration per type", N, abs(live - 1))
    assert live == 1, statuses
    refusals = {(r.status_code, _problem_type(r)) for r in results if r.status_code >= 300}
    if statuses["validated"]:
        # The validation came first: it won once, everything after it was refused.
        assert len(validated) == 1 and registered == [], statuses
        assert refusals == {(409, "already_validated")}, refusals
    else:
        # A new registration came first: the validations found theirs cancelled; each new
        # registration replaced the one before.
        assert validated == [] and len(registered) == N // 2, statuses
        assert refusals == {(409, "cancelled")}, refusals
        assert statuses["cancelled"] == len(registered)


async def test_crossed_merges_of_two_records_one_wins(
    world: World, http: httpx.AsyncClient, record_property: Record
) -> None:
    """A→B and B→A at once (two admins on two screens), several times: one merge wins, the
    others are refused as already merged or merged target; no deadlock, no 500."""
    tenant = world.b
    admin = tenant.actors["association_admin"]
    base = f"/v1/associations/{tenant.orgs['association']}"
    records = []
    for company in (unique("Mairie de Croix "), unique("Mairie de Croix Ouest ")):
        made = await http.post(
            f"{base}/dps-requests",
            json={
                "event_name": "Fête",
                "event_date": "2030-06-21",
                "location": "Place",
                "expected_attendance": 100,
                "organiser": {
                    "company_name": company,
                    "contact_name": "Paul",
                    "email": "paul@security.example.com",
                },
            },
        )
        assert made.status_code == 201, made.text
        records.append(made.json()["request"]["client"]["id"])
    a, b = records
    calls = [
        http.post(
            f"{base}/client-records/{source}/merge",
            headers=admin.headers,
            json={"target_id": target},
        )
        for source, target in [(a, b), (b, a)] * (N // 2)
    ]
    responses = list(await asyncio.gather(*calls))
    winners, losers = _split(responses, 200)
    _report(record_property, "merge of client records", N, abs(len(winners) - 1))
    assert len(winners) == 1, [r.text for r in responses]
    assert {(r.status_code, _problem_type(r)) for r in losers} <= {
        (409, "already_merged"),
        (409, "target_merged"),
    }, [r.text for r in losers]
    audit = await http.get(f"{base}/client-record-audit", headers=admin.headers)
    merges = [
        e
        for e in audit.json()["items"]
        if e["event"] == "merged" and {e["record_id"], e["target_id"]} == {a, b}
    ]
    assert len(merges) == 1, merges
    source = await http.get(
        f"{base}/client-records/{merges[0]['record_id']}", headers=admin.headers
    )
    assert source.json()["merged_into_id"] == merges[0]["target_id"], source.text


async def test_a_ticket_is_cancelled_once(
    world: World, http: httpx.AsyncClient, record_property: Record
) -> None:
    """The customer's double click (and a few more) on "cancel": one cancellation."""
    tenant = world.b
    customer = tenant.actors["customer_user"]
    opened = await http.post(
        "/v1/support/tickets",
        headers=customer.headers,
        json={
            "category_id": world.shared["category"],
            "title": "À annuler",
            "description": "Fausse alerte.",
            "screen_code": "ATW0003",
            "example_record": "client 7",
        },
    )
    assert opened.status_code == 201, opened.text
    ticket = opened.json()["id"]
    responses = await _at_once(
        http,
        customer,
        "POST",
        f"/v1/support/tickets/{ticket}/status",
        [{"status": "cancelled", "reason": "fausse alerte"}] * N,
    )
    winners, losers = _split(responses, 200)
    _report(record_property, "ticket cancelled once", N, abs(len(winners) - 1))
    assert len(winners) == 1, [r.text for r in responses]
    assert {(r.status_code, _problem_type(r)) for r in losers} == {
        (409, "transition_not_allowed")
    }, [r.text for r in losers]
    detail = (await http.get(f"/v1/support/tickets/{ticket}", headers=customer.headers)).json()
    assert detail["ticket"]["status"] == "cancelled"


async def _order(world: World, http: httpx.AsyncClient, tenant: Tenant, *, delivered: bool) -> str:
    """A fresh product (a stock-out race deactivates its product) and an order of it."""
    product = await http.post(
        f"/v1/operator/partners/stores/{tenant.orgs['store']}/products",
        headers=world.operators["ops_admin"].headers,
        json={"name": unique("Pizza "), "price_cents": 1200},
    )
    assert product.status_code == 201, product.text
    made = await submit_order(
        world.addresses["partners"],
        world.platform,
        tenant.orgs["store"],
        product.json()["id"],
        delivered=delivered,
    )
    return str(made.order.id)


async def test_an_order_is_refunded_once(
    world: World, http: httpx.AsyncClient, record_property: Record
) -> None:
    """Two operators (and more) refund one delivered order at once: one refund, in full."""
    tenant = world.b
    order = await _order(world, http, tenant, delivered=True)
    agent, ops = world.operators["support_agent"], world.operators["ops_admin"]
    calls = [
        http.post(
            f"/v1/operator/partners/orders/{order}/refund",
            headers=(agent if i % 2 else ops).headers,
            json={"reason": "Erreur de préparation", "funded_by": "platform"},
        )
        for i in range(N)
    ]
    responses = list(await asyncio.gather(*calls))
    winners, losers = _split(responses, 200)
    _report(record_property, "order refunded once", N, abs(len(winners) - 1))
    assert len(winners) == 1, [r.text for r in responses]
    assert {(r.status_code, _problem_type(r)) for r in losers} == {(409, "already_refunded")}, [
        r.text for r in losers
    ]
    detail = await http.get(
        f"/v1/partners/{tenant.orgs['store']}/orders/{order}",
        headers=tenant.actors["partner_manager"].headers,
    )
    payments = Counter(p["kind"] for p in detail.json()["payments"])
    assert payments == Counter({"payment": 1, "refund": 1}), detail.json()["payments"]
    assert detail.json()["order"]["status"] == "refunded"


async def test_one_escalation_per_order(
    world: World, http: httpx.AsyncClient, record_property: Record
) -> None:
    """The partner reports the same item out of stock from several screens: one escalation."""
    tenant = world.b
    order = await _order(world, http, tenant, delivered=False)
    manager = tenant.actors["partner_manager"]
    base = f"/v1/partners/{tenant.orgs['store']}/orders/{order}"
    detail = (await http.get(base, headers=manager.headers)).json()
    item = detail["items"][0]["id"]
    responses = await _at_once(
        http, manager, "POST", f"{base}/out-of-stock", [{"item_id": item}] * N
    )
    winners, losers = _split(responses, 201)
    _report(record_property, "one escalation per order", N, abs(len(winners) - 1))
    assert len(winners) == 1, [r.text for r in responses]
    assert {(r.status_code, _problem_type(r)) for r in losers} == {(409, "escalation_exists")}, [
        r.text for r in losers
    ]
    after = (await http.get(base, headers=manager.headers)).json()
    reported = [e for e in after["events"] if e["kind"] == "out_of_stock.reported"]
    assert len(reported) == 1


async def test_one_courier_report_per_order(
    world: World, http: httpx.AsyncClient, record_property: Record
) -> None:
    tenant = world.b
    order = await _order(world, http, tenant, delivered=True)
    manager = tenant.actors["partner_manager"]
    base = f"/v1/partners/{tenant.orgs['store']}/orders/{order}"
    responses = await _at_once(
        http,
        manager,
        "POST",
        f"{base}/courier-report",
        [{"reason": "late", "comment": f"retard {i}"} for i in range(N)],
    )
    winners, losers = _split(responses, 201)
    _report(record_property, "one courier report per order", N, abs(len(winners) - 1))
    assert len(winners) == 1, [r.text for r in responses]
    assert {(r.status_code, _problem_type(r)) for r in losers} == {(409, "reported")}, [
        r.text for r in losers
    ]
    after = (await http.get(base, headers=manager.headers)).json()
    assert after["courier_report"]["comment"] == winners[0].json()["comment"]


async def test_one_pending_option_request_per_option(
    world: World, http: httpx.AsyncClient, record_property: Record
) -> None:
    """A workshop asks for the same option from several tabs: one pending request."""
    tenant = world.b
    owner = tenant.actors["workshop_owner"]
    option = await http.post(
        f"/v1/banner-programs/{world.shared['program']}/options",
        headers=world.operators["ops_admin"].headers,
        json={"code": unique("RACE-").upper(), "name": "Option disputée", "benefit": "Plus"},
    )
    assert option.status_code == 201, option.text
    option_id = option.json()["id"]
    base = f"/v1/workshops/{tenant.orgs['workshop']}/option-change-requests"
    responses = await _at_once(
        http, owner, "POST", base, [{"option_id": option_id, "change": "add"}] * N
    )
    winners, losers = _split(responses, 201)
    _report(record_property, "one pending option request per option", N, abs(len(winners) - 1))
    assert len(winners) == 1, [r.text for r in responses]
    assert {(r.status_code, _problem_type(r)) for r in losers} == {(409, "already_exists")}, [
        r.text for r in losers
    ]
    listed = (await http.get(base, headers=owner.headers, params={"page_size": 500})).json()
    pending = [
        r for r in listed["items"] if r["option"]["id"] == option_id and r["status"] == "pending"
    ]
    assert len(pending) == 1, listed
