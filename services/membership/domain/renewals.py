"""The renewal workflow's side of the service (service token only): the membership's renewal
state, the anniversary letter (once per renewal date), the yearly removal window opened and
closed, and the renewal signals waiting to be sent."""

from __future__ import annotations

import calendar
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import NotFound, Validator
from services.kit.temporal import MEMBERSHIP
from services.membership.domain.banner import MembershipView, membership_view
from services.membership.domain.common import check_date, parse_uuid, queue_mail, require_service
from services.membership.models import (
    MembershipStatus,
    RenewalLetter,
    RenewalSignal,
    WorkshopMembership,
)
from services.membership.settings import MembershipSettings

# Namespace of the deterministic ids of anniversary-letter mails (one per membership, renewal
# date and recipient), so a retried send can never mail twice.
_LETTER_MAILS = uuid.UUID("0b3f6a52-9d0e-4c63-8a9e-5d1f2c7e4b10")


def add_years(day: date, years: int) -> date:
    """The same day `years` later; 29 February becomes 28 February in a common year."""
    year = day.year + years
    last = calendar.monthrange(year, day.month)[1]
    return day.replace(year=year, day=min(day.day, last))


@dataclass(frozen=True)
class RenewalState:
    membership: WorkshopMembership
    window_days: int
    letter_lead_days: int


async def _membership_for_workflow(
    session: AsyncSession, actor: Principal | None, membership_id: str, *, lock: bool = False
) -> WorkshopMembership:
    require_service(actor)
    parsed = parse_uuid("membership_id", membership_id)
    membership = await session.get(WorkshopMembership, parsed, with_for_update=lock or None)
    if membership is None:
        raise NotFound("membership not found")
    return membership


async def get_renewal_state(
    *,
    session: AsyncSession,
    settings: MembershipSettings,
    actor: Principal | None,
    membership_id: str,
) -> RenewalState:
    membership = await _membership_for_workflow(session, actor, membership_id)
    return RenewalState(membership, settings.removal_window_days, settings.letter_lead_days)


def _cycle_date(v: Validator, raw: str) -> date:
    parsed = check_date(v, "renewal_date", raw)
    v.raise_if_any()
    assert parsed is not None
    return parsed


def anniversary_letter(
    view: MembershipView, settings: MembershipSettings, renewal: date
) -> tuple[str, str]:
    """Subject and body of the letter recapping the program's benefits."""
    membership, program = view.membership, view.program
    closes = renewal + timedelta(days=settings.removal_window_days)
    lines = [
        f"Objet : anniversaire de votre adhésion au programme {program.name}",
        "",
        f"Atelier : {membership.workshop_name}",
        f"Membre grossiste : {membership.wholesaler_name}",
        f"Distributeur (DDA) : {membership.distributor_name}",
        "",
        f"Votre adhésion au programme {program.name} se renouvelle le {renewal.isoformat()}.",
        "",
        "Les bénéfices de votre programme :",
        *(f"  • {benefit}" for benefit in program.benefits),
    ]
    if view.options:
        lines += ["", "Vos options :", *(f"  • {o.name} — {o.benefit}" for o in view.options)]
    lines += [
        "",
        "Vous pouvez ajouter des options à tout moment. Vous pouvez en retirer une fois par an,",
        f"du {renewal.isoformat()} au {(closes - timedelta(days=1)).isoformat()}, en écrivant à",
        f"{settings.program_team_email} (aucune demande n'est acceptée par téléphone).",
        "",
        f"L'équipe {settings.program_team_name}",
    ]
    return f"Anniversaire de votre programme {program.name} — {renewal.isoformat()}", "\n".join(
        lines
    )


async def send_anniversary_letter(
    *,
    session: AsyncSession,
    settings: MembershipSettings,
    actor: Principal | None,
    now: datetime,
    membership_id: str,
    renewal_date: str,
) -> tuple[bool, list[str]]:
    """Mails the letter to the workshop, its wholesaler member and its distributor, once per
    renewal date: the letter row and the mails' deterministic ids make a retry harmless.
    Returns (sent now, recipients)."""
    v = Validator()
    renewal = _cycle_date(v, renewal_date)
    membership = await _membership_for_workflow(session, actor, membership_id, lock=True)
    if membership.status != MembershipStatus.ACTIVE or membership.renewal_date != renewal:
        return False, []
    recipients = [
        ("workshop", membership.workshop_email),
        ("wholesaler", membership.wholesaler_email),
        ("distributor", membership.distributor_email),
    ]
    inserted = await session.scalar(
        pg_insert(RenewalLetter)
        .values(
            membership_id=membership.id,
            renewal_date=renewal,
            recipients=[address for _, address in recipients],
            sent_at=now,
        )
        .on_conflict_do_nothing()
        .returning(RenewalLetter.membership_id)
    )
    if inserted is None:
        letter = await session.get(RenewalLetter, (membership.id, renewal))
        return False, list(letter.recipients) if letter else []
    subject, body = anniversary_letter(
        await membership_view(session, membership), settings, renewal
    )
    for role, address in recipients:
        mail_id = uuid.uuid5(_LETTER_MAILS, f"{membership.id}/{renewal.isoformat()}/{role}")
        await queue_mail(
            session,
            settings,
            to=address,
            subject=subject,
            body=body,
            mail_id=mail_id,
            kind="renewal_letter",
            about={MEMBERSHIP: str(membership.id)},
        )
    return True, [address for _, address in recipients]


async def open_removal_window(
    *,
    session: AsyncSession,
    settings: MembershipSettings,
    actor: Principal | None,
    now: datetime,
    membership_id: str,
    renewal_date: str,
) -> tuple[bool, WorkshopMembership]:
    """At the renewal date: removals open for `removal_window_days`, and the renewal date moves
    to next year. Idempotent; refused (False) when the date is no longer the renewal date."""
    v = Validator()
    renewal = _cycle_date(v, renewal_date)
    membership = await _membership_for_workflow(session, actor, membership_id, lock=True)
    if membership.status != MembershipStatus.ACTIVE:
        return False, membership
    if membership.window_open and membership.window_opened_on == renewal:
        return False, membership
    if membership.renewal_date != renewal:
        return False, membership
    membership.window_open = True
    membership.window_opened_on = renewal
    membership.window_closes_on = renewal + timedelta(days=settings.removal_window_days)
    membership.renewal_date = add_years(renewal, 1)
    membership.updated_at = now
    return True, membership


async def close_removal_window(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    membership_id: str,
    renewal_date: str,
) -> bool:
    """Closes the window opened at `renewal_date` (idempotent)."""
    v = Validator()
    renewal = _cycle_date(v, renewal_date)
    membership = await _membership_for_workflow(session, actor, membership_id, lock=True)
    if not membership.window_open or membership.window_opened_on != renewal:
        return False
    membership.window_open = False
    membership.updated_at = now
    return True


async def pending_signals(session: AsyncSession, *, limit: int) -> list[RenewalSignal]:
    """Signals not yet delivered, oldest first, locked against other relays."""
    query = (
        select(RenewalSignal)
        .where(RenewalSignal.sent_at.is_(None))
        .order_by(RenewalSignal.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(await session.scalars(query))
