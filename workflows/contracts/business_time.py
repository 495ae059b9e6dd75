"""Business-time arithmetic: how long a calendar was open between two instants, and when a
target of open time is reached, with pauses taken out.

Shared by the support service (deadlines shown to agents, whether a clock was met when it stops)
and the ticket SLA workflow (when to wake up), so both agree to the second. Pure and
deterministic: no I/O, no clock; holidays come from the `holidays` library (computed, not
fetched), by country and subdivision, in the categories the calendar observes (public holidays by
default; e.g. Brazil's optional ones close Carnaval), plus the calendar's own closed days.

A calendar is open on a local date during its weekly hours for that weekday, unless the date is a
holiday of an observed category or an extra closed day. Hours are local wall-clock times in the
calendar's time zone ("24:00" closes at the next midnight), so a day on which daylight saving time
changes is simply one hour shorter or longer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

ZERO = timedelta(0)
PUBLIC = "public"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
# A calendar that never opens would make a deadline unreachable: stop looking after ten years.
_MAX_DAYS = 3660


@dataclass
class CalendarSpec:
    """A calendar as data (the workflow's input and the service's row): primitives only.

    `weekly` has seven entries, Monday first; each is "" (closed) or comma-separated local
    ranges "HH:MM-HH:MM". `closed_days` are ISO dates on which the calendar is closed.
    `categories` are the `holidays` categories observed ("public", "optional", "bank"…; empty:
    public holidays only, as before categories existed, so saved workflow inputs keep their
    meaning).
    """

    time_zone: str
    weekly: list[str]
    country: str = ""
    subdivision: str = ""
    closed_days: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Calendar:
    """A compiled, hashable calendar: minutes after local midnight per weekday."""

    time_zone: str
    weekly: tuple[tuple[tuple[int, int], ...], ...]
    country: str
    subdivision: str
    closed_days: frozenset[date]
    categories: tuple[str, ...] = (PUBLIC,)


def parse_day_hours(text: str) -> tuple[tuple[int, int], ...]:
    """ "09:00-12:00,13:30-18:00" → ((540, 720), (810, 1080)); raises ValueError saying why."""
    ranges: list[tuple[int, int]] = []
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        match = _RANGE.match(part)
        if match is None:
            raise ValueError(f"{part!r} is not HH:MM-HH:MM")
        opens = int(match[1]) * 60 + int(match[2])
        closes = int(match[3]) * 60 + int(match[4])
        if opens >= 1440 or closes > 1440:
            raise ValueError(f"{part!r} is outside 00:00-24:00")
        if closes <= opens:
            raise ValueError(f"{part!r} closes before it opens")
        if ranges and opens < ranges[-1][1]:
            raise ValueError(f"{part!r} overlaps or precedes the range before it")
        ranges.append((opens, closes))
    return tuple(ranges)


def spec_problems(spec: CalendarSpec) -> list[tuple[str, str]]:
    """Every problem of a calendar spec, as (field, why), for the service's field violations."""
    problems: list[tuple[str, str]] = []
    try:
        ZoneInfo(spec.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(("time_zone", "is not an IANA time zone (e.g. Europe/Paris)"))
    if len(spec.weekly) != 7:
        problems.append(("weekly_hours", "must have 7 entries, Monday first"))
    else:
        for name, text in zip(WEEKDAYS, spec.weekly, strict=True):
            try:
                parse_day_hours(text)
            except ValueError as error:
                problems.append((f"weekly_hours.{name}", str(error)))
        if not problems and not any(parse_day_hours(text) for text in spec.weekly):
            problems.append(("weekly_hours", "must open at least once a week"))
    if spec.country:
        supported = holidays.list_supported_countries()
        if spec.country not in supported:
            problems.append(("country", "is not a country the holidays library knows"))
        elif spec.subdivision and spec.subdivision not in supported[spec.country]:
            problems.append(("subdivision", f"is not a subdivision of {spec.country}"))
    elif spec.subdivision:
        problems.append(("subdivision", "needs a country"))
    if spec.categories:
        if not spec.country:
            problems.append(("holiday_categories", "needs a country"))
        else:
            offered = supported_categories(spec.country)
            for index, category in enumerate(spec.categories):
                if offered and category not in offered:
                    problems.append(
                        (
                            f"holiday_categories[{index}]",
                            f"is not a category of {spec.country}'s holidays "
                            f"({', '.join(offered)})",
                        )
                    )
    for index, raw in enumerate(spec.closed_days):
        try:
            date.fromisoformat(raw)
        except ValueError:
            problems.append((f"closed_days[{index}]", "must be a date, YYYY-MM-DD"))
    return problems


def compile_calendar(spec: CalendarSpec) -> Calendar:
    """The hashable form of a spec (raises ValueError on a spec `spec_problems` refuses)."""
    return _compile(
        spec.time_zone,
        tuple(spec.weekly),
        spec.country,
        spec.subdivision,
        tuple(sorted(spec.closed_days)),
        tuple(sorted(set(spec.categories))),
    )


@lru_cache(maxsize=1024)
def _compile(
    time_zone: str,
    weekly: tuple[str, ...],
    country: str,
    subdivision: str,
    closed_days: tuple[str, ...],
    categories: tuple[str, ...] = (),
) -> Calendar:
    spec = CalendarSpec(
        time_zone, list(weekly), country, subdivision, list(closed_days), list(categories)
    )
    problems = spec_problems(spec)
    if problems:
        raise ValueError("; ".join(f"{name}: {why}" for name, why in problems))
    return Calendar(
        time_zone=time_zone,
        weekly=tuple(parse_day_hours(text) for text in weekly),
        country=country,
        subdivision=subdivision,
        closed_days=frozenset(date.fromisoformat(raw) for raw in closed_days),
        categories=categories or (PUBLIC,),
    )


@lru_cache(maxsize=256)
def supported_categories(country: str) -> tuple[str, ...]:
    """The holiday categories the `holidays` library knows for a country (e.g. BR: optional,
    public); empty for a country it does not know."""
    if country not in holidays.list_supported_countries():
        return ()
    return tuple(sorted(holidays.country_holidays(country).supported_categories))


@lru_cache(maxsize=4096)
def _public_holidays(
    country: str, subdivision: str, year: int, categories: tuple[str, ...] = (PUBLIC,)
) -> dict[date, str]:
    """The holidays a calendar observes in a year (public ones by default), with their names."""
    if not country:
        return {}
    found = holidays.country_holidays(
        country, subdiv=subdivision or None, years=year, categories=categories
    )
    return {day: str(name) for day, name in found.items()}


def is_open_day(calendar: Calendar, day: date) -> bool:
    return (
        bool(calendar.weekly[day.weekday()])
        and day not in calendar.closed_days
        and day
        not in _public_holidays(
            calendar.country, calendar.subdivision, day.year, calendar.categories
        )
    )


def holiday_name(calendar: Calendar, day: date) -> str | None:
    """The observed holiday's name on that day, if any (for explanations, not arithmetic)."""
    return _public_holidays(
        calendar.country, calendar.subdivision, day.year, calendar.categories
    ).get(day)


@dataclass(frozen=True)
class ClosedDay:
    """A day the calendar would open by its weekly hours but does not, and why."""

    day: date
    # The holiday's name, or "" for a closed day typed by hand.
    name: str
    holiday: bool


def next_closed_days(
    calendar: Calendar, start: date, *, limit: int = 10, within_days: int = 366
) -> list[ClosedDay]:
    """The next days from `start` (a local date) on which the weekly hours would open but the
    calendar is closed: observed holidays and typed closed days, what the SLA clocks skip."""
    found: list[ClosedDay] = []
    for offset in range(within_days):
        day = start + timedelta(days=offset)
        if not calendar.weekly[day.weekday()]:
            continue
        name = holiday_name(calendar, day)
        if name is not None:
            found.append(ClosedDay(day, name, holiday=True))
        elif day in calendar.closed_days:
            found.append(ClosedDay(day, "", holiday=False))
        if len(found) >= limit:
            break
    return found


@lru_cache(maxsize=65536)
def open_intervals(calendar: Calendar, day: date) -> tuple[tuple[datetime, datetime], ...]:
    """The UTC intervals during which the calendar is open on a local date."""
    if not is_open_day(calendar, day):
        return ()
    zone = ZoneInfo(calendar.time_zone)
    midnight = datetime(day.year, day.month, day.day)
    result: list[tuple[datetime, datetime]] = []
    for opens, closes in calendar.weekly[day.weekday()]:
        start = (midnight + timedelta(minutes=opens)).replace(tzinfo=zone).astimezone(UTC)
        end = (midnight + timedelta(minutes=closes)).replace(tzinfo=zone).astimezone(UTC)
        if result and start < result[-1][1]:
            start = result[-1][1]
        if end > start:
            result.append((start, end))
    return tuple(result)


def _local_day(calendar: Calendar, moment: datetime) -> date:
    return moment.astimezone(ZoneInfo(calendar.time_zone)).date()


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("business time needs aware datetimes")
    return moment.astimezone(UTC)


def business_time(calendar: Calendar, start: datetime, end: datetime) -> timedelta:
    """Open time of the calendar within [start, end); zero when end is not after start."""
    start, end = _utc(start), _utc(end)
    if end <= start:
        return ZERO
    total = ZERO
    day = _local_day(calendar, start) - timedelta(days=1)
    last = _local_day(calendar, end) + timedelta(days=1)
    while day <= last:
        for opens, closes in open_intervals(calendar, day):
            overlap = min(closes, end) - max(opens, start)
            if overlap > ZERO:
                total += overlap
        day += timedelta(days=1)
    return total


def add_business_time(calendar: Calendar, start: datetime, amount: timedelta) -> datetime:
    """The instant at which `amount` of open time has passed since `start`."""
    start = _utc(start)
    if amount <= ZERO:
        return start
    remaining = amount
    day = _local_day(calendar, start) - timedelta(days=1)
    for _ in range(_MAX_DAYS):
        for opens, closes in open_intervals(calendar, day):
            begin = max(opens, start)
            if closes <= begin:
                continue
            available = closes - begin
            if available >= remaining:
                return begin + remaining
            remaining -= available
        day += timedelta(days=1)
    raise ValueError("the calendar does not open within ten years")


@dataclass(frozen=True)
class Pause:
    """The clocks stood still from `start` until `end` (None: still paused)."""

    start: datetime
    end: datetime | None = None


def _sorted_pauses(pauses: list[Pause]) -> list[Pause]:
    return sorted(pauses, key=lambda pause: _utc(pause.start))


def active_time(
    calendar: Calendar, start: datetime, end: datetime, pauses: list[Pause]
) -> timedelta:
    """Open time within [start, end) outside every pause (pauses may overlap each other)."""
    total = ZERO
    cursor = _utc(start)
    end = _utc(end)
    for pause in _sorted_pauses(pauses):
        pause_start = _utc(pause.start)
        if pause_start >= end:
            break
        if pause_start > cursor:
            total += business_time(calendar, cursor, pause_start)
        if pause.end is None:
            return total
        cursor = max(cursor, _utc(pause.end))
        if cursor >= end:
            return total
    return total + business_time(calendar, cursor, end)


def due_at(
    calendar: Calendar, start: datetime, target: timedelta, pauses: list[Pause]
) -> datetime | None:
    """When a clock started at `start` reaches `target` of active time; None while a pause
    that began before that instant is still open (the deadline is not known yet)."""
    remaining = target
    cursor = _utc(start)
    for pause in _sorted_pauses(pauses):
        pause_start = _utc(pause.start)
        if pause.end is not None and _utc(pause.end) <= cursor:
            continue
        if pause_start > cursor:
            reached = add_business_time(calendar, cursor, remaining)
            if reached <= pause_start:
                return reached
            remaining -= business_time(calendar, cursor, pause_start)
        if pause.end is None:
            return None
        cursor = max(cursor, _utc(pause.end))
    return add_business_time(calendar, cursor, remaining)


def fraction(target: timedelta, percent: int) -> timedelta:
    """`percent` of a target, to the whole second (a warning never fires before its time)."""
    seconds = int(target.total_seconds())
    return timedelta(seconds=-(-seconds * percent // 100))
