"""Holiday categories: a calendar chooses the `holidays` categories it observes, per country and
subdivision; Brazil's Carnaval is one choice away (its optional category); the calendar shows the
next days its clocks skip; changing a calendar moves the deadlines of its open tickets."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import grpc
from guichet.common.v1 import common_pb2
from guichet.support.v1 import support_pb2 as pb

from tests.identity.harness import fails, fields
from tests.support.harness import Support
from workflows.contracts.business_time import (
    CalendarSpec,
    add_business_time,
    compile_calendar,
    next_closed_days,
)

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
WEEKDAYS = ["09:00-18:00"] * 5 + ["", ""]
# Carnaval 2027: Monday 8 and Tuesday 9 February; Ash Wednesday the 10th (optional too).
FRIDAY_BEFORE = date(2027, 2, 5)
HOUR = timedelta(hours=1)


def sao_paulo(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=SAO_PAULO).astimezone(UTC)


def test_carnaval_is_a_business_day_unless_the_optional_category_is_observed() -> None:
    public = compile_calendar(CalendarSpec("America/Sao_Paulo", WEEKDAYS, "BR"))
    carnaval = compile_calendar(
        CalendarSpec("America/Sao_Paulo", WEEKDAYS, "BR", categories=["optional", "public"])
    )
    # Friday 17:00 + 4 business hours: Monday 12:00 on public holidays only; with Carnaval
    # (and Ash Wednesday) closed, Thursday 12:00.
    start = sao_paulo(FRIDAY_BEFORE, 17)
    assert add_business_time(public, start, 4 * HOUR) == sao_paulo(date(2027, 2, 8), 12)
    assert add_business_time(carnaval, start, 4 * HOUR) == sao_paulo(date(2027, 2, 11), 12)
    skipped = next_closed_days(carnaval, FRIDAY_BEFORE, limit=3)
    assert [(d.day.isoformat(), d.name) for d in skipped] == [
        ("2027-02-08", "Carnival"),
        ("2027-02-09", "Carnival"),
        ("2027-02-10", "Ash Wednesday"),
    ]
    assert next_closed_days(public, FRIDAY_BEFORE, limit=1)[0].day == date(2027, 3, 26)


@contextmanager
def pinned(support: Support, moment: datetime) -> Iterator[None]:
    support.clock.pinned = moment
    try:
        yield
    finally:
        support.clock.pinned = None


async def test_a_calendar_chooses_its_categories_and_shows_what_it_will_skip(
    support: Support,
) -> None:
    offered = await support.stub.ListHolidayCategories(
        pb.ListHolidayCategoriesRequest(country="br"), metadata=support.admin
    )
    assert list(offered.categories) == ["optional", "public"]

    wrong = await fails(
        support.stub.CreateCalendar(
            pb.CreateCalendarRequest(
                name="Bad categories",
                time_zone="America/Sao_Paulo",
                weekly_hours=WEEKDAYS,
                country="BR",
                holiday_categories=["bank"],
            ),
            metadata=support.admin,
        )
    )
    assert wrong.code == grpc.StatusCode.INVALID_ARGUMENT
    assert wrong.violations == [
        ("holiday_categories[0]", "is not a category of BR's holidays (optional, public)")
    ]
    countryless = await fails(
        support.stub.CreateCalendar(
            pb.CreateCalendarRequest(
                name="No country",
                time_zone="UTC",
                weekly_hours=WEEKDAYS,
                holiday_categories=["public"],
            ),
            metadata=support.admin,
        )
    )
    assert fields(countryless) == {"holiday_categories"}

    with pinned(support, sao_paulo(date(2027, 1, 20), 10)):
        calendar = await support.calendar(
            time_zone="America/Sao_Paulo",
            weekly_hours=WEEKDAYS,
            country="BR",
            holiday_categories=["Optional", "public", "optional"],
        )
        assert list(calendar.holiday_categories) == ["optional", "public"]
        assert [(d.day, d.name, d.holiday) for d in calendar.upcoming_closed_days[:3]] == [
            ("2027-02-08", "Carnival", True),
            ("2027-02-09", "Carnival", True),
            ("2027-02-10", "Ash Wednesday", True),
        ]
        listed = await support.stub.ListCalendars(
            pb.ListCalendarsRequest(page=common_pb2.PageRequest(page_size=500)),
            metadata=support.admin,
        )
        mine = next(c for c in listed.calendars if c.id == calendar.id)
        assert mine.upcoming_closed_days == calendar.upcoming_closed_days


async def test_observing_carnaval_moves_an_open_tickets_deadline(support: Support) -> None:
    # A calendar on public holidays only; a ticket opened on the Friday before Carnaval at
    # 17:00 in São Paulo, 4 business hours to answer: due Monday 12:00.
    with pinned(support, sao_paulo(FRIDAY_BEFORE, 17)):
        calendar = await support.calendar(
            time_zone="America/Sao_Paulo", weekly_hours=WEEKDAYS, country="BR"
        )
        plan = await support.plan(calendar.id, minutes=(240, 480, 2400))
        _, _, token = await support.customer(plan.id)
        category = await support.category()
        ticket = await support.open(token, category.id)
        assert ticket.next_due_time.ToDatetime(tzinfo=UTC) == sao_paulo(date(2027, 2, 8), 12)

        _, agent = await support.agent()
        change = pb.UpdateCalendarRequest(
            calendar_id=calendar.id,
            time_zone="America/Sao_Paulo",
            weekly_hours=WEEKDAYS,
            country="BR",
            holiday_categories=["public", "optional"],
            closed_days=["2027-02-12"],
        )
        refused = await fails(support.stub.UpdateCalendar(change, metadata=agent))
        assert refused.code == grpc.StatusCode.PERMISSION_DENIED
        updated = await support.stub.UpdateCalendar(change, metadata=support.admin)
        assert updated.tickets_updated == 1
        assert list(updated.calendar.closed_days) == ["2027-02-12"]
        assert [d.day for d in updated.calendar.upcoming_closed_days[:4]] == [
            "2027-02-08",
            "2027-02-09",
            "2027-02-10",
            "2027-02-12",
        ]
        assert updated.calendar.upcoming_closed_days[3].holiday is False

    # Carnaval and Ash Wednesday closed, and Friday the 12th typed closed: Thursday 12:00.
    history = await support.history(ticket.id)
    assert history.ticket.next_due_time.ToDatetime(tzinfo=UTC) == sao_paulo(date(2027, 2, 11), 12)
    assert any(e.kind == pb.SLA_EVENT_KIND_RECOMPUTE for e in history.events)
