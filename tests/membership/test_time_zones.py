"""Time zones through the gateway: a program's, a workshop's own, an association's; what they
change (the "today" of each check), who may set them, and the precise refusals."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from services.kit.clock import local_midnight
from tests.membership.harness import World, today
from tests.membership.test_gateway import assert_problem, gateway, headers


@pytest.fixture
async def http(world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway(world) as client:
        yield client


def _bearer(token: tuple[tuple[str, str], ...]) -> dict[str, str]:
    return headers(token)


async def test_a_programs_zone_and_a_workshops_own_through_the_gateway(
    world: World, http: httpx.AsyncClient
) -> None:
    ops = _bearer(world.ops)
    bad = await http.post(
        "/v1/banner-programs",
        json={"code": f"Z{uuid.uuid4().hex[:6]}".upper(), "name": "Zoné", "time_zone": "Paris"},
        headers=ops,
    )
    # A name of the right shape that names no zone: a rule beyond the schema (422), coded.
    problem = assert_problem(bad, 422)
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [("time_zone", "time_zone")]
    created = await http.post(
        "/v1/banner-programs",
        json={
            "code": f"Q{uuid.uuid4().hex[:6]}".upper(),
            "name": "Atelier Québec",
            "time_zone": "America/Montreal",
        },
        headers=ops,
    )
    assert created.status_code == 201, created.text
    program = created.json()
    assert program["time_zone"] == "America/Montreal"
    default = await http.post(
        "/v1/banner-programs",
        json={"code": f"D{uuid.uuid4().hex[:6]}".upper(), "name": "Défaut"},
        headers=ops,
    )
    assert default.json()["time_zone"] == "Europe/Paris"

    shop = await world.workshop()
    tag = uuid.uuid4().hex[:6]
    enrolled = await http.post(
        f"/v1/workshops/{shop.id}/membership",
        json={
            "program_id": program["id"],
            "renewal_date": (today() + timedelta(days=90)).isoformat(),
            "workshop": {"email": f"a.{tag}@example.org"},
            "wholesaler": {"name": "G", "email": f"g.{tag}@example.org"},
            "distributor": {"name": "D", "email": f"d.{tag}@example.org"},
        },
        headers=ops,
    )
    assert enrolled.status_code == 201, enrolled.text
    membership = enrolled.json()
    assert membership["time_zone"] is None
    assert membership["effective_time_zone"] == "America/Montreal"
    assert membership["letter"]["sent"] is False
    assert membership["letter"]["due_on"] == (today() + timedelta(days=60)).isoformat()

    # The workshop itself may not set its zone; the program team may, and a bad one is named.
    own = await http.put(
        f"/v1/workshops/{shop.id}/time-zone",
        json={"time_zone": "Europe/Paris"},
        headers=_bearer(shop.auth),
    )
    assert_problem(own, 403)
    wrong = await http.put(
        f"/v1/workshops/{shop.id}/time-zone", json={"time_zone": "Europe/Pariss"}, headers=ops
    )
    assert [e["field"] for e in assert_problem(wrong, 422)["errors"]] == ["time_zone"]
    moved = await http.put(
        f"/v1/workshops/{shop.id}/time-zone", json={"time_zone": "Europe/Paris"}, headers=ops
    )
    assert moved.json()["effective_time_zone"] == "Europe/Paris"
    back = await http.put(f"/v1/workshops/{shop.id}/time-zone", json={"time_zone": ""}, headers=ops)
    assert back.json()["time_zone"] is None
    assert back.json()["effective_time_zone"] == "America/Montreal"

    # Before the letter's day it cannot be sent again (409, naming the day it leaves).
    early = await http.post(
        f"/v1/workshops/{shop.id}/anniversary-letter/resend",
        json={"reason": "Perdue"},
        headers=ops,
    )
    body = assert_problem(early, 409, "letter_not_sent")
    assert (today() + timedelta(days=60)).isoformat() in body["detail"]

    # Moving the program re-plans its followers; a workshop cannot move a program.
    refused = await http.put(
        f"/v1/banner-programs/{program['id']}/time-zone",
        json={"time_zone": "Europe/Paris"},
        headers=_bearer(shop.auth),
    )
    assert refused.status_code in (403, 404)
    replanned = await http.put(
        f"/v1/banner-programs/{program['id']}/time-zone",
        json={"time_zone": "America/Vancouver"},
        headers=ops,
    )
    assert replanned.json()["time_zone"] == "America/Vancouver"
    view = await http.get(f"/v1/workshops/{shop.id}", headers=ops)
    assert view.json()["membership"]["effective_time_zone"] == "America/Vancouver"


async def test_an_associations_zone_sets_its_today(world: World, http: httpx.AsyncClient) -> None:
    association = await world.association()
    admin = _bearer(association.auth)
    settings = await http.get(f"/v1/associations/{association.id}/settings", headers=admin)
    assert settings.json()["time_zone"] == "Europe/Paris" and not settings.json()["chosen"]
    member = await http.get(
        f"/v1/associations/{association.id}/settings", headers=_bearer(association.member_auth)
    )
    assert_problem(member, 403)
    wrong = await http.put(
        f"/v1/associations/{association.id}/time-zone",
        json={"time_zone": "Pacific/Nowhere"},
        headers=admin,
    )
    assert [e["field"] for e in assert_problem(wrong, 422)["errors"]] == ["time_zone"]
    # Kiritimati lives at UTC+14: its "today" is a day ahead of most of the world's.
    chosen = await http.put(
        f"/v1/associations/{association.id}/time-zone",
        json={"time_zone": "Pacific/Kiritimati"},
        headers=admin,
    )
    assert chosen.json()["chosen"] and chosen.json()["time_zone"] == "Pacific/Kiritimati"
    kiritimati_today = datetime.now(ZoneInfo("Pacific/Kiritimati")).date()
    added = await http.post(
        f"/v1/associations/{association.id}/members",
        json={"first_name": "Léa", "last_name": "Martin"},
        headers=admin,
    )
    assert added.json()["joined_on"] == kiritimati_today.isoformat()
    future = await http.post(
        f"/v1/associations/{association.id}/members/{added.json()['id']}/fees",
        json={
            "year": kiritimati_today.year,
            "amount_cents": 3000,
            "paid_on": (kiritimati_today + timedelta(days=1)).isoformat(),
        },
        headers=admin,
    )
    problem = assert_problem(future, 422)
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [("paid_on", "in_the_future")]
    assert kiritimati_today.isoformat() in problem["errors"][0]["detail"]


def test_midnight_in_a_zone_follows_its_daylight_saving_time() -> None:
    paris = "Europe/Paris"
    winter = datetime(2027, 3, 27, 23, 0, tzinfo=UTC)
    assert local_midnight(datetime(2027, 3, 28).date(), paris) == winter
    summer = datetime(2027, 3, 28, 22, 0, tzinfo=UTC)
    assert local_midnight(datetime(2027, 3, 29).date(), paris) == summer
