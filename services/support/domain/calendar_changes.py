"""Changing a calendar (zone, hours, holidays and the categories observed, closed days), and the
unfinished tickets whose plans count in it: their deadlines are recomputed at once and their SLA
workflows signalled (a policy change), as when a ticket moves to another plan.

Apart from `calendars` because it moves tickets (`sla.ticket_event`), which `sla` itself reads
calendars for.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import NotFound, Validator
from services.support.domain.calendars import CalendarView, calendar_code, clean_spec, view_of
from services.support.domain.common import ACTIVE_STATUSES, parse_uuid, require_admin
from services.support.domain.sla import ticket_event
from services.support.models import Calendar, ClosedDay, Plan, Ticket
from services.support.settings import SupportSettings
from workflows.contracts.business_time import CalendarSpec, spec_problems
from workflows.contracts.support import POLICY_CHANGE


async def update_calendar(
    *,
    session: AsyncSession,
    settings: SupportSettings,
    actor: Principal | None,
    now: datetime,
    calendar_id: str,
    spec: CalendarSpec,
) -> tuple[CalendarView, int]:
    """Replaces the calendar's rules; returns its view and how many tickets followed."""
    actor = require_admin(actor)
    v = Validator()
    parsed = parse_uuid(v, "calendar_id", calendar_id)
    spec = clean_spec(spec)
    v.extend((field, why, calendar_code(field)) for field, why in spec_problems(spec))
    v.raise_if_any()
    assert parsed is not None
    calendar = await session.get(Calendar, parsed, with_for_update=True)
    if calendar is None:
        raise NotFound("calendar not found")
    calendar.time_zone = spec.time_zone
    calendar.weekly_hours = spec.weekly
    calendar.country = spec.country
    calendar.subdivision = spec.subdivision
    calendar.holiday_categories = spec.categories
    calendar.updated_at = now
    await session.execute(delete(ClosedDay).where(ClosedDay.calendar_id == calendar.id))
    for day in spec.closed_days:
        session.add(ClosedDay(calendar_id=calendar.id, day=datetime.fromisoformat(day).date()))
    await session.flush()
    tickets = await session.scalars(
        select(Ticket)
        .join(Plan, Plan.id == Ticket.plan_id)
        .where(
            Plan.calendar_id == calendar.id,
            Ticket.status.in_([s.value for s in ACTIVE_STATUSES]),
            # A ticket with a service's own deadline counts in plain time, not in this calendar.
            Ticket.respond_by.is_(None),
        )
        .order_by(Ticket.id)
        .with_for_update(of=Ticket)
    )
    moved = 0
    for ticket in tickets:
        ticket.updated_at = now
        await ticket_event(
            session,
            settings,
            ticket,
            kind=POLICY_CHANGE,
            now=now,
            actor_id=actor.subject,
            policy_changed=True,
        )
        moved += 1
    return await view_of(session, calendar, now), moved
