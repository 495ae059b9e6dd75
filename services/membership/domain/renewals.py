"""The renewal workflow's side of the service (service token only): the membership's renewal
state and the instants it plans by, the anniversary letter (once per yearly renewal, whatever
corrections its date gets; again only when the program team asks, recorded), the yearly removal
window opened and closed, and the renewal signals waiting to be sent.

Dates are calendar days of the membership's time zone (the workshop's, else its program's): the
letter leaves, and the window opens and closes, at midnight there. Each renewal date is computed
from the anniversary, not from the previous renewal, so 29 February comes back in leap years.
"""

from __future__ import annotations

import calendar
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.clock import local_midnight
from services.kit.errors import FailedPrecondition, NotFound, Validator
from services.kit.temporal import MEMBERSHIP
from services.membership.domain.banner import (
    MembershipView,
    membership_of,
    membership_time_zone,
    membership_view,
)
from services.membership.domain.common import (
    actor_id,
    check_date,
    check_long_text,
    operator_on_workshop,
    parse_uuid,
    queue_mail,
    require_service,
)
from services.membership.models import (
    MembershipStatus,
    RenewalLetter,
    RenewalLetterResend,
    RenewalSignal,
    WorkshopMembership,
)
from services.membership.settings import MembershipSettings

# Namespace of the deterministic ids of anniversary-letter mails (one per membership, renewal
# date and recipient), so a retried send can never mail twice.
_LETTER_MAILS = uuid.UUID("0b3f6a52-9d0e-4c63-8a9e-5d1f2c7e4b10")


def anniversary_in(anniversary: date, year: int) -> date:
    """The anniversary's day in `year`: 29 February is the 28th in a common year only."""
    last = calendar.monthrange(year, anniversary.month)[1]
    return date(year, anniversary.month, min(anniversary.day, last))


def add_years(day: date, years: int) -> date:
    """The same day `years` later; 29 February becomes 28 February in a common year."""
    return anniversary_in(day, day.year + years)


def next_renewal(anniversary: date, renewal: date) -> date:
    """The renewal after `renewal`: the anniversary's day in the following year (computed from
    the anniversary, so a 28 February stand-in for the 29th never carries over)."""
    return anniversary_in(anniversary, renewal.year + 1)


@dataclass(frozen=True)
class RenewalSchedule:
    """When the workflow acts, as instants: midnight of the membership's time zone."""

    time_zone: str
    letter_at: datetime
    window_opens_at: datetime
    # While the window is open: when it closes.
    window_closes_at: datetime | None


def renewal_schedule(
    membership: WorkshopMembership, time_zone: str, *, letter_lead_days: int
) -> RenewalSchedule:
    renewal = membership.renewal_date
    closes = membership.window_closes_on if membership.window_open else None
    return RenewalSchedule(
        time_zone=time_zone,
        letter_at=local_midnight(renewal - timedelta(days=letter_lead_days), time_zone),
        window_opens_at=local_midnight(renewal, time_zone),
        window_closes_at=local_midnight(closes, time_zone) if closes else None,
    )


@dataclass(frozen=True)
class RenewalState:
    membership: WorkshopMembership
    window_days: int
    letter_lead_days: int
    schedule: RenewalSchedule
    # This renewal's letter has left.
    letter_sent: bool


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
    zone = await membership_time_zone(session, membership)
    schedule = renewal_schedule(membership, zone, letter_lead_days=settings.letter_lead_days)
    letter = await session.get(RenewalLetter, (membership.id, membership.renewal_number))
    return RenewalState(
        membership,
        settings.removal_window_days,
        settings.letter_lead_days,
        schedule,
        letter_sent=letter is not None,
    )


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


def _recipients(membership: WorkshopMembership) -> list[tuple[str, str]]:
    return [
        ("workshop", membership.workshop_email),
        ("wholesaler", membership.wholesaler_email),
        ("distributor", membership.distributor_email),
    ]


async def _mail_letter(
    session: AsyncSession,
    settings: MembershipSettings,
    membership: WorkshopMembership,
    renewal: date,
    mail_key: str,
) -> list[str]:
    recipients = _recipients(membership)
    subject, body = anniversary_letter(
        await membership_view(session, membership), settings, renewal
    )
    for role, address in recipients:
        mail_id = uuid.uuid5(_LETTER_MAILS, f"{membership.id}/{mail_key}/{role}")
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
    return [address for _, address in recipients]


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
    yearly renewal: the letter row (keyed by the renewal's number, not its date) and the mails'
    deterministic ids make a retry, or a date corrected after the letter left, harmless.
    Returns (sent now, recipients)."""
    v = Validator()
    renewal = _cycle_date(v, renewal_date)
    membership = await _membership_for_workflow(session, actor, membership_id, lock=True)
    if membership.status != MembershipStatus.ACTIVE or membership.renewal_date != renewal:
        return False, []
    recipients = [address for _, address in _recipients(membership)]
    inserted = await session.scalar(
        pg_insert(RenewalLetter)
        .values(
            membership_id=membership.id,
            renewal_number=membership.renewal_number,
            renewal_date=renewal,
            recipients=recipients,
            sent_at=now,
        )
        .on_conflict_do_nothing()
        .returning(RenewalLetter.membership_id)
    )
    if inserted is None:
        letter = await session.get(RenewalLetter, (membership.id, membership.renewal_number))
        return False, list(letter.recipients) if letter else []
    await _mail_letter(
        session, settings, membership, renewal, f"renewal-{membership.renewal_number}"
    )
    return True, recipients


async def resend_anniversary_letter(
    *,
    session: AsyncSession,
    settings: MembershipSettings,
    actor: Principal | None,
    now: datetime,
    workshop_id: str,
    reason: str,
) -> MembershipView:
    """The program team sends the current renewal's letter again (announcing the renewal date
    as it is now), saying why; who asked, when and why is recorded with the recipients.

    Only a letter that left can be sent again: before its day the workflow sends it anyway."""
    parsed = parse_uuid("workshop_id", workshop_id)
    actor = operator_on_workshop(actor, parsed, "send its anniversary letter again")
    v = Validator()
    why = check_long_text(v, "reason", reason, limit=1000, required=True)
    v.raise_if_any()
    membership = await membership_of(session, parsed, lock=True, active=True)
    letter = await session.get(RenewalLetter, (membership.id, membership.renewal_number))
    if letter is None:
        zone = await membership_time_zone(session, membership)
        schedule = renewal_schedule(membership, zone, letter_lead_days=settings.letter_lead_days)
        day = schedule.letter_at.astimezone(ZoneInfo(zone)).date()
        raise FailedPrecondition(
            "the anniversary letter of this renewal has not been sent yet: it leaves on "
            f"{day.isoformat()} and cannot be sent again before",
            reason="letter_not_sent",
        )
    resend = RenewalLetterResend(
        id=uuid.uuid4(),
        membership_id=membership.id,
        renewal_number=membership.renewal_number,
        renewal_date=membership.renewal_date,
        recipients=[address for _, address in _recipients(membership)],
        requested_by=actor_id(actor),
        reason=why,
        at=now,
    )
    session.add(resend)
    await _mail_letter(
        session, settings, membership, membership.renewal_date, f"resend-{resend.id}"
    )
    await session.flush()
    return await membership_view(session, membership)


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
    membership.renewal_date = next_renewal(membership.anniversary, renewal)
    membership.renewal_number += 1
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
