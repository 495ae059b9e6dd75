"""Association members and their yearly fee: the roll, fee payments, and whether an account's fee
is paid (identity asks when an admin validates an account)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import NotFound, Validator
from services.kit.paging import Page, keyset_after as _after, parse_page as _parse_page
from services.membership.domain.common import (
    actor_id,
    already_taken,
    association_and,
    check_date,
    check_email,
    check_text,
    check_uuid,
    fetch_page,
    flush_or_raise,
    parse_uuid,
    require_actor,
    require_association_admin,
)
from services.membership.domain.zones import association_today
from services.membership.models import AssociationMember, FeePayment
from services.membership.settings import MembershipSettings


@dataclass(frozen=True)
class MemberView:
    member: AssociationMember
    fees: list[FeePayment]


async def _member_views(
    session: AsyncSession, members: Sequence[AssociationMember]
) -> list[MemberView]:
    fees: dict[uuid.UUID, list[FeePayment]] = {m.id: [] for m in members}
    if members:
        rows = await session.scalars(
            select(FeePayment)
            .where(FeePayment.member_id.in_(list(fees)))
            .order_by(FeePayment.year.desc())
        )
        for payment in rows:
            fees[payment.member_id].append(payment)
    return [MemberView(m, fees[m.id]) for m in members]


async def add_member(
    *,
    session: AsyncSession,
    settings: MembershipSettings,
    actor: Principal | None,
    now: datetime,
    association_id: str,
    user_id: str,
    first_name: str,
    last_name: str,
    email: str,
    joined_on: str,
) -> MemberView:
    parsed = parse_uuid("association_id", association_id)
    require_association_admin(actor, parsed)
    v = Validator()
    user = check_uuid(v, "user_id", user_id, required=False)
    first = check_text(v, "first_name", first_name, limit=100)
    last = check_text(v, "last_name", last_name, limit=100)
    address = check_email(v, "email", email, required=False)
    joined = check_date(v, "joined_on", joined_on, required=False) or (
        await association_today(session, settings, parsed, now)
    )
    v.raise_if_any()
    member = AssociationMember(
        id=uuid.uuid4(),
        association_id=parsed,
        user_id=user,
        first_name=first,
        last_name=last,
        email=address,
        joined_on=joined,
        created_at=now,
    )
    session.add(member)
    await flush_or_raise(
        session,
        {
            "uq_association_members_association_id": already_taken(
                "user_id", "this account is already a member of the association"
            )
        },
    )
    return MemberView(member, [])


async def list_members(
    *,
    session: AsyncSession,
    settings: MembershipSettings,
    actor: Principal | None,
    now: datetime,
    association_id: str,
    fee_year: int,
    fee_filter: str,
    page_size: int,
    page_token: str,
) -> Page[MemberView]:
    parsed = parse_uuid("association_id", association_id)
    require_association_admin(actor, parsed)
    v = Validator()
    v.check(
        fee_year == 0 or 1900 <= fee_year <= 2200,
        "fee_year",
        "must be a year",
        code="less_than_equal",
    )
    page = _parse_page(v, "members", page_size, page_token, [str, str, uuid.UUID])
    v.raise_if_any()
    year = fee_year or (await association_today(session, settings, parsed, now)).year
    columns = [AssociationMember.last_name, AssociationMember.first_name, AssociationMember.id]
    query = (
        select(AssociationMember)
        .where(AssociationMember.association_id == parsed, *_after(page, columns))
        .order_by(*columns)
    )
    paid = (
        select(FeePayment.member_id)
        .where(FeePayment.member_id == AssociationMember.id, FeePayment.year == year)
        .exists()
    )
    if fee_filter == "paid":
        query = query.where(paid)
    elif fee_filter == "unpaid":
        query = query.where(~paid)
    result = await fetch_page(
        session, query, page, "members", lambda m: (m.last_name, m.first_name, m.id)
    )
    return Page(await _member_views(session, result.items), result.next_page_token)


async def record_fee_payment(
    *,
    session: AsyncSession,
    settings: MembershipSettings,
    actor: Principal | None,
    now: datetime,
    association_id: str,
    member_id: str,
    year: int,
    amount_cents: int,
    paid_on: str,
) -> MemberView:
    association, parsed = association_and(actor, association_id, "member_id", member_id)
    v = Validator()
    v.check(1900 <= year <= 2200, "year", "must be a year", code="less_than_equal")
    v.check(
        0 <= amount_cents <= 10_000_000,
        "amount_cents",
        "must be between 0 and 10000000",
        code="less_than_equal",
    )
    today = await association_today(session, settings, association, now)
    paid = check_date(v, "paid_on", paid_on, required=False) or today
    v.check(
        paid <= today,
        "paid_on",
        f"must not be in the future (today is {today.isoformat()})",
        code="in_the_future",
    )
    v.raise_if_any()
    member = await session.get(AssociationMember, parsed)
    if member is None or member.association_id != association:
        raise NotFound("member not found")
    session.add(
        FeePayment(
            member_id=member.id,
            year=year,
            amount_cents=amount_cents,
            paid_on=paid,
            recorded_by=actor_id(actor),
            recorded_at=now,
        )
    )
    await flush_or_raise(
        session, {"pk_fee_payments": already_taken("year", f"the {year} fee is already recorded")}
    )
    return (await _member_views(session, [member]))[0]


@dataclass(frozen=True)
class FeeStatus:
    paid: bool
    year: int
    member_id: uuid.UUID | None
    paid_on: date | None


async def is_fee_paid(
    *,
    session: AsyncSession,
    settings: MembershipSettings,
    actor: Principal | None,
    now: datetime,
    organisation_id: str,
    user_id: str,
    year: int,
) -> FeeStatus:
    """Whether the account's fee for `year` (default: this year) is recorded. Asked by identity
    (service token) when an admin validates an account; an admin of the association may ask too.
    A user who is not a recorded member has simply not paid."""
    actor = require_actor(actor)
    v = Validator()
    organisation = check_uuid(v, "organisation_id", organisation_id)
    user = check_uuid(v, "user_id", user_id)
    v.check(year == 0 or 1900 <= year <= 2200, "year", "must be a year", code="less_than_equal")
    v.raise_if_any()
    assert organisation is not None and user is not None
    if not actor.is_service:
        require_association_admin(actor, organisation)
    year = year or (await association_today(session, settings, organisation, now)).year
    row = (
        await session.execute(
            select(AssociationMember.id, FeePayment.paid_on)
            .outerjoin(
                FeePayment,
                and_(FeePayment.member_id == AssociationMember.id, FeePayment.year == year),
            )
            .where(
                AssociationMember.association_id == organisation,
                AssociationMember.user_id == user,
            )
        )
    ).first()
    if row is None:
        return FeeStatus(False, year, None, None)
    return FeeStatus(row.paid_on is not None, year, row.id, row.paid_on)
