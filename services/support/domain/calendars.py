"""Business calendars: a time zone, weekly hours, holidays by country and subdivision in the
categories the calendar observes (public by default; Brazil's optional ones close Carnaval), and
closed days typed by hand.

A plan counts its SLA targets in minutes of its calendar; `calendar_spec` reads one back as the
`CalendarSpec` the SLA clock rules and the workflow compute with. A calendar's view lists the next
days it will skip, so an admin sees what the clocks will do. (Changing a calendar, and the
tickets that follow it: `calendar_changes`.)
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit import names
from services.kit.auth import Principal
from services.kit.clock import local_today
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
from workflows.contracts.business_time import (
    CalendarSpec,
    ClosedDay as UpcomingClosedDay,
    compile_calendar,
    next_closed_days,
    spec_problems,
    supported_categories,
)

UPCOMING_LIMIT = 10


@dataclass(frozen=True)
class CalendarView:
    calendar: Calendar
    closed_days: list[str]
    # The next days its clocks skip (observed holidays and closed days on open weekdays).
    upcoming: list[UpcomingClosedDay]


def clean_spec(spec: CalendarSpec) -> CalendarSpec:
    """The spec as it will be kept: trimmed, codes upper-case, categories lower-case, sorted."""
    return CalendarSpec(
        time_zone=spec.time_zone.strip(),
        weekly=[text.strip() for text in spec.weekly],
        country=spec.country.strip().upper(),
        subdivision=spec.subdivision.strip().upper(),
        closed_days=sorted({day.strip() for day in spec.closed_days}),
        categories=sorted({category.strip().lower() for category in spec.categories}),
    )


def upcoming_closed_days(spec: CalendarSpec, now: datetime) -> list[UpcomingClosedDay]:
    """From today in the calendar's zone, the next days its clocks skip."""
    calendar = compile_calendar(spec)
    return next_closed_days(calendar, local_today(now, spec.time_zone), limit=UPCOMING_LIMIT)


async def view_of(session: AsyncSession, calendar: Calendar, now: datetime) -> CalendarView:
    spec = await calendar_spec(session, calendar.id)
    return CalendarView(calendar, spec.closed_days, upcoming_closed_days(spec, now))


def list_holiday_categories(*, actor: Principal | None, country: str) -> Sequence[str]:
    """The categories the holidays library knows for a country (empty for an unknown one)."""
    require_agent(actor)
    return supported_categories(country.strip().upper())


def calendar_code(field: str) -> str:
    """The code of a calendar rule: which regions and holiday categories exist is the holidays
    library's knowledge, how the opening hours of a day fit together is beyond a pattern (422
    all); the rest is the schema's (400)."""
    if field in ("country", "subdivision", "holiday_categories"):
        # An unknown region, or a subdivision or holiday categories without their country.
        return "unknown_region"
    if field.startswith("weekly_hours"):
        return "opening_hours"
    if field == "time_zone":
        return "time_zone"
    if field.startswith("holiday_categories["):
        return "unknown_category"
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
    key = names.check_name(v, "name", name)
    spec = clean_spec(spec)
    # Which countries, subdivisions and categories exist is the holidays library's knowledge.
    v.extend((field, why, calendar_code(field)) for field, why in spec_problems(spec))
    v.raise_if_any()
    why = "is already the name of a calendar (as people read it)"
    taken = AlreadyExists(f"name: {why}", reason="name_taken", violations=[("name", why)])
    if await session.scalar(select(Calendar.id).where(Calendar.name_key == key)) is not None:
        raise taken
    calendar = Calendar(
        id=uuid.uuid4(),
        name=name.strip(),
        name_key=key,
        time_zone=spec.time_zone,
        weekly_hours=spec.weekly,
        country=spec.country,
        subdivision=spec.subdivision,
        holiday_categories=spec.categories,
        created_at=now,
    )
    session.add(calendar)
    await flush_unique(session, {"uq_calendars_name_key": taken})
    for day in spec.closed_days:
        session.add(ClosedDay(calendar_id=calendar.id, day=datetime.fromisoformat(day).date()))
    await session.flush()
    return CalendarView(calendar, spec.closed_days, upcoming_closed_days(spec, now))


async def list_calendars(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    page_size: int,
    page_token: str,
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
        items=[await view_of(session, c, now) for c in found.items],
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
        categories=list(calendar.holiday_categories),
    )
