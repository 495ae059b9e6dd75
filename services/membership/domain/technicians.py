"""A workshop's technicians and the program's training courses: the catalogue, registrations
held within capacity, cancellations before the start and attendance after it."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.clock import local_today
from services.kit.errors import FailedPrecondition, NotFound, PermissionDenied, Validator
from services.kit.paging import (
    Page,
    keyset_after as _after,
    page_token as _page_token,
    parse_page as _parse_page,
)
from services.membership.domain.banner import membership_of
from services.membership.domain.common import (
    WORKSHOP_OWNER,
    already_taken,
    check_code,
    check_date,
    check_email,
    check_long_text,
    check_text,
    check_uuid,
    fetch_page,
    flush_or_raise,
    is_operator,
    parse_moment,
    parse_uuid,
    require_operator,
    require_user,
    workshop_party,
)
from services.membership.models import (
    CourseRegistration,
    CourseRegistrationStatus,
    Technician,
    TrainingCourse,
)


@dataclass(frozen=True)
class CourseView:
    course: TrainingCourse
    seats_taken: int


@dataclass(frozen=True)
class CourseRegistrationView:
    registration: CourseRegistration
    course: CourseView
    technician: Technician


async def add_technician(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    workshop_id: str,
    first_name: str,
    last_name: str,
    email: str,
) -> Technician:
    parsed = parse_uuid("workshop_id", workshop_id)
    workshop_party(actor, parsed)
    v = Validator()
    first = check_text(v, "first_name", first_name, limit=100)
    last = check_text(v, "last_name", last_name, limit=100)
    address = check_email(v, "email", email, required=False)
    v.raise_if_any()
    await membership_of(session, parsed, active=True)
    technician = Technician(
        id=uuid.uuid4(),
        workshop_id=parsed,
        first_name=first,
        last_name=last,
        email=address,
        created_at=now,
    )
    session.add(technician)
    await session.flush()
    return technician


async def list_technicians(
    *,
    session: AsyncSession,
    actor: Principal | None,
    workshop_id: str,
    page_size: int,
    page_token: str,
) -> Page[Technician]:
    parsed = parse_uuid("workshop_id", workshop_id)
    workshop_party(actor, parsed)
    v = Validator()
    page = _parse_page(v, "technicians", page_size, page_token, [str, uuid.UUID])
    v.raise_if_any()
    columns = [Technician.last_name, Technician.id]
    query = (
        select(Technician)
        .where(Technician.workshop_id == parsed, *_after(page, columns))
        .order_by(*columns)
    )
    return await fetch_page(session, query, page, "technicians", lambda t: (t.last_name, t.id))


def _live_course_registrations() -> ColumnElement[bool]:
    return CourseRegistration.status != CourseRegistrationStatus.CANCELLED.value


async def _seats(session: AsyncSession, course_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    ids = list(set(course_ids))
    if not ids:
        return {}
    rows = await session.execute(
        select(CourseRegistration.course_id, func.count())
        .where(CourseRegistration.course_id.in_(ids), _live_course_registrations())
        .group_by(CourseRegistration.course_id)
    )
    counts = {course_id: 0 for course_id in ids}
    counts.update({course_id: int(count) for course_id, count in rows})
    return counts


async def create_training_course(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    time_zone: str = "UTC",
    code: str,
    title: str,
    description: str,
    starts_on: str,
    ends_on: str,
    location: str,
    capacity: int,
) -> CourseView:
    require_operator(actor)
    v = Validator()
    code = check_code(v, "code", code)
    title = check_text(v, "title", title)
    description = check_long_text(v, "description", description, limit=4000, required=False)
    starts = check_date(v, "starts_on", starts_on)
    ends = check_date(v, "ends_on", ends_on, required=False) or starts
    if starts is not None:
        v.check(
            starts > local_today(now, time_zone),
            "starts_on",
            "must be after today",
            code="in_the_past",
        )
    if starts is not None and ends is not None:
        v.check(ends >= starts, "ends_on", "must not be before starts_on", code="end_before_start")
    location = check_text(v, "location", location)
    v.check(1 <= capacity <= 1000, "capacity", "must be between 1 and 1000", code="less_than_equal")
    v.raise_if_any()
    assert starts is not None and ends is not None
    course = TrainingCourse(
        id=uuid.uuid4(),
        code=code,
        title=title,
        description=description,
        starts_on=starts,
        ends_on=ends,
        location=location,
        capacity=capacity,
        created_at=now,
    )
    session.add(course)
    await flush_or_raise(
        session,
        {"uq_training_courses_code": already_taken("code", "is already the code of a course")},
    )
    return CourseView(course, 0)


async def list_training_courses(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    time_zone: str = "UTC",
    upcoming_only: bool,
    page_size: int,
    page_token: str,
) -> Page[CourseView]:
    """Operators and every workshop of the program see the course catalogue."""
    actor = require_user(actor)
    if not (is_operator(actor) or actor.has_any_role(WORKSHOP_OWNER)):
        raise PermissionDenied("the course catalogue is for workshops and the program team")
    v = Validator()
    page = _parse_page(v, "courses", page_size, page_token, [date.fromisoformat, uuid.UUID])
    v.raise_if_any()
    columns = [TrainingCourse.starts_on, TrainingCourse.id]
    query = select(TrainingCourse).where(*_after(page, columns)).order_by(*columns)
    if upcoming_only:
        query = query.where(TrainingCourse.starts_on > local_today(now, time_zone))
    result = await fetch_page(
        session, query, page, "courses", lambda c: (c.starts_on.isoformat(), c.id)
    )
    seats = await _seats(session, (c.id for c in result.items))
    return Page([CourseView(c, seats[c.id]) for c in result.items], result.next_page_token)


async def register_technician(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    time_zone: str = "UTC",
    workshop_id: str,
    course_id: str,
    technician_id: str,
) -> CourseRegistrationView:
    """The workshop registers one of its technicians; the course must be upcoming and not full."""
    parsed_workshop = parse_uuid("workshop_id", workshop_id)
    workshop_party(actor, parsed_workshop)
    v = Validator()
    parsed_course = check_uuid(v, "course_id", course_id)
    parsed_technician = check_uuid(v, "technician_id", technician_id)
    v.raise_if_any()
    await membership_of(session, parsed_workshop, active=True)
    technician = await session.get(Technician, parsed_technician)
    if technician is None or technician.workshop_id != parsed_workshop:
        raise NotFound("technician not found")
    # The course row is the lock that keeps concurrent registrations within its capacity.
    course = await session.get(TrainingCourse, parsed_course, with_for_update=True)
    if course is None:
        raise NotFound("course not found")
    if course.starts_on <= local_today(now, time_zone):
        raise FailedPrecondition("this course has already started", reason="course_started")
    taken = (await _seats(session, [course.id]))[course.id]
    if taken >= course.capacity:
        raise FailedPrecondition("this course is full", reason="course_full")
    registration = CourseRegistration(
        id=uuid.uuid4(),
        course_id=course.id,
        technician_id=technician.id,
        workshop_id=parsed_workshop,
        status=CourseRegistrationStatus.REGISTERED.value,
        created_at=now,
        updated_at=now,
    )
    session.add(registration)
    await flush_or_raise(
        session,
        {
            "uq_course_registrations_live": already_taken(
                "technician_id", "this technician is already registered for this course"
            )
        },
    )
    return CourseRegistrationView(registration, CourseView(course, taken + 1), technician)


async def update_course_registration(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    time_zone: str = "UTC",
    workshop_id: str,
    registration_id: str,
    status: str,
) -> CourseRegistrationView:
    """CANCELLED by the workshop or operators before the course starts; COMPLETED or ABSENT by
    operators once it started (the technician's training history)."""
    parsed_workshop = parse_uuid("workshop_id", workshop_id)
    party = workshop_party(actor, parsed_workshop)
    v = Validator()
    parsed = check_uuid(v, "registration_id", registration_id)
    v.check(
        status
        in (
            CourseRegistrationStatus.CANCELLED,
            CourseRegistrationStatus.COMPLETED,
            CourseRegistrationStatus.ABSENT,
        ),
        "status",
        "must be CANCELLED, COMPLETED or ABSENT",
    )
    v.raise_if_any()
    registration = await session.get(CourseRegistration, parsed, with_for_update=True)
    if registration is None or registration.workshop_id != parsed_workshop:
        raise NotFound("registration not found")
    course = await session.get(TrainingCourse, registration.course_id)
    technician = await session.get(Technician, registration.technician_id)
    assert course is not None and technician is not None
    started = course.starts_on <= local_today(now, time_zone)
    if status == CourseRegistrationStatus.CANCELLED:
        if registration.status != CourseRegistrationStatus.REGISTERED:
            raise FailedPrecondition(
                f"this registration is {registration.status}", reason="not_registered"
            )
        if started:
            raise FailedPrecondition("this course has already started", reason="course_started")
    else:
        if party != "operator":
            raise PermissionDenied("only the program team records attendance")
        if registration.status == CourseRegistrationStatus.CANCELLED:
            raise FailedPrecondition("this registration was cancelled", reason="cancelled")
        if not started:
            raise FailedPrecondition("this course has not started yet", reason="course_not_started")
    registration.status = status
    registration.updated_at = now
    seats = (await _seats(session, [course.id]))[course.id]
    return CourseRegistrationView(registration, CourseView(course, seats), technician)


async def list_course_registrations(
    *,
    session: AsyncSession,
    actor: Principal | None,
    workshop_id: str,
    technician_id: str,
    page_size: int,
    page_token: str,
) -> Page[CourseRegistrationView]:
    """The technicians' training history, newest first."""
    parsed_workshop = parse_uuid("workshop_id", workshop_id)
    workshop_party(actor, parsed_workshop)
    v = Validator()
    parsed_technician = check_uuid(v, "technician_id", technician_id, required=False)
    page = _parse_page(v, "course-registrations", page_size, page_token, [parse_moment, uuid.UUID])
    v.raise_if_any()
    columns = [CourseRegistration.created_at, CourseRegistration.id]
    query = (
        select(CourseRegistration, TrainingCourse, Technician)
        .join(TrainingCourse, TrainingCourse.id == CourseRegistration.course_id)
        .join(Technician, Technician.id == CourseRegistration.technician_id)
        .where(
            CourseRegistration.workshop_id == parsed_workshop,
            *_after(page, columns, descending=True),
        )
        .order_by(*(c.desc() for c in columns))
        .limit(page.size + 1)
    )
    if parsed_technician is not None:
        query = query.where(CourseRegistration.technician_id == parsed_technician)
    rows = (await session.execute(query)).all()
    token = ""
    if len(rows) > page.size:
        rows = rows[: page.size]
        last = rows[-1][0]
        token = _page_token("course-registrations", (last.created_at.isoformat(), last.id))
    seats = await _seats(session, (row[1].id for row in rows))
    return Page(
        [
            CourseRegistrationView(registration, CourseView(course, seats[course.id]), technician)
            for registration, course, technician in rows
        ],
        token,
    )
