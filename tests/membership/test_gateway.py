"""The membership routes through the real gateway app (over ASGI) in front of the real identity
and membership services: the journeys of a workshop, the program team, an association admin and
a civilian, and the problem documents they meet. No route may answer 5xx."""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from guichet.membership.v1 import membership_pb2 as pb

from services.gateway.app import create_app
from services.gateway.idempotency import IdempotencyStore
from services.gateway.settings import GatewaySettings
from services.kit.identity_client import connect_identity
from services.kit.testing import scaled
from tests.identity.harness import unique
from tests.membership.harness import GATEWAY_CLIENT, World, days_from_today

PROBLEM = "application/problem+json"
# Each gateway client of this module gets an address of its own (198.18.0.0/15).
_addresses = itertools.count(1)


async def _no_server_errors(response: httpx.Response) -> None:
    if response.status_code >= 500:
        await response.aread()
        raise AssertionError(f"{response.request.method} {response.request.url}: {response.text}")


@asynccontextmanager
async def gateway(
    world: World, idempotency: IdempotencyStore | None = None, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    settings = GatewaySettings(
        identity_addr=world.identity_addr,
        membership_addr=world.membership_addr,
        service_client_id=GATEWAY_CLIENT[0],
        service_client_secret=GATEWAY_CLIENT[1],
        **overrides,
    )
    link = connect_identity(settings)
    app = create_app(settings, identity=link, idempotency=idempotency)
    # An address per client: identity's shared brake counts per address (and this module's
    # tests send more than its burst from their clients altogether).
    address = str(ipaddress.IPv4Address(0xC6120000 + next(_addresses)))  # 198.18.0.0/15
    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    try:
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://test",
            event_hooks={"response": [_no_server_errors]},
        ) as client:
            yield client
    finally:
        await link.close()
        channel = getattr(app.state, "membership_channel", None)
        if channel is not None:
            await channel.close()


@pytest.fixture
async def http(world: World, idempotency: IdempotencyStore) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway(world, idempotency) as client:
        yield client


def headers(auth: tuple[tuple[str, str], ...]) -> dict[str, str]:
    return dict(auth)


