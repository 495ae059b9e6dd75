"""Business calendars: weekly hours, public holidays by country, closed days.

A plan counts its SLA targets in minutes of its calendar; `calendar_spec` reads one back as the
`CalendarSpec` the SLA clock rules and the workflow compute with.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import AlreadyExists, NotFound, Validator
from services.kit.paging import Page, parse_page
from services.support.domain.common import (
    check_text,
    fetch_page,
    flush_unique,
    require_admin,
    require_agent,
)
from services.support.models import Calendar, ClosedDay
from workflows.contracts.business_time import CalendarSpec, spec_problems


@dataclass(frozen=True)
class CalendarView:
    calendar: Calendar
    closed_days: list[str]


def _calendar_code(field: str) -> str:
    """The code of a calendar rule: which regions exist is the holidays library's knowledge, how
    the opening hours of a day fit together is beyond a pattern (422 both); the rest is the
    schema's (400)."""
    if field in ("country", "subdivision"):
        return "unknown_region"
    if field.startswith("weekly_hours"):
        return "opening_hours"
    if field == "time_zone":
        return "time_zone"
    return "invalid"


async def _closed_days(session: AsyncSession, calendar_id: uuid.UUID) -> list[str]:
    days = await session.scalars(
        select(ClosedDay.day).where(ClosedDay.calendar_id == calendar_id).order_by(ClosedDay.day)
    )
    return [day.isoformat() for day in days]


async def create_calendar(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    name: str,
    spec: CalendarSpec,
) -> CalendarView:
    require_admin(actor)
    v = Validator()
    check_text(v, "name", name, 100)
    spec = CalendarSpec(
        time_zone=spec.time_zone.strip(),
        weekly=[text.strip() for text in spec.weekly],
        country=spec.country.strip().upper(),
        subdivision=spec.subdivision.strip().upper(),
        closed_days=sorted({day.strip() for day in spec.closed_days}),
    )
    # Which countries and subdivisions exist is the holidays library's knowledge, not a schema.
    v.extend((field, why, _calendar_code(field)) for field, why in spec_problems(spec))
    v.raise_if_any()
    calendar = Calendar(
        id=uuid.uuid4(),
        name=name.strip(),
        time_zone=spec.time_zone,
        weekly_hours=spec.weekly,
        country=spec.country,
        subdivision=spec.subdivision,
        created_at=now,
    )
    session.add(calendar)
    taken = AlreadyExists("name: is taken", violations=[("name", "is taken")])
    await flush_unique(session, {"uq_calendars_name": taken})
    for day in spec.closed_days:
        session.add(ClosedDay(calendar_id=calendar.id, day=datetime.fromisoformat(day).date()))
    await session.flush()
    return CalendarView(calendar, spec.closed_days)


async def list_calendars(
    *, session: AsyncSession, actor: Principal | None, page_size: int, page_token: str
) -> Page[CalendarView]:
    require_agent(actor)
    v = Validator()
    page = parse_page(v, "calendars", page_size, page_token, [str, uuid.UUID])
    v.raise_if_any()
    query = select(Calendar).order_by(Calendar.name, Calendar.id)
    if page.after is not None:
        query = query.where(tuple_(Calendar.name, Calendar.id) > tuple_(*page.after))
    found = await fetch_page(session, query, page, "calendars", lambda c: (c.name, c.id))
    return Page(
        items=[CalendarView(c, await _closed_days(session, c.id)) for c in found.items],
        next_page_token=found.next_page_token,
    )


async def calendar_spec(session: AsyncSession, calendar_id: uuid.UUID) -> CalendarSpec:
    calendar = await session.get(Calendar, calendar_id)
    if calendar is None:
        raise NotFound("calendar not found")
    return CalendarSpec(
        time_zone=calendar.time_zone,
        weekly=list(calendar.weekly_hours),
        country=calendar.country,
        subdivision=calendar.subdivision,
        closed_days=await _closed_days(session, calendar_id),
    )
