"""Labour-warranty claims: submitted by the workshop with an active membership, then moved along
CLAIM_TRANSITIONS by the party each transition belongs to, every step in the claim's history."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.clock import local_today
from services.kit.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Validator,
)
from services.kit.paging import Page, keyset_after as _after, parse_page as _parse_page
from services.membership.domain.banner import membership_of, membership_time_zone
from services.membership.domain.common import (
    actor_id,
    check_date,
    check_long_text,
    check_text,
    check_uuid,
    fetch_page,
    parse_moment,
    parse_uuid,
    workshop_party,
)
from services.membership.models import ClaimEvent, ClaimStatus, Technician, WarrantyClaim

_VIN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")

OPERATOR, WORKSHOP = "operator", "workshop"

# (from, to) → (who may, whether a note is required).
CLAIM_TRANSITIONS: dict[tuple[ClaimStatus, ClaimStatus], tuple[str, bool]] = {
    (ClaimStatus.SUBMITTED, ClaimStatus.UNDER_REVIEW): (OPERATOR, False),
    (ClaimStatus.SUBMITTED, ClaimStatus.REJECTED): (OPERATOR, True),
    (ClaimStatus.SUBMITTED, ClaimStatus.WITHDRAWN): (WORKSHOP, False),
    (ClaimStatus.UNDER_REVIEW, ClaimStatus.APPROVED): (OPERATOR, False),
    (ClaimStatus.UNDER_REVIEW, ClaimStatus.REJECTED): (OPERATOR, True),
    (ClaimStatus.UNDER_REVIEW, ClaimStatus.NEEDS_INFORMATION): (OPERATOR, True),
    (ClaimStatus.NEEDS_INFORMATION, ClaimStatus.UNDER_REVIEW): (WORKSHOP, True),
    (ClaimStatus.NEEDS_INFORMATION, ClaimStatus.WITHDRAWN): (WORKSHOP, False),
    (ClaimStatus.APPROVED, ClaimStatus.PAID): (OPERATOR, False),
}


@dataclass(frozen=True)
class ClaimView:
    claim: WarrantyClaim
    history: list[ClaimEvent]


async def _claim_view(session: AsyncSession, claim: WarrantyClaim) -> ClaimView:
    events = await session.scalars(
        select(ClaimEvent).where(ClaimEvent.claim_id == claim.id).order_by(ClaimEvent.seq)
    )
    return ClaimView(claim, list(events))


async def submit_warranty_claim(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    workshop_id: str,
    vehicle_vin: str,
    repair_order: str,
    repair_date: str,
    technician_id: str,
    labour_minutes: int,
    amount_cents: int,
    description: str,
) -> ClaimView:
    """The workshop submits a labour-warranty claim (an active membership is required)."""
    parsed_workshop = parse_uuid("workshop_id", workshop_id)
    if workshop_party(actor, parsed_workshop) != WORKSHOP:
        raise PermissionDenied("claims are submitted by the workshop")
    membership = await membership_of(session, parsed_workshop, active=True)
    today = local_today(now, await membership_time_zone(session, membership))
    v = Validator()
    vin = vehicle_vin.strip().upper()
    v.require("vehicle_vin", vin)
    if vin:
        v.check(bool(_VIN.match(vin)), "vehicle_vin", "must be 17 characters, without I, O or Q")
    order = check_text(v, "repair_order", repair_order, limit=40)
    repaired = check_date(v, "repair_date", repair_date)
    if repaired is not None:
        v.check(
            repaired <= today,
            "repair_date",
            f"must not be in the future (today is {today.isoformat()})",
            code="in_the_future",
        )
    parsed_technician = check_uuid(v, "technician_id", technician_id, required=False)
    v.check(
        0 < labour_minutes <= 100 * 60,
        "labour_minutes",
        "must be between 1 and 6000",
        code="less_than_equal",
    )
    v.check(
        0 <= amount_cents <= 10_000_000,
        "amount_cents",
        "must be between 0 and 10000000",
        code="less_than_equal",
    )
    text_ = check_long_text(v, "description", description, limit=4000, required=True)
    v.raise_if_any()
    assert repaired is not None
    if parsed_technician is not None:
        technician = await session.get(Technician, parsed_technician)
        if technician is None or technician.workshop_id != parsed_workshop:
            raise InvalidArgument([("technician_id", "is not a technician of this workshop")])
    claim = WarrantyClaim(
        id=uuid.uuid4(),
        workshop_id=parsed_workshop,
        membership_id=membership.id,
        vehicle_vin=vin,
        repair_order=order,
        repair_date=repaired,
        technician_id=parsed_technician,
        labour_minutes=labour_minutes,
        amount_cents=amount_cents,
        description=text_,
        status=ClaimStatus.SUBMITTED.value,
        created_at=now,
        updated_at=now,
    )
    session.add(claim)
    await session.flush()
    session.add(
        ClaimEvent(
            claim_id=claim.id,
            from_status=None,
            to_status=ClaimStatus.SUBMITTED.value,
            actor_id=actor_id(actor),
            note="",
            at=now,
        )
    )
    await session.flush()
    return await _claim_view(session, claim)


async def _claim_of(
    session: AsyncSession, workshop_id: uuid.UUID, claim_id: str, *, lock: bool = False
) -> WarrantyClaim:
    parsed = parse_uuid("claim_id", claim_id)
    claim = await session.get(WarrantyClaim, parsed, with_for_update=lock or None)
    if claim is None or claim.workshop_id != workshop_id:
        raise NotFound("claim not found")
    return claim


async def get_warranty_claim(
    *, session: AsyncSession, actor: Principal | None, workshop_id: str, claim_id: str
) -> ClaimView:
    parsed = parse_uuid("workshop_id", workshop_id)
    workshop_party(actor, parsed)
    return await _claim_view(session, await _claim_of(session, parsed, claim_id))


async def list_warranty_claims(
    *,
    session: AsyncSession,
    actor: Principal | None,
    workshop_id: str,
    status: str,
    page_size: int,
    page_token: str,
) -> Page[ClaimView]:
    parsed = parse_uuid("workshop_id", workshop_id)
    workshop_party(actor, parsed)
    v = Validator()
    page = _parse_page(v, "claims", page_size, page_token, [parse_moment, uuid.UUID])
    v.raise_if_any()
    columns = [WarrantyClaim.created_at, WarrantyClaim.id]
    query = (
        select(WarrantyClaim)
        .where(WarrantyClaim.workshop_id == parsed, *_after(page, columns, descending=True))
        .order_by(*(c.desc() for c in columns))
    )
    if status:
        query = query.where(WarrantyClaim.status == status)
    result = await fetch_page(
        session, query, page, "claims", lambda c: (c.created_at.isoformat(), c.id)
    )
    return Page([await _claim_view(session, c) for c in result.items], result.next_page_token)


async def transition_warranty_claim(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    workshop_id: str,
    claim_id: str,
    to_status: str,
    note: str,
) -> ClaimView:
    """Moves a claim along CLAIM_TRANSITIONS, by the party each transition belongs to."""
    parsed_workshop = parse_uuid("workshop_id", workshop_id)
    party = workshop_party(actor, parsed_workshop)
    v = Validator()
    v.check(to_status in set(ClaimStatus), "to_status", "must be a claim status")
    note = check_long_text(v, "note", note, limit=4000, required=False)
    v.raise_if_any()
    claim = await _claim_of(session, parsed_workshop, claim_id, lock=True)
    current, wanted = ClaimStatus(claim.status), ClaimStatus(to_status)
    rule = CLAIM_TRANSITIONS.get((current, wanted))
    if rule is None:
        allowed = sorted(to.value for (frm, to) in CLAIM_TRANSITIONS if frm == current)
        raise FailedPrecondition(
            f"a {current.value} claim cannot become {wanted.value}"
            + (f" (allowed: {', '.join(allowed)})" if allowed else " (it is final)"),
            reason="invalid_transition",
        )
    who, needs_note = rule
    if who != party:
        whom = "the program team" if who == OPERATOR else "the workshop"
        raise PermissionDenied(f"only {whom} may make a {current.value} claim {wanted.value}")
    if needs_note and not note:
        raise InvalidArgument(
            [("note", f"is required to make a claim {wanted.value}", "note_required")]
        )
    claim.status = wanted.value
    claim.updated_at = now
    session.add(
        ClaimEvent(
            claim_id=claim.id,
            from_status=current.value,
            to_status=wanted.value,
            actor_id=actor_id(actor),
            note=note,
            at=now,
        )
    )
    await session.flush()
    return await _claim_view(session, claim)