def assert_problem(
    response: httpx.Response, status: int, reason: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status and "Traceback" not in response.text
    if reason is not None:
        assert body["type"].endswith(f"/{reason}"), body
    return body


async def test_a_workshop_reads_its_page_and_asks_for_changes(
    world: World, http: httpx.AsyncClient
) -> None:
    team = headers(world.operator_auth)
    program = (
        await http.post(
            "/v1/banner-programs",
            json={
                "code": unique("G")[:10],
                "name": unique("Atelier Plus "),
                "benefits": ["Garantie"],
            },
            headers=team,
        )
    ).json()
    option = (
        await http.post(
            f"/v1/banner-programs/{program['id']}/options",
            json={"code": "DEP", "name": "Dépannage", "benefit": "24/7"},
            headers=team,
        )
    ).json()
    shop = await world.workshop()
    renewal = days_from_today(100)
    created = await http.post(
        f"/v1/workshops/{shop.id}/membership",
        json={
            "program_id": program["id"],
            "renewal_date": renewal,
            "workshop": {"email": "atelier@example.org"},
            "wholesaler": {"name": "Grossiste", "email": "g@example.org"},
            "distributor": {"name": "DDA", "email": "d@example.org"},
            "option_ids": [option["id"]],
        },
        headers=team,
    )
    assert created.status_code == 201, created.text
    own = headers(shop.auth)
    page = await http.get(f"/v1/workshops/{shop.id}", headers=own)
    assert page.status_code == 200
    body = page.json()
    assert body["membership"]["removal_window"] == {
        "open": False,
        "opened_on": None,
        "closes_on": None,
        "next_opens_on": renewal,
    }
    assert body["program"]["options"][0]["code"] == "DEP"
    # Read-only for the workshop; hidden from the others.
    contacts = {
        "workshop": {"email": "new@example.org"},
        "wholesaler": {"name": "G", "email": "g@example.org"},
        "distributor": {"name": "D", "email": "d@example.org"},
    }
    assert_problem(
        await http.put(f"/v1/workshops/{shop.id}/contacts", json=contacts, headers=own),
        403,
        "permission_denied",
    )
    other = await world.workshop()
    assert_problem(
        await http.get(f"/v1/workshops/{shop.id}", headers=headers(other.auth)), 404, "not_found"
    )
    assert_problem(await http.get(f"/v1/workshops/{shop.id}"), 401)
    # A removal outside the window: 409 naming the date it opens.
    closed = assert_problem(
        await http.post(
            f"/v1/workshops/{shop.id}/option-change-requests",
            json={"option_id": option["id"], "change": "remove"},
            headers=own,
        ),
        409,
        "removal_window_closed",
    )
    assert renewal in closed["detail"]
    phone = assert_problem(
        await http.post(
            f"/v1/workshops/{shop.id}/option-change-requests",
            json={"option_id": option["id"], "change": "add", "channel": "phone"},
            headers=own,
        ),
        422,  # who may use which channel is membership's rule
    )
    assert phone["errors"][0]["field"] == "channel"
    # Technicians, a course, a registration, a claim and its review.
    technician = await http.post(
        f"/v1/workshops/{shop.id}/technicians",
        json={"first_name": "Luc", "last_name": "Bernard"},
        headers=own,
    )
    course = await http.post(
        "/v1/training-courses",
        json={
            "code": unique("C")[:10],
            "title": "Diagnostic",
            "starts_on": days_from_today(10),
            "location": "Lyon",
            "capacity": 5,
        },
        headers=team,
    )
    registered = await http.post(
        f"/v1/workshops/{shop.id}/training-registrations",
        json={"course_id": course.json()["id"], "technician_id": technician.json()["id"]},
        headers=own,
    )
    assert registered.status_code == 201, registered.text
    history = (
        await http.get(f"/v1/workshops/{shop.id}/training-registrations", headers=own)
    ).json()
    assert [r["status"] for r in history["items"]] == ["registered"]
    claim = await http.post(
        f"/v1/workshops/{shop.id}/warranty-claims",
        json={
            "vehicle_vin": "VF1RFB00X52345678",
            "repair_order": "OR-9",
            "repair_date": days_from_today(-1),
            "labour_minutes": 60,
            "amount_cents": 9000,
            "description": "Embrayage",
        },
        headers=own,
    )
    assert claim.status_code == 201, claim.text
    reviewed = await http.post(
        f"/v1/workshops/{shop.id}/warranty-claims/{claim.json()['id']}/transitions",
        json={"to_status": "under_review"},
        headers=team,
    )
    assert reviewed.json()["status"] == "under_review"
    wrong = assert_problem(
        await http.post(
            f"/v1/workshops/{shop.id}/warranty-claims/{claim.json()['id']}/transitions",
            json={"to_status": "paid"},
            headers=team,
        ),
        409,
        "invalid_transition",
    )
    assert "approved" in wrong["detail"]
    listed = (
        await http.get(f"/v1/workshops/{shop.id}/warranty-claims?status=under_review", headers=own)
    ).json()
    assert [c["number"] for c in listed["items"]] == [claim.json()["number"]]
    bad = assert_problem(
        await http.post(
            f"/v1/workshops/{shop.id}/warranty-claims",
            json={"vehicle_vin": "X", "repair_order": "", "repair_date": "demain"},
            headers=own,
        ),
        400,
    )
    assert {"repair_date", "labour_minutes", "amount_cents", "description"} <= {
        e["field"] for e in bad["errors"]
    }


async def test_a_civilian_registers_without_an_account_and_the_admin_follows_up(
    world: World, http: httpx.AsyncClient
) -> None:
    association = await world.association()
    admin = headers(association.auth)
    start = (datetime.now(UTC) + timedelta(days=15)).isoformat()
    training = await http.post(
        f"/v1/associations/{association.id}/trainings",
        json={
            "training_type": "PSC1",
            "title": "PSC1",
            "start_time": start,
            "location": "Paris",
            "capacity": 8,
        },
        headers=admin,
    )
    assert training.status_code == 201, training.text
    training_id = training.json()["id"]
    public = (await http.get(f"/v1/associations/{association.id}/public-trainings")).json()
    assert [t["id"] for t in public["items"]] == [training_id]
    person = {
        "first_name": "Jeanne",
        "last_name": unique("Martin"),
        "birth_date": "1991-03-04",
        "email": f"{unique('j.')}@example.org",
    }
    url = f"/v1/associations/{association.id}/trainings/{training_id}/registrations"
    first = await http.post(url, json={"trainee": person})
    assert first.status_code == 201, first.text
    registration = first.json()["registration"]
    assert first.json()["new_client_record"] and registration["status"] == "registered"
    validated = await http.post(
        f"/v1/associations/{association.id}/registrations/{registration['id']}/validation",
        headers=admin,
    )
    assert validated.json()["status"] == "validated"
    refused = assert_problem(
        await http.post(url, json={"trainee": person}), 409, "already_validated"
    )
    assert "PSC1" in refused["detail"]
    corrected = await http.put(
        f"/v1/associations/{association.id}/registrations/{registration['id']}/email",
        json={"email": "corrigee@example.org"},
        headers=admin,
    )
    assert corrected.json()["trainee"]["email"] == "corrigee@example.org"
    trainees = await http.get(
        f"/v1/associations/{association.id}/trainings/{training_id}/trainees", headers=admin
    )
    assert [t["trainee"]["email"] for t in trainees.json()["items"]] == ["corrigee@example.org"]
    assert_problem(
        await http.get(
            f"/v1/associations/{association.id}/trainings/{training_id}/trainees",
            headers=headers(association.member_auth),
        ),
        403,
    )
    # First-aid coverage: public too; then the records, their duplicates, a merge, a deletion.
    for company in ("Mairie de Vanves", "MAIRIE DE VANVES"):
        dps = await http.post(
            f"/v1/associations/{association.id}/dps-requests",
            json={
                "event_name": "Brocante",
                "event_date": days_from_today(40),
                "location": "Vanves",
                "expected_attendance": 800,
                "organiser": {
                    "company_name": company,
                    "contact_name": "Service des fêtes",
                    "email": "fetes@example.org",
                },
            },
        )
        assert dps.status_code == 201, dps.text
    # The review reads a report the service refreshes in the background after the writes.
    deadline = time.monotonic() + scaled(30)
    while True:
        duplicates = (
            await http.get(f"/v1/associations/{association.id}/duplicates", headers=admin)
        ).json()
        if not duplicates["totals"]["stale"] or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert duplicates["totals"]["certain_pairs"] == 1
    [group] = [g for g in duplicates["items"] if g["kind"] == "certain"]
    source, target = group["records"][1], group["records"][0]
    records_url = f"/v1/associations/{association.id}/client-records"
    preview = await http.get(
        f"{records_url}/{source['id']}/merge-preview?target_id={target['id']}", headers=admin
    )
    assert preview.json()["coverage_requests_to_move"] == 1
    merged = await http.post(
        f"{records_url}/{source['id']}/merge", json={"target_id": target["id"]}, headers=admin
    )
    assert merged.json()["audit"]["event"] == "merged"
    assert_problem(await http.delete(f"{records_url}/{source['id']}", headers=admin), 400)
    deleted = await http.delete(
        f"{records_url}/{source['id']}?confirmation=SUPPRIMER", headers=admin
    )
    assert deleted.status_code == 204
    assert_problem(await http.get(f"{records_url}/{source['id']}", headers=admin), 404)
    audit = (
        await http.get(f"/v1/associations/{association.id}/client-record-audit", headers=admin)
    ).json()
    assert [e["event"] for e in audit["items"]] == ["deleted", "merged"]
    other = await world.association()
    assert_problem(await http.get(records_url, headers=headers(other.auth)), 404)


async def test_public_routes_are_rate_limited(world: World) -> None:
    """The public forms that mail take identity's shared per-address brake (its burst, then its
    rate): past it, 429 with Retry-After, before membership is asked anything."""
    async with gateway(world) as http:
        url = f"/v1/associations/{uuid.uuid4()}/dps-requests"
        body = {
            "event_name": "X",
            "event_date": days_from_today(3),
            "location": "X",
            "expected_attendance": 1,
            "organiser": {"company_name": "X", "contact_name": "X", "email": "x@example.org"},
        }
        burst = world.identity.settings.auth_rate_limit_burst
        for _ in range(burst):
            assert_problem(await http.post(url, json=body), 404)
        refused = await http.post(url, json=body)
        limited = assert_problem(refused, 429)
        assert limited["type"].endswith("/resource_exhausted")
        assert int(refused.headers["retry-after"]) >= 1


async def test_membership_contract_enums_match_the_gateway(world: World) -> None:
    """Every proto status has its lower-case JSON name (a new value fails here first)."""
    from services.gateway.portals import membership as s

    for enum, proto in (
        (s.ClaimStatus, pb.WarrantyClaimStatus),
        (s.RegistrationStatus, pb.RegistrationStatus),
        (s.CourseRegistrationStatus, pb.CourseRegistrationStatus),
        (s.OptionChangeStatus, pb.OptionChangeStatus),
        (s.DuplicateKind, pb.DuplicateKind),
    ):
        names = {n for n, _ in proto.items() if not n.endswith("_UNSPECIFIED")}
        assert {member.to_proto() for member in enum} == {proto.Value(n) for n in names}
