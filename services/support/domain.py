"""Support's rules: calendars, plans, contracts, categories and deflection, tickets, SLA, reports.

Every function takes the caller's session keyword-only and never commits: the servicer owns the
transaction, so a refused request leaves nothing half-written. Time comes in as `now`; the caller
is `actor`, the verified principal.

Who sees what: a customer (customer_user of an erp_customer, partner_manager of a delivery
partner) sees the tickets of their own organisations and nothing else: another organisation's
ticket is "not found", never "forbidden", so no tenant learns what another holds. Operator staff
(support_agent, ops_admin) see every ticket; ops_admin alone manages plans, calendars, contracts
and categories.

SLA: every event of a ticket goes through `_ticket_event`, which moves the clocks with the same
pure rules as the SLA workflow (`workflows.ticket_sla.apply_event`), stores the clocks, pauses and
deadlines, and records the event for the workflow in the signal outbox (`sla_signals`) in the same
transaction. Opening a ticket records the workflow's start in the outbox.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import ColumnElement, Select, and_, func, literal, or_, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Validator,
)
from services.kit.mail import enqueue_mail
from services.kit.outbox import enqueue
from services.kit.paging import (
    Page,
    PageQuery,
    page_token as _page_token,
    parse_page as _parse_page,
)
from services.kit.temporal import TENANT, TICKET
from services.support.models import (
    Attachment,
    Audience,
    Calendar,
    Category,
    Channel,
    Clock,
    ClosedDay,
    ConsultingEntry,
    Contract,
    EventKind,
    FaqEntry,
    FaqView,
    Kind,
    Message,
    OrganisationKind,
    Plan,
    PlanTarget,
    Priority,
    Side,
    SlaClock,
    SlaEvent,
    SlaPause,
    SlaSignal,
    Status,
    Ticket,
    outbox,
)
from services.support.settings import SupportSettings
from workflows.business_time import CalendarSpec, spec_problems
from workflows.ticket_sla import (
    AGENT_REPLY,
    CUSTOMER_REPLY,
    POLICY_CHANGE,
    SLA_WORKFLOW,
    STATUS_CHANGE,
    ClockState,
    PauseState,
    SlaPolicy,
    SlaState,
    TicketEvent,
    TicketSlaInput,
    apply_event,
    deadlines,
    elapsed,
    opening_state,
    sla_workflow_id,
)

T = TypeVar("T")

SUPPORT_AGENT = "support_agent"
OPS_ADMIN = "ops_admin"
CUSTOMER_USER = "customer_user"
PARTNER_MANAGER = "partner_manager"
# The role that lets a member of each kind of organisation use support.
CUSTOMER_ROLE_BY_KIND = {
    OrganisationKind.ERP_CUSTOMER: CUSTOMER_USER,
    OrganisationKind.DELIVERY_PARTNER: PARTNER_MANAGER,
}
AUDIENCE_BY_KIND = {
    OrganisationKind.ERP_CUSTOMER: Audience.CUSTOMER,
    OrganisationKind.DELIVERY_PARTNER: Audience.PARTNER,
}

# Allowed moves; finished and cancelled are final (a new question is a new ticket).
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.OPEN: frozenset(
        {Status.IN_PROGRESS, Status.WAITING_ON_CUSTOMER, Status.FINISHED, Status.CANCELLED}
    ),
    Status.IN_PROGRESS: frozenset({Status.WAITING_ON_CUSTOMER, Status.FINISHED, Status.CANCELLED}),
    Status.WAITING_ON_CUSTOMER: frozenset({Status.IN_PROGRESS, Status.FINISHED, Status.CANCELLED}),
    Status.FINISHED: frozenset(),
    Status.CANCELLED: frozenset(),
}
ACTIVE_STATUSES = (Status.OPEN, Status.IN_PROGRESS, Status.WAITING_ON_CUSTOMER)
PRIORITY_ORDER = (Priority.LOW, Priority.NORMAL, Priority.HIGH, Priority.URGENT)

DEFAULT_WARNING_PERCENT = 80
TITLE_MAX = 200
TEXT_MAX = 20_000
EXAMPLE_MAX = 500
NOTE_MAX = 500
FILENAME_MAX = 200
MAX_TARGET_MINUTES = 525_600  # a year of business minutes is already no promise at all
MAX_CONSULTING_MINUTES = 24 * 60
IDEMPOTENCY_KEY_MAX = 100

_CODE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_SCREEN_CODE = re.compile(r"^[A-Za-z0-9_.\- ]{1,40}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_EMAIL_IN_TEXT = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_NUMBER = re.compile(r"^#?(\d{1,18})$")

# Leading bytes of the binary types we accept: a file must be what it says it is.
_MAGIC: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (b"PK\x03\x04",),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (b"PK\x03\x04",),
}


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def fold(text: str) -> str:
    """Search form of a text: accents stripped, case folded, spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(bare.casefold().split())


def _check_text(
    v: Validator, field: str, value: str, limit: int, *, required: bool = True, lines: bool = False
) -> None:
    if required:
        v.require(field, value)
    v.check(len(value) <= limit, field, f"must be at most {limit} characters")
    pattern = _CONTROL if lines else re.compile(r"[\x00-\x1f\x7f]")
    v.check(not pattern.search(value), field, "must not contain control characters")


def _parse_uuid(v: Validator, field: str, raw: str, *, required: bool = True) -> uuid.UUID | None:
    if not raw.strip():
        if required:
            v.require(field, raw)
        return None
    try:
        return uuid.UUID(raw.strip())
    except ValueError:
        v.check(False, field, "must be a UUID")
        return None


def _uuid_or_raise(field: str, raw: str) -> uuid.UUID:
    """An id to look up: malformed (or missing) is the caller's mistake, INVALID_ARGUMENT naming
    the field (house rule 7, as in every service); a well-formed unknown one stays NOT_FOUND."""
    v = Validator()
    parsed = _parse_uuid(v, field, raw)
    v.raise_if_any()
    assert parsed is not None
    return parsed


def _email(v: Validator, field: str, raw: str) -> str | None:
    if not raw.strip():
        return None
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized
    except EmailNotValidError as error:
        v.check(False, field, f"is not a valid e-mail address: {error}")
        return None


def _constraint(error: IntegrityError) -> str:
    for candidate in (error.orig, getattr(error.orig, "__cause__", None)):
        name = getattr(candidate, "constraint_name", None)
        if isinstance(name, str):
            return name
    return str(error.orig)


async def _flush(session: AsyncSession, taken: dict[str, DomainError]) -> None:
    """Flushes, turning a unique violation lost to a concurrent writer into a precise error."""
    try:
        await session.flush()
    except IntegrityError as error:
        name = _constraint(error)
        for constraint, domain_error in taken.items():
            if constraint in name:
                raise domain_error from None
        raise


# --------------------------------------------------------------------------------------------
# Pagination (keyset, opaque tokens)
# --------------------------------------------------------------------------------------------


async def _fetch_page(
    session: AsyncSession,
    query: Select[Any],
    page: PageQuery,
    list_name: str,
    key: Callable[[Any], Sequence[object]],
) -> Page[Any]:
    items = list((await session.execute(query.limit(page.size + 1))).scalars().all())
    token = ""
    if len(items) > page.size:
        items = items[: page.size]
        token = _page_token(list_name, key(items[-1]))
    return Page(items=items, next_page_token=token)


def _aware(raw: str) -> datetime:
    moment = datetime.fromisoformat(raw)
    if moment.tzinfo is None:
        raise ValueError(raw)
    return moment


# --------------------------------------------------------------------------------------------
# Who is calling
# --------------------------------------------------------------------------------------------


def _user(actor: Principal | None) -> Principal:
    if actor is None:
        raise Unauthenticated("authentication required")
    if actor.is_service:
        raise PermissionDenied("this call is for signed-in users, not services")
    return actor


def is_agent(actor: Principal | None) -> bool:
    return (
        actor is not None and not actor.is_service and actor.has_any_role(SUPPORT_AGENT, OPS_ADMIN)
    )


def _agent(actor: Principal | None) -> Principal:
    actor = _user(actor)
    if not is_agent(actor):
        raise PermissionDenied("only the support team may do this")
    return actor


def _admin(actor: Principal | None) -> Principal:
    actor = _user(actor)
    if not actor.has_any_role(OPS_ADMIN):
        raise PermissionDenied("only an operations admin may do this")
    return actor


def customer_organisations(actor: Principal) -> set[uuid.UUID]:
    """Organisations in which the caller holds a customer role (customer_user, partner_manager)."""
    found: set[uuid.UUID] = set()
    for organisation, roles in actor.memberships.items():
        if roles & {CUSTOMER_USER, PARTNER_MANAGER}:
            try:
                found.add(uuid.UUID(organisation))
            except ValueError:
                continue
    return found


def _side(actor: Principal, ticket: Ticket) -> Side:
    """Which side of the conversation the caller is on for this ticket (NOT_FOUND if neither)."""
    if ticket.organisation_id in customer_organisations(actor):
        return Side.CUSTOMER
    if is_agent(actor):
        return Side.AGENT
    raise NotFound("ticket not found")


async def _ticket_for(
    session: AsyncSession, actor: Principal | None, ticket_id: str, *, lock: bool = False
) -> tuple[Ticket, Side]:
    actor = _user(actor)
    ticket = await session.get(
        Ticket, _uuid_or_raise("ticket_id", ticket_id), with_for_update=lock or None
    )
    if ticket is None:
        raise NotFound("ticket not found")
    return ticket, _side(actor, ticket)


# --------------------------------------------------------------------------------------------
# Calendars, plans, contracts
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalendarView:
    calendar: Calendar
    closed_days: list[str]


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
    _admin(actor)
    v = Validator()
    _check_text(v, "name", name, 100)
    spec = CalendarSpec(
        time_zone=spec.time_zone.strip(),
        weekly=[text.strip() for text in spec.weekly],
        country=spec.country.strip().upper(),
        subdivision=spec.subdivision.strip().upper(),
        closed_days=sorted({day.strip() for day in spec.closed_days}),
    )
    v.violations.extend(spec_problems(spec))
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
    await _flush(session, {"uq_calendars_name": taken})
    for day in spec.closed_days:
        session.add(ClosedDay(calendar_id=calendar.id, day=datetime.fromisoformat(day).date()))
    await session.flush()
    return CalendarView(calendar, spec.closed_days)


async def list_calendars(
    *, session: AsyncSession, actor: Principal | None, page_size: int, page_token: str
) -> Page[CalendarView]:
    _agent(actor)
    v = Validator()
    page = _parse_page(v, "calendars", page_size, page_token, [str, uuid.UUID])
    v.raise_if_any()
    query = select(Calendar).order_by(Calendar.name, Calendar.id)
    if page.after is not None:
        query = query.where(tuple_(Calendar.name, Calendar.id) > tuple_(*page.after))
    found = await _fetch_page(session, query, page, "calendars", lambda c: (c.name, c.id))
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


@dataclass(frozen=True)
class TargetInput:
    priority: str
    first_response_minutes: int
    next_response_minutes: int
    resolution_minutes: int


@dataclass(frozen=True)
class PlanView:
    plan: Plan
    targets: list[PlanTarget]


async def _plan_view(session: AsyncSession, plan: Plan) -> PlanView:
    targets = list(await session.scalars(select(PlanTarget).where(PlanTarget.plan_id == plan.id)))
    order = {priority.value: index for index, priority in enumerate(PRIORITY_ORDER)}
    return PlanView(plan, sorted(targets, key=lambda t: order.get(t.priority, 9)))


async def create_plan(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    code: str,
    name: str,
    calendar_id: str,
    warning_percent: int,
    targets: Sequence[TargetInput],
) -> PlanView:
    """A plan must promise something for every priority, in minutes of its calendar."""
    _admin(actor)
    v = Validator()
    v.require("code", code)
    v.check(not code or bool(_CODE.match(code)), "code", "must be 1 to 40 of A-Z a-z 0-9 _ -")
    _check_text(v, "name", name, 100)
    calendar = _parse_uuid(v, "calendar_id", calendar_id)
    percent = warning_percent or DEFAULT_WARNING_PERCENT
    v.check(1 <= percent <= 99, "warning_percent", "must be between 1 and 99")
    seen: set[str] = set()
    for index, target in enumerate(targets):
        prefix = f"targets[{index}]"
        if target.priority not in {p.value for p in Priority}:
            v.check(False, f"{prefix}.priority", "must be low, normal, high or urgent")
        elif target.priority in seen:
            v.check(False, f"{prefix}.priority", "is listed twice")
        seen.add(target.priority)
        for field_name in ("first_response_minutes", "next_response_minutes", "resolution_minutes"):
            minutes = getattr(target, field_name)
            v.check(
                0 < minutes <= MAX_TARGET_MINUTES,
                f"{prefix}.{field_name}",
                f"must be between 1 and {MAX_TARGET_MINUTES}",
            )
    missing = [p.value for p in Priority if p.value not in seen]
    v.check(not missing, "targets", f"must cover every priority; missing: {', '.join(missing)}")
    v.raise_if_any()
    assert calendar is not None
    if await session.get(Calendar, calendar) is None:
        raise InvalidArgument([("calendar_id", "no such calendar")])
    plan = Plan(
        id=uuid.uuid4(),
        code=code,
        name=name.strip(),
        calendar_id=calendar,
        warning_percent=percent,
        created_at=now,
    )
    session.add(plan)
    await _flush(
        session,
        {"uq_plans_code": AlreadyExists("code: is taken", violations=[("code", "is taken")])},
    )
    for target in targets:
        session.add(
            PlanTarget(
                plan_id=plan.id,
                priority=target.priority,
                first_response_minutes=target.first_response_minutes,
                next_response_minutes=target.next_response_minutes,
                resolution_minutes=target.resolution_minutes,
            )
        )
    await session.flush()
    return await _plan_view(session, plan)


async def list_plans(
    *, session: AsyncSession, actor: Principal | None, page_size: int, page_token: str
) -> Page[PlanView]:
    _agent(actor)
    v = Validator()
    page = _parse_page(v, "plans", page_size, page_token, [str, uuid.UUID])
    v.raise_if_any()
    query = select(Plan).order_by(Plan.code, Plan.id)
    if page.after is not None:
        query = query.where(tuple_(Plan.code, Plan.id) > tuple_(*page.after))
    found = await _fetch_page(session, query, page, "plans", lambda p: (p.code, p.id))
    return Page(
        items=[await _plan_view(session, plan) for plan in found.items],
        next_page_token=found.next_page_token,
    )


@dataclass(frozen=True)
class OrganisationInfo:
    """What identity says about an organisation (fetched by the servicer)."""

    id: str
    name: str
    kind: str


OrganisationLookup = Callable[[str], Awaitable[OrganisationInfo | None]]


async def set_contract(
    *,
    session: AsyncSession,
    settings: SupportSettings,
    actor: Principal | None,
    now: datetime,
    lookup: OrganisationLookup,
    organisation_id: str,
    plan_id: str,
    operations_email: str,
) -> tuple[Contract, int]:
    """Puts an organisation on a plan; its unfinished tickets follow the new plan at once."""
    _admin(actor)
    v = Validator()
    organisation = _parse_uuid(v, "organisation_id", organisation_id)
    plan_uuid = _parse_uuid(v, "plan_id", plan_id)
    email = _email(v, "operations_email", operations_email)
    v.raise_if_any()
    assert organisation is not None and plan_uuid is not None
    plan = await session.get(Plan, plan_uuid)
    if plan is None:
        raise InvalidArgument([("plan_id", "no such plan")])
    info = await lookup(str(organisation))
    if info is None:
        raise NotFound("organisation not found")
    if info.kind not in {kind.value for kind in OrganisationKind}:
        raise FailedPrecondition(
            f"a {info.kind} organisation cannot hold a support contract "
            "(erp_customer or delivery_partner only)",
            reason="not_a_customer",
            violations=[("organisation_id", "is not an erp_customer or a delivery_partner")],
        )
    contract = await session.get(Contract, organisation, with_for_update=True)
    moved = 0
    if contract is None:
        contract = Contract(
            organisation_id=organisation,
            organisation_name=info.name,
            organisation_kind=info.kind,
            plan_id=plan.id,
            operations_email=email,
            created_at=now,
            updated_at=now,
        )
        session.add(contract)
        await session.flush()
    else:
        changed = contract.plan_id != plan.id
        contract.plan_id = plan.id
        contract.organisation_name = info.name
        contract.operations_email = email
        contract.updated_at = now
        if changed:
            tickets = await session.scalars(
                select(Ticket)
                .where(
                    Ticket.organisation_id == organisation,
                    Ticket.status.in_([s.value for s in ACTIVE_STATUSES]),
                )
                .order_by(Ticket.id)
                .with_for_update()
            )
            for ticket in tickets:
                ticket.plan_id = plan.id
                ticket.updated_at = now
                await _ticket_event(
                    session,
                    settings,
                    ticket,
                    kind=POLICY_CHANGE,
                    now=now,
                    actor_id=actor.subject if actor else "",
                    policy_changed=True,
                )
                moved += 1
    return contract, moved


async def get_contract(
    *, session: AsyncSession, actor: Principal | None, organisation_id: str
) -> tuple[Contract, PlanView]:
    """Operators read any contract; a customer reads their own organisation's."""
    actor = _user(actor)
    organisation = _uuid_or_raise("organisation_id", organisation_id)
    if not is_agent(actor) and organisation not in customer_organisations(actor):
        raise NotFound("contract not found")
    contract = await session.get(Contract, organisation)
    if contract is None:
        raise NotFound("contract not found")
    plan = await session.get(Plan, contract.plan_id)
    assert plan is not None
    return contract, await _plan_view(session, plan)


async def list_contracts(
    *, session: AsyncSession, actor: Principal | None, page_size: int, page_token: str
) -> Page[Contract]:
    _agent(actor)
    v = Validator()
    page = _parse_page(v, "contracts", page_size, page_token, [str, uuid.UUID])
    v.raise_if_any()
    query = select(Contract).order_by(Contract.organisation_name, Contract.organisation_id)
    if page.after is not None:
        query = query.where(
            tuple_(Contract.organisation_name, Contract.organisation_id) > tuple_(*page.after)
        )
    return await _fetch_page(
        session, query, page, "contracts", lambda c: (c.organisation_name, c.organisation_id)
    )


# --------------------------------------------------------------------------------------------
# Categories, answers, deflection
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaqInput:
    question: str
    answer: str


@dataclass(frozen=True)
class CategoryView:
    category: Category
    entries: list[FaqEntry]


def _check_entries(v: Validator, entries: Sequence[FaqInput]) -> None:
    for index, entry in enumerate(entries):
        _check_text(v, f"entries[{index}].question", entry.question, 500)
        _check_text(v, f"entries[{index}].answer", entry.answer, TEXT_MAX, lines=True)


def _audience(v: Validator, audience: str) -> Audience | None:
    if audience not in {a.value for a in Audience}:
        v.check(False, "audience", "must be customer or partner")
        return None
    return Audience(audience)


async def _category_view(session: AsyncSession, category: Category) -> CategoryView:
    entries = await session.scalars(
        select(FaqEntry).where(FaqEntry.category_id == category.id).order_by(FaqEntry.position)
    )
    return CategoryView(category, list(entries))


def _replace_entries(
    session: AsyncSession, category_id: uuid.UUID, entries: Sequence[FaqInput]
) -> None:
    for position, entry in enumerate(entries):
        session.add(
            FaqEntry(
                id=uuid.uuid4(),
                category_id=category_id,
                position=position,
                question=entry.question.strip(),
                answer=entry.answer.strip(),
            )
        )


async def create_category(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    code: str,
    name: str,
    audience: str,
    position: int,
    entries: Sequence[FaqInput],
) -> CategoryView:
    _admin(actor)
    v = Validator()
    v.require("code", code)
    v.check(not code or bool(_CODE.match(code)), "code", "must be 1 to 40 of A-Z a-z 0-9 _ -")
    _check_text(v, "name", name, 100)
    parsed = _audience(v, audience)
    _check_entries(v, entries)
    v.raise_if_any()
    assert parsed is not None
    category = Category(
        id=uuid.uuid4(),
        code=code,
        name=name.strip(),
        audience=parsed.value,
        position=position,
        created_at=now,
    )
    session.add(category)
    await _flush(
        session,
        {"uq_categories_code": AlreadyExists("code: is taken", violations=[("code", "is taken")])},
    )
    _replace_entries(session, category.id, entries)
    await session.flush()
    return await _category_view(session, category)


async def update_category(
    *,
    session: AsyncSession,
    actor: Principal | None,
    category_id: str,
    name: str,
    position: int,
    entries: Sequence[FaqInput],
) -> CategoryView:
    _admin(actor)
    category = await session.get(
        Category, _uuid_or_raise("category_id", category_id), with_for_update=True
    )
    if category is None:
        raise NotFound("category not found")
    v = Validator()
    _check_text(v, "name", name, 100)
    _check_entries(v, entries)
    v.raise_if_any()
    category.name = name.strip()
    category.position = position
    for entry in await session.scalars(select(FaqEntry).where(FaqEntry.category_id == category.id)):
        await session.delete(entry)
    await session.flush()
    _replace_entries(session, category.id, entries)
    await session.flush()
    return await _category_view(session, category)


async def list_categories(
    *, session: AsyncSession, actor: Principal | None, audience: str
) -> list[CategoryView]:
    """Answers are public to every signed-in user and internal caller; `audience` narrows."""
    if actor is None:
        raise Unauthenticated("authentication required")
    query = select(Category).order_by(Category.audience, Category.position, Category.name)
    if audience:
        v = Validator()
        parsed = _audience(v, audience)
        v.raise_if_any()
        assert parsed is not None
        query = query.where(Category.audience == parsed.value)
    return [await _category_view(session, c) for c in await session.scalars(query)]


async def view_category(
    *,
    session: AsyncSession,
    settings: SupportSettings,
    actor: Principal | None,
    now: datetime,
    category_id: str,
) -> tuple[CategoryView, FaqView]:
    """Shows a category's answers and records the view (one per user, category and window)."""
    actor = _user(actor)
    category = await session.get(Category, _uuid_or_raise("category_id", category_id))
    if category is None:
        raise NotFound("category not found")
    window = timedelta(seconds=settings.deflection_window_seconds)
    view = await session.scalar(
        select(FaqView)
        .where(
            FaqView.category_id == category.id,
            FaqView.user_id == actor.subject,
            FaqView.viewed_at > now - window,
            FaqView.ticket_id.is_(None),
        )
        .order_by(FaqView.viewed_at.desc())
        .limit(1)
    )
    if view is None:
        view = FaqView(
            id=uuid.uuid4(), category_id=category.id, user_id=actor.subject, viewed_at=now
        )
        session.add(view)
        await session.flush()
    return await _category_view(session, category), view


async def record_deflection(
    *, session: AsyncSession, actor: Principal | None, now: datetime, view_id: str
) -> FaqView:
    """ "This answered my question": the view counts as a deflection at once."""
    actor = _user(actor)
    view = await session.get(FaqView, _uuid_or_raise("view_id", view_id), with_for_update=True)
    if view is None or view.user_id != actor.subject:
        raise NotFound("view not found")
    if view.ticket_id is not None:
        raise FailedPrecondition(
            "a ticket was opened after this view: it deflected nothing", reason="ticket_opened"
        )
    if view.deflected_at is None:
        view.deflected_at = now
    return view


async def _consume_view(
    session: AsyncSession, actor: Principal, view_id: str, category_id: uuid.UUID, ticket: Ticket
) -> None:
    """The user read the answers and still opened a ticket: the view deflected nothing."""
    if not view_id.strip():
        return
    view = await session.get(FaqView, _uuid_or_raise("view_id", view_id), with_for_update=True)
    if view is None or view.user_id != actor.subject:
        raise InvalidArgument([("view_id", "is not a view of yours")])
    if view.category_id != category_id:
        raise InvalidArgument([("view_id", "is a view of another category")])
    view.ticket_id = ticket.id
    view.deflected_at = None


# --------------------------------------------------------------------------------------------
# SLA bookkeeping
# --------------------------------------------------------------------------------------------


async def policy_for(session: AsyncSession, ticket: Ticket) -> SlaPolicy:
    plan = await session.get(Plan, ticket.plan_id)
    assert plan is not None
    target = await session.get(PlanTarget, (plan.id, ticket.priority))
    assert target is not None, "a plan covers every priority"
    return SlaPolicy(
        plan_id=str(plan.id),
        priority=ticket.priority,
        first_response_seconds=target.first_response_minutes * 60,
        next_response_seconds=target.next_response_minutes * 60,
        resolution_seconds=target.resolution_minutes * 60,
        warning_percent=plan.warning_percent,
        calendar=await calendar_spec(session, plan.calendar_id),
    )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


async def _clock_rows(session: AsyncSession, ticket_id: uuid.UUID) -> list[SlaClock]:
    return list(
        await session.scalars(
            select(SlaClock)
            .where(SlaClock.ticket_id == ticket_id)
            .order_by(SlaClock.started_at, SlaClock.clock, SlaClock.cycle)
        )
    )


async def _pause_rows(session: AsyncSession, ticket_id: uuid.UUID) -> list[SlaPause]:
    return list(
        await session.scalars(
            select(SlaPause).where(SlaPause.ticket_id == ticket_id).order_by(SlaPause.started_at)
        )
    )


def _state_of(
    ticket: Ticket, policy: SlaPolicy, clocks: list[SlaClock], pauses: list[SlaPause]
) -> SlaState:
    return SlaState(
        status=ticket.status,
        policy=policy,
        clocks=[
            ClockState(
                clock=c.clock,
                cycle=c.cycle,
                started_at=c.started_at.isoformat(),
                stopped_at=_iso(c.stopped_at),
                warned=c.warned,
                breached=c.breached,
            )
            for c in clocks
        ],
        pauses=[PauseState(p.started_at.isoformat(), _iso(p.ended_at)) for p in pauses],
        last_seq=ticket.event_seq,
    )


def _event(
    session: AsyncSession,
    ticket: Ticket,
    kind: EventKind,
    at: datetime,
    *,
    clock: str | None = None,
    cycle: int | None = None,
    due: datetime | None = None,
    **detail: object,
) -> SlaEvent:
    event = SlaEvent(
        id=uuid.uuid4(),
        ticket_id=ticket.id,
        kind=kind.value,
        clock=clock,
        cycle=cycle,
        at=at,
        due_at=due,
        detail={key: str(value) for key, value in detail.items() if value is not None},
    )
    session.add(event)
    return event


async def _store_state(
    session: AsyncSession,
    ticket: Ticket,
    state: SlaState,
    clocks: list[SlaClock],
    pauses: list[SlaPause],
    *,
    now: datetime,
    actor_id: str,
) -> None:
    """Writes the clocks and pauses back, judges stopped clocks, refreshes the deadlines."""
    rows = {(c.clock, c.cycle): c for c in clocks}
    for clock in state.clocks:
        row = rows.get((clock.clock, clock.cycle))
        if row is None:
            row = SlaClock(
                ticket_id=ticket.id,
                clock=clock.clock,
                cycle=clock.cycle,
                started_at=_aware(clock.started_at),
                target_seconds=int(state.policy.target(clock.clock).total_seconds()),
                warned=False,
                breached=False,
            )
            session.add(row)
            rows[(clock.clock, clock.cycle)] = row
        if clock.stopped_at is not None and row.stopped_at is None:
            row.stopped_at = _aware(clock.stopped_at)
            used = elapsed(state, clock, row.stopped_at)
            row.target_seconds = int(state.policy.target(clock.clock).total_seconds())
            row.elapsed_seconds = int(used.total_seconds())
            row.met = used <= state.policy.target(clock.clock)
            row.warning_at = row.due_at = None
            if not row.met and not row.breached and ticket.status != Status.CANCELLED:
                # Stopped after its deadline before the workflow said so: the breach stands.
                row.breached = True
                _event(
                    session,
                    ticket,
                    EventKind.BREACH,
                    now,
                    clock=clock.clock,
                    cycle=clock.cycle,
                    recorded_by="service",
                )
        elif row.stopped_at is None:
            row.target_seconds = int(state.policy.target(clock.clock).total_seconds())
            row.warning_at, row.due_at = deadlines(state, clock)
    for index, pause in enumerate(state.pauses):
        if index >= len(pauses):
            session.add(
                SlaPause(
                    id=uuid.uuid4(),
                    ticket_id=ticket.id,
                    started_at=_aware(pause.started_at),
                    started_by=actor_id,
                )
            )
            _event(session, ticket, EventKind.PAUSE, _aware(pause.started_at), by=actor_id)
        elif pause.ended_at is not None and pauses[index].ended_at is None:
            pauses[index].ended_at = _aware(pause.ended_at)
            pauses[index].ended_by = actor_id
            _event(session, ticket, EventKind.RESUME, _aware(pause.ended_at), by=actor_id)
    running = [row for row in rows.values() if row.stopped_at is None]
    dues = [row.due_at for row in running if row.due_at is not None]
    ticket.next_due_at = min(dues) if dues else None
    ticket.at_risk = any(row.warned for row in running)
    ticket.breached = any(row.breached for row in rows.values())


async def _ticket_event(
    session: AsyncSession,
    settings: SupportSettings,
    ticket: Ticket,
    *,
    kind: str,
    now: datetime,
    actor_id: str,
    policy_changed: bool = False,
) -> None:
    """Moves the clocks for one event (ticket already updated and locked), records it for the
    workflow in the signal outbox."""
    policy = await policy_for(session, ticket)
    clocks = await _clock_rows(session, ticket.id)
    pauses = await _pause_rows(session, ticket.id)
    state = _state_of(ticket, policy, clocks, pauses)
    ticket.event_seq += 1
    event = TicketEvent(
        seq=ticket.event_seq,
        kind=kind,
        at=now.isoformat(),
        status=ticket.status,
        policy=policy if policy_changed else None,
    )
    apply_event(state, event)
    await _store_state(session, ticket, state, clocks, pauses, now=now, actor_id=actor_id)
    if policy_changed:
        _event(
            session, ticket, EventKind.RECOMPUTE, now, plan=policy.plan_id, priority=ticket.priority
        )
    session.add(
        SlaSignal(
            workflow_id=sla_workflow_id(str(ticket.id)),
            payload=asdict(event),
            created_at=now,
        )
    )


async def _start_sla(
    session: AsyncSession, settings: SupportSettings, ticket: Ticket, *, now: datetime
) -> None:
    """The ticket's clocks start, and its workflow is recorded for the outbox relay to start."""
    policy = await policy_for(session, ticket)
    state = opening_state(ticket.created_at.isoformat(), policy)
    await _store_state(session, ticket, state, [], [], now=now, actor_id=ticket.opened_by_id)
    await enqueue(
        session,
        outbox,
        workflow=SLA_WORKFLOW,
        workflow_id=sla_workflow_id(str(ticket.id)),
        argument=asdict(
            TicketSlaInput(
                ticket_id=str(ticket.id),
                organisation_id=str(ticket.organisation_id),
                opened_at=ticket.created_at.isoformat(),
                policy=policy,
            )
        ),
        task_queue=settings.temporal_task_queue,
        search_attributes={
            TICKET.name: str(ticket.id),
            TENANT.name: str(ticket.organisation_id),
        },
    )


# --------------------------------------------------------------------------------------------
# Opening tickets
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TicketInput:
    category_id: str
    title: str
    description: str
    screen_code: str
    example_record: str
    priority: str
    kind: str
    view_id: str
    organisation_id: str


async def _customer_contract(
    session: AsyncSession, actor: Principal, organisation_id: str, kind: OrganisationKind
) -> Contract:
    """The caller's organisation of that kind with a contract, where they hold the right role."""
    role = CUSTOMER_ROLE_BY_KIND[kind]
    own = {org for org in customer_organisations(actor) if role in actor.roles_in(str(org))}
    if organisation_id.strip():
        v = Validator()
        wanted = _parse_uuid(v, "organisation_id", organisation_id)
        v.raise_if_any()
        if wanted not in own:
            raise NotFound("organisation not found")
        own = {wanted} if wanted is not None else set()
    if not own:
        raise PermissionDenied(f"only a {role} may do this")
    contracts = list(
        await session.scalars(
            select(Contract).where(
                Contract.organisation_id.in_(own), Contract.organisation_kind == kind.value
            )
        )
    )
    if not contracts:
        raise FailedPrecondition(
            "your organisation has no support contract; ask the support team", reason="no_contract"
        )
    if len(contracts) > 1:
        raise InvalidArgument(
            [("organisation_id", "is required: you belong to several organisations")]
        )
    return contracts[0]


def _priority(v: Validator, raw: str, *, default: Priority | None = None) -> Priority | None:
    if not raw:
        if default is None:
            v.require("priority", raw)
        return default
    if raw not in {p.value for p in Priority}:
        v.check(False, "priority", "must be low, normal, high or urgent")
        return None
    return Priority(raw)


def _kind(v: Validator, raw: str, *, default: Kind | None = None) -> Kind | None:
    if not raw:
        if default is None:
            v.require("kind", raw)
        return default
    if raw not in {k.value for k in Kind}:
        v.check(False, "kind", "must be support or consulting")
        return None
    return Kind(raw)


async def _category_for(
    session: AsyncSession, v: Validator, raw: str, audience: Audience
) -> Category | None:
    category_id = _parse_uuid(v, "category_id", raw)
    if category_id is None:
        return None
    category = await session.get(Category, category_id)
    if category is None or category.audience != audience.value:
        v.check(False, "category_id", "is not a category of this form")
        return None
    return category


def _search_text(ticket: Ticket) -> str:
    return fold(
        " ".join([ticket.title, ticket.description, ticket.screen_code, ticket.example_record])
    )


async def open_ticket(
    *,
    session: AsyncSession,
    settings: SupportSettings,
    actor: Principal | None,
    now: datetime,
    form: TicketInput,
) -> Ticket:
    """The extranet form: every field required, each missing one named; the SLA starts."""
    actor = _user(actor)
    v = Validator()
    category = await _category_for(session, v, form.category_id, Audience.CUSTOMER)
    _check_text(v, "title", form.title, TITLE_MAX)
    _check_text(v, "description", form.description, TEXT_MAX, lines=True)
    v.require("screen_code", form.screen_code)
    v.check(
        not form.screen_code.strip() or bool(_SCREEN_CODE.match(form.screen_code.strip())),
        "screen_code",
        "must be 1 to 40 letters, digits, spaces, '.', '_' or '-' (e.g. ATW0001)",
    )
    _check_text(v, "example_record", form.example_record, EXAMPLE_MAX, lines=True)
    priority = _priority(v, form.priority, default=Priority.NORMAL)
    kind = _kind(v, form.kind, default=Kind.SUPPORT)
    v.raise_if_any()
    assert category is not None and priority is not None and kind is not None
    contract = await _customer_contract(
        session, actor, form.organisation_id, OrganisationKind.ERP_CUSTOMER
    )
    ticket = Ticket(
        id=uuid.uuid4(),
        organisation_id=contract.organisation_id,
        channel=Channel.EXTRANET.value,
        category_id=category.id,
        title=form.title.strip(),
        description=form.description.strip(),
        screen_code=form.screen_code.strip(),
        example_record=form.example_record.strip(),
        priority=priority.value,
        status=Status.OPEN.value,
        kind=kind.value,
        plan_id=contract.plan_id,
        opened_by_id=actor.subject,
        opened_by_name=actor.username,
        consulting_minutes=0,
        event_seq=0,
        at_risk=False,
        breached=False,
        created_at=now,
        updated_at=now,
    )
    ticket.search_text = _search_text(ticket)
    session.add(ticket)
    await session.flush()
    await _consume_view(session, actor, form.view_id, category.id, ticket)
    await _start_sla(session, settings, ticket, now=now)
    await session.refresh(ticket, ["number"])
    return ticket


def named_address(text: str) -> str | None:
    """The first e-mail address a message names, if any ("answer me at …")."""
    for match in _EMAIL_IN_TEXT.finditer(text):
        try:
            return validate_email(match.group(0), check_deliverability=False).normalized
        except EmailNotValidError:
            continue
    return None


async def send_partner_message(
    *,
    session: AsyncSession,
    settings: SupportSettings,
    actor: Principal | None,
    now: datetime,
    category_id: str,
    subject: str,
    body: str,
    reply_to_email: str,
    organisation_id: str,
    view_id: str,
    idempotency_key: str = "",
) -> Ticket:
    """A partner's message becomes a ticket; answers go to the address it names, else to the
    operations contact of the partner's contract.

    The partners service may send one on a store's behalf with its service token (a message
    recorded while support was away): it then names the store in `organisation_id`.

    With an `idempotency_key`, the organisation's ticket already opened with that key is returned
    as it is (no second ticket, SLA workflow or view consumed): the partners service sends its
    message id, so an opening retried after a lost answer, or raced by the partner's own request
    and the worker, ends with one ticket."""
    if actor is None:
        raise Unauthenticated("authentication required")
    v = Validator()
    if actor.is_service:
        v.require("organisation_id", organisation_id)
    category = await _category_for(session, v, category_id, Audience.PARTNER)
    _check_text(v, "subject", subject, TITLE_MAX)
    _check_text(v, "body", body, TEXT_MAX, lines=True)
    explicit = _email(v, "reply_to_email", reply_to_email)
    key = _idempotency_key(v, idempotency_key)
    v.raise_if_any()
    assert category is not None
    if actor.is_service:
        contract = await _service_contract(session, organisation_id)
    else:
        contract = await _customer_contract(
            session, actor, organisation_id, OrganisationKind.DELIVERY_PARTNER
        )
    if key is not None:
        # Before anything that may have changed since the first call (its reply-to address).
        opened = await _ticket_by_key(session, contract.organisation_id, key)
        if opened is not None:
            return opened
    reply_to = explicit or named_address(body) or contract.operations_email
    if reply_to is None:
        raise InvalidArgument(
            [("reply_to_email", "is required: no operations contact e-mail is on file")]
        )
    ticket = Ticket(
        id=uuid.uuid4(),
        organisation_id=contract.organisation_id,
        channel=Channel.PARTNER_MESSAGE.value,
        category_id=category.id,
        title=subject.strip(),
        description=body.strip(),
        screen_code="",
        example_record="",
        priority=Priority.NORMAL.value,
        status=Status.OPEN.value,
        kind=Kind.SUPPORT.value,
        plan_id=contract.plan_id,
        opened_by_id=actor.subject,
        opened_by_name=actor.username,
        reply_to_email=reply_to,
        consulting_minutes=0,
        event_seq=0,
        at_risk=False,
        breached=False,
        created_at=now,
        updated_at=now,
        idempotency_key=key,
    )
    ticket.search_text = _search_text(ticket)
    try:
        async with session.begin_nested():
            session.add(ticket)
            await session.flush()
    except IntegrityError as error:
        # A concurrent call with the same key committed first (this insert waited for it on the
        # unique index): its ticket is the answer, and this call changes nothing.
        if key is None or _KEY_INDEX not in _constraint(error):
            raise
        winner = await _ticket_by_key(session, contract.organisation_id, key)
        if winner is None:
            raise
        return winner
    if not actor.is_service:
        await _consume_view(session, actor, view_id, category.id, ticket)
    await _start_sla(session, settings, ticket, now=now)
    await session.refresh(ticket, ["number"])
    return ticket


_KEY_INDEX = "uq_tickets_idempotency_key"


def _idempotency_key(v: Validator, raw: str) -> str | None:
    """The caller's key as given (compared exactly); empty means none."""
    if not raw:
        return None
    field = "idempotency_key"
    v.check(
        len(raw) <= IDEMPOTENCY_KEY_MAX,
        field,
        f"must be at most {IDEMPOTENCY_KEY_MAX} characters",
    )
    v.check(raw.isprintable(), field, "must contain printable characters only")
    v.check(raw == raw.strip(), field, "must not start or end with spaces")
    return raw


async def _ticket_by_key(
    session: AsyncSession, organisation_id: uuid.UUID, key: str
) -> Ticket | None:
    return await session.scalar(
        select(Ticket).where(
            Ticket.organisation_id == organisation_id, Ticket.idempotency_key == key
        )
    )


async def _service_contract(session: AsyncSession, organisation_id: str) -> Contract:
    contract = await session.get(Contract, _uuid_or_raise("organisation_id", organisation_id))
    if contract is None or contract.organisation_kind != OrganisationKind.DELIVERY_PARTNER:
        raise FailedPrecondition(
            "this store has no support contract; ask the support team", reason="no_contract"
        )
    return contract


# --------------------------------------------------------------------------------------------
# Reading tickets
# --------------------------------------------------------------------------------------------


def _statuses(v: Validator, raw: Sequence[str], field: str = "statuses") -> list[str]:
    allowed = {s.value for s in Status}
    for index, status in enumerate(raw):
        v.check(status in allowed, f"{field}[{index}]", "is not a ticket status")
    return list(dict.fromkeys(raw))


def _search_clause(query: str) -> list[ColumnElement[bool]]:
    words = fold(query).split()
    clauses: list[ColumnElement[bool]] = []
    for word in words[:10]:
        number = _NUMBER.match(word)
        escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        text_match = Ticket.search_text.like(f"%{escaped}%", escape="\\")
        if number:
            clauses.append(or_(Ticket.number == int(number.group(1)), text_match))
        else:
            clauses.append(text_match)
    return clauses


async def list_tickets(
    *,
    session: AsyncSession,
    actor: Principal | None,
    statuses: Sequence[str],
    query: str,
    organisation_id: str,
    kind: str,
    page_size: int,
    page_token: str,
) -> Page[Ticket]:
    """Newest first. Customers see their organisations' tickets only; agents see all."""
    actor = _user(actor)
    v = Validator()
    wanted_statuses = _statuses(v, statuses)
    _check_text(v, "query", query, 200, required=False)
    organisation = _parse_uuid(v, "organisation_id", organisation_id, required=False)
    parsed_kind = _kind(v, kind, default=Kind.SUPPORT) if kind else None
    page = _parse_page(v, "tickets", page_size, page_token, [_aware, uuid.UUID])
    v.raise_if_any()
    select_tickets = select(Ticket).order_by(Ticket.created_at.desc(), Ticket.id.desc())
    if not is_agent(actor):
        own = customer_organisations(actor)
        if organisation is not None:
            # Another organisation's list is empty, as if it had no tickets.
            own = own & {organisation}
        select_tickets = select_tickets.where(Ticket.organisation_id.in_(own or [uuid.UUID(int=0)]))
    elif organisation is not None:
        select_tickets = select_tickets.where(Ticket.organisation_id == organisation)
    if wanted_statuses:
        select_tickets = select_tickets.where(Ticket.status.in_(wanted_statuses))
    if parsed_kind is not None:
        select_tickets = select_tickets.where(Ticket.kind == parsed_kind.value)
    select_tickets = select_tickets.where(*_search_clause(query))
    if page.after is not None:
        select_tickets = select_tickets.where(
            tuple_(Ticket.created_at, Ticket.id) < tuple_(*page.after)
        )
    return await _fetch_page(
        session, select_tickets, page, "tickets", lambda t: (t.created_at.isoformat(), t.id)
    )


_FAR_FUTURE = "9999-12-31T00:00:00+00:00"


async def list_queue(
    *,
    session: AsyncSession,
    actor: Principal | None,
    statuses: Sequence[str],
    page_size: int,
    page_token: str,
) -> Page[Ticket]:
    """Unfinished tickets of every company, the nearest deadline first (paused ones last)."""
    _agent(actor)
    v = Validator()
    wanted = _statuses(v, statuses) or [s.value for s in ACTIVE_STATUSES]
    page = _parse_page(v, "queue", page_size, page_token, [_aware, uuid.UUID])
    v.raise_if_any()
    due = func.coalesce(Ticket.next_due_at, literal(_aware(_FAR_FUTURE)))
    query = select(Ticket).where(Ticket.status.in_(wanted)).order_by(due, Ticket.id)
    if page.after is not None:
        query = query.where(tuple_(due, Ticket.id) > tuple_(*page.after))
    return await _fetch_page(
        session,
        query,
        page,
        "queue",
        lambda t: ((t.next_due_at or _aware(_FAR_FUTURE)).isoformat(), t.id),
    )


@dataclass(frozen=True)
class TicketHistory:
    ticket: Ticket
    messages: list[Message]
    attachments: list[Attachment]
    clocks: list[SlaClock]
    events: list[SlaEvent]
    pauses: list[SlaPause]
    consulting: list[ConsultingEntry]


async def get_ticket(
    *, session: AsyncSession, actor: Principal | None, ticket_id: str
) -> TicketHistory:
    ticket, _ = await _ticket_for(session, actor, ticket_id)
    messages = await session.scalars(
        select(Message)
        .where(Message.ticket_id == ticket.id)
        .order_by(Message.created_at, Message.seq)
    )
    attachments = await session.scalars(
        select(Attachment)
        .where(Attachment.ticket_id == ticket.id)
        .order_by(Attachment.created_at, Attachment.id)
    )
    events = await session.scalars(
        select(SlaEvent).where(SlaEvent.ticket_id == ticket.id).order_by(SlaEvent.at, SlaEvent.seq)
    )
    consulting = await session.scalars(
        select(ConsultingEntry)
        .where(ConsultingEntry.ticket_id == ticket.id)
        .order_by(ConsultingEntry.created_at)
    )
    return TicketHistory(
        ticket=ticket,
        messages=list(messages),
        attachments=list(attachments),
        clocks=await _clock_rows(session, ticket.id),
        events=list(events),
        pauses=await _pause_rows(session, ticket.id),
        consulting=list(consulting),
    )


async def category_names(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = await session.execute(select(Category.id, Category.name).where(Category.id.in_(ids)))
    return {row.id: row.name for row in rows}


async def organisation_names(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = await session.execute(
        select(Contract.organisation_id, Contract.organisation_name).where(
            Contract.organisation_id.in_(ids)
        )
    )
    return {row.organisation_id: row.organisation_name for row in rows}


# --------------------------------------------------------------------------------------------
# Changing tickets
# --------------------------------------------------------------------------------------------


def _transition(ticket: Ticket, target: Status) -> None:
    current = Status(ticket.status)
    if target not in TRANSITIONS[current]:
        raise FailedPrecondition(
            f"a ticket cannot go from {current.value} to {target.value}",
            reason="transition_not_allowed",
            violations=[("status", f"{current.value} → {target.value} is not allowed")],
        )
    ticket.status = target.value


def _close_if_final(ticket: Ticket, now: datetime) -> None:
    if ticket.status in (Status.FINISHED, Status.CANCELLED):
        ticket.closed_at = now


CustomerAddress = Callable[[str], Awaitable[str | None]]
"""A user's e-mail address to write to (verified, account active), by user id, read from identity
by the servicer; None when there is none."""


async def _mail_answer(
    session: AsyncSession,
    settings: SupportSettings,
    ticket: Ticket,
    message: Message,
    customer_address: CustomerAddress | None,
) -> None:
    """Every agent reply is mailed to the customer, in the reply's transaction (outbox →
    DeliverMail, body sealed). A partner's message goes to the reply-to chosen when it came; an
    extranet ticket to the verified address of the user who opened it, read now (it may have
    changed since), and to nobody when there is none (they follow the ticket in the extranet)."""
    if ticket.channel == Channel.PARTNER_MESSAGE:
        if not ticket.reply_to_email:
            return
        to = ticket.reply_to_email
        body = (
            f"Bonjour,\n\n{message.body}\n\n"
            f"— {message.author_name}, support Guichet\n"
            f"(Demande #{ticket.number}; répondez dans l'interface partenaire, Compte > Aide.)\n"
        )
    else:
        address = await customer_address(ticket.opened_by_id) if customer_address else None
        if not address:
            return
        to = address
        body = (
            f"Bonjour {ticket.opened_by_name},\n\n"
            f"Le support a répondu à votre demande #{ticket.number} « {ticket.title} » "
            f"(statut : {ticket.status}).\n\n{message.body}\n\n"
            f"— {message.author_name}, support Guichet\n"
            f"(Pour répondre, ouvrez la demande dans l'Extranet, Liste des demandes.)\n"
        )
    await enqueue_mail(
        session,
        outbox,
        mail_id=str(message.id),
        to=[to],
        subject=f"[Guichet #{ticket.number}] Re: {ticket.title}",
        body=body,
        sealing_key=settings.mail_sealing_key,
        task_queue=settings.temporal_task_queue,
    )


async def reply(
    *,
    session: AsyncSession,
    settings: SupportSettings,
    actor: Principal | None,
    now: datetime,
    ticket_id: str,
    body: str,
    set_status: str,
    customer_address: CustomerAddress | None = None,
) -> tuple[Ticket, Message]:
    """Adds a message. An agent's first reply takes an open ticket in progress (or to the status
    given), and is mailed to the customer; a customer's reply on a ticket waiting on them takes
    it back in progress."""
    ticket, side = await _ticket_for(session, actor, ticket_id, lock=True)
    assert actor is not None
    v = Validator()
    _check_text(v, "body", body, TEXT_MAX, lines=True)
    target: Status | None = None
    if set_status:
        if side != Side.AGENT:
            v.check(False, "set_status", "only the support team sets a status with a reply")
        elif set_status not in {s.value for s in Status}:
            v.check(False, "set_status", "is not a ticket status")
        else:
            target = Status(set_status)
    v.raise_if_any()
    if ticket.status in (Status.FINISHED, Status.CANCELLED):
        raise FailedPrecondition(
            f"the ticket is {ticket.status}: open a new ticket", reason="ticket_closed"
        )
    if side == Side.AGENT:
        if target is None and ticket.status == Status.OPEN:
            target = Status.IN_PROGRESS
        if ticket.first_response_at is None:
            ticket.first_response_at = now
    elif ticket.status == Status.WAITING_ON_CUSTOMER:
        target = Status.IN_PROGRESS
    if target is not None and target != Status(ticket.status):
        _transition(ticket, target)
        _close_if_final(ticket, now)
    message = Message(
        id=uuid.uuid4(),
        ticket_id=ticket.id,
        author_id=actor.subject,
        author_name=actor.username,
        side=side.value,
        body=body.strip(),
        created_at=now,
    )
    session.add(message)
    ticket.updated_at = now
    await session.flush()
    await _ticket_event(
        session,
        settings,
        ticket,
        kind=AGENT_REPLY if side == Side.AGENT else CUSTOMER_REPLY,
        now=now,
        actor_id=actor.subject,
    )
    if side == Side.AGENT:
        await _mail_answer(session, settings, ticket, message, customer_address)
    return ticket, message


async def change_status(
    *,
    session: AsyncSession,
    settings: SupportSettings,
    actor: Principal | None,
    now: datetime,
    ticket_id: str,
    status: str,
    reason: str,
) -> Ticket:
    """Agents move tickets along the allowed transitions; a customer may only cancel theirs."""
    ticket, side = await _ticket_for(session, actor, ticket_id, lock=True)
    assert actor is not None
    v = Validator()
    v.require("status", status)
    v.check(not status or status in {s.value for s in Status}, "status", "is not a ticket status")
    _check_text(v, "reason", reason, NOTE_MAX, required=False, lines=True)
    v.raise_if_any()
    target = Status(status)
    if side == Side.CUSTOMER and target != Status.CANCELLED:
        raise PermissionDenied("a customer may only cancel a ticket; the support team moves it")
    _transition(ticket, target)
    _close_if_final(ticket, now)
    ticket.updated_at = now
    await _ticket_event(
        session, settings, ticket, kind=STATUS_CHANGE, now=now, actor_id=actor.subject
    )
    return ticket


async def change_priority(
    *,
    session: AsyncSession,
    settings: SupportSettings,
    actor: Principal | None,
    now: datetime,
    ticket_id: str,
    priority: str,
) -> Ticket:
    _agent(actor)
    ticket, _ = await _ticket_for(session, actor, ticket_id, lock=True)
    assert actor is not None
    v = Validator()
    parsed = _priority(v, priority)
    v.raise_if_any()
    assert parsed is not None
    _require_active(ticket)
    if ticket.priority != parsed.value:
        ticket.priority = parsed.value
        ticket.updated_at = now
        await _ticket_event(
            session,
            settings,
            ticket,
            kind=POLICY_CHANGE,
            now=now,
            actor_id=actor.subject,
            policy_changed=True,
        )
    return ticket


def _require_active(ticket: Ticket) -> None:
    if ticket.status in (Status.FINISHED, Status.CANCELLED):
        raise FailedPrecondition(f"the ticket is {ticket.status}", reason="ticket_closed")


async def classify(
    *, session: AsyncSession, actor: Principal | None, now: datetime, ticket_id: str, kind: str
) -> Ticket:
    """Support or consulting is the team's call (consulting is billable)."""
    _agent(actor)
    ticket, _ = await _ticket_for(session, actor, ticket_id, lock=True)
    v = Validator()
    parsed = _kind(v, kind)
    v.raise_if_any()
    assert parsed is not None
    if parsed == Kind.SUPPORT and ticket.consulting_minutes:
        raise FailedPrecondition(
            "consulting time is logged on this ticket: it stays consulting",
            reason="consulting_logged",
        )
    ticket.kind = parsed.value
    ticket.updated_at = now
    return ticket


async def log_consulting_time(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    ticket_id: str,
    minutes: int,
    note: str,
) -> tuple[Ticket, ConsultingEntry]:
    _agent(actor)
    ticket, _ = await _ticket_for(session, actor, ticket_id, lock=True)
    assert actor is not None
    v = Validator()
    v.check(
        0 < minutes <= MAX_CONSULTING_MINUTES,
        "minutes",
        f"must be between 1 and {MAX_CONSULTING_MINUTES}",
    )
    _check_text(v, "note", note, NOTE_MAX, required=False, lines=True)
    v.raise_if_any()
    if ticket.kind != Kind.CONSULTING:
        raise FailedPrecondition(
            "time is logged on consulting tickets only; classify the ticket first",
            reason="not_consulting",
        )
    entry = ConsultingEntry(
        id=uuid.uuid4(),
        ticket_id=ticket.id,
        minutes=minutes,
        note=note.strip(),
        agent_id=actor.subject,
        created_at=now,
    )
    session.add(entry)
    ticket.consulting_minutes += minutes
    ticket.updated_at = now
    return ticket, entry


# --------------------------------------------------------------------------------------------
# Attachments
# --------------------------------------------------------------------------------------------


def clean_filename(raw: str) -> str:
    """The last path component, without control characters: never a path on anyone's disk."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    return re.sub(r"[\x00-\x1f\x7f]", "", name).strip()


async def add_attachment(
    *,
    session: AsyncSession,
    settings: SupportSettings,
    actor: Principal | None,
    now: datetime,
    ticket_id: str,
    filename: str,
    content_type: str,
    content: bytes,
) -> Attachment:
    ticket, _ = await _ticket_for(session, actor, ticket_id, lock=True)
    assert actor is not None
    v = Validator()
    name = clean_filename(filename)
    v.require("filename", name)
    v.check(len(name) <= FILENAME_MAX, "filename", f"must be at most {FILENAME_MAX} characters")
    media = content_type.split(";", 1)[0].strip().lower()
    v.require("content_type", media)
    if media and media not in settings.allowed_attachment_types:
        allowed = ", ".join(sorted(settings.allowed_attachment_types))
        v.check(False, "content_type", f"is not accepted; accepted: {allowed}")
    v.check(len(content) > 0, "content", "is empty")
    v.check(
        len(content) <= settings.attachment_max_bytes,
        "content",
        f"is larger than {settings.attachment_max_bytes} bytes",
    )
    magic = _MAGIC.get(media)
    if magic is not None and content and not content.startswith(magic):
        v.check(False, "content", f"is not a {media} file")
    v.raise_if_any()
    _require_active(ticket)
    attachment = Attachment(
        id=uuid.uuid4(),
        ticket_id=ticket.id,
        filename=name,
        content_type=media,
        size_bytes=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        content=content,
        uploaded_by_id=actor.subject,
        created_at=now,
    )
    session.add(attachment)
    ticket.updated_at = now
    return attachment


async def get_attachment(
    *, session: AsyncSession, actor: Principal | None, attachment_id: str
) -> Attachment:
    actor = _user(actor)
    attachment = await session.get(Attachment, _uuid_or_raise("attachment_id", attachment_id))
    if attachment is None:
        raise NotFound("attachment not found")
    ticket = await session.get(Ticket, attachment.ticket_id)
    assert ticket is not None
    try:
        _side(actor, ticket)
    except NotFound:
        raise NotFound("attachment not found") from None
    return attachment


# --------------------------------------------------------------------------------------------
# SLA events from the workflow
# --------------------------------------------------------------------------------------------


async def record_sla_event(
    *,
    session: AsyncSession,
    settings: SupportSettings,
    actor: Principal | None,
    now: datetime,
    ticket_id: str,
    kind: str,
    clock: str,
    cycle: int,
    due_at: datetime | None,
) -> tuple[bool, SlaEvent | None]:
    """Records a warning or breach once; a breach is escalated: the team is mailed and the
    priority raised one step. Nothing is recorded for a clock that stopped in time."""
    if actor is None:
        raise Unauthenticated("authentication required")
    if not actor.is_service:
        raise PermissionDenied("only the SLA workflow records SLA events")
    v = Validator()
    v.check(kind in (EventKind.WARNING, EventKind.BREACH), "kind", "must be warning or breach")
    v.check(clock in {c.value for c in Clock}, "clock", "is not an SLA clock")
    v.check(cycle > 0, "cycle", "must be positive")
    v.check(due_at is not None, "due_time", "is required")
    v.raise_if_any()
    assert due_at is not None
    ticket = await session.get(Ticket, _uuid_or_raise("ticket_id", ticket_id), with_for_update=True)
    if ticket is None:
        raise NotFound("ticket not found")
    row = await session.get(SlaClock, (ticket.id, clock, cycle), with_for_update=True)
    if row is None:
        raise NotFound("no such clock on this ticket")
    if row.stopped_at is not None and row.stopped_at <= due_at:
        return False, None
    if (kind == EventKind.WARNING and row.warned) or (kind == EventKind.BREACH and row.breached):
        existing = await session.scalar(
            select(SlaEvent).where(
                SlaEvent.ticket_id == ticket.id,
                SlaEvent.kind == kind,
                SlaEvent.clock == clock,
                SlaEvent.cycle == cycle,
            )
        )
        return False, existing
    row.warned = True
    if kind == EventKind.WARNING:
        event = _event(
            session, ticket, EventKind.WARNING, now, clock=clock, cycle=cycle, due=due_at
        )
        ticket.at_risk = row.stopped_at is None or ticket.at_risk
        return True, event
    row.breached = True
    ticket.breached = True
    before = ticket.priority
    index = PRIORITY_ORDER.index(Priority(before))
    raised = PRIORITY_ORDER[min(index + 1, len(PRIORITY_ORDER) - 1)].value
    event = _event(
        session,
        ticket,
        EventKind.BREACH,
        now,
        clock=clock,
        cycle=cycle,
        due=due_at,
        priority_from=before,
        priority_to=raised,
    )
    if raised != before and ticket.status not in (Status.FINISHED, Status.CANCELLED):
        ticket.priority = raised
        ticket.updated_at = now
        await _ticket_event(
            session,
            settings,
            ticket,
            kind=POLICY_CHANGE,
            now=now,
            actor_id=actor.subject,
            policy_changed=True,
        )
    await enqueue_mail(
        session,
        outbox,
        mail_id=str(event.id),
        to=[settings.support_team_email],
        subject=f"[SLA] Ticket #{ticket.number}: {clock.replace('_', ' ')} breached",
        body=(
            f"Ticket #{ticket.number} « {ticket.title} » breached its {clock.replace('_', ' ')} "
            f"target (due {due_at.isoformat()}).\n"
            f"Priority: {before} → {raised}. Status: {ticket.status}.\n"
        ),
        sealing_key=settings.mail_sealing_key,
        task_queue=settings.temporal_task_queue,
    )
    return True, event


# --------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetFigures:
    clock: str
    measured: int
    within: int
    breached: int

    @property
    def within_percent(self) -> float:
        return 100.0 if self.measured == 0 else round(100.0 * self.within / self.measured, 2)


@dataclass(frozen=True)
class PlanFigures:
    plan: Plan
    tickets_opened: int
    targets: list[TargetFigures]
    breaches: int
    warnings: int


@dataclass(frozen=True)
class DeflectionFigures:
    category: Category
    views: int
    deflections: int
    tickets: int


@dataclass(frozen=True)
class ConsultingFigures:
    organisation_id: uuid.UUID
    organisation_name: str
    plan_id: uuid.UUID
    tickets: int
    minutes: int


@dataclass(frozen=True)
class SlaReport:
    plans: list[PlanFigures]
    deflections: list[DeflectionFigures]
    consulting: list[ConsultingFigures]


async def sla_report(
    *,
    session: AsyncSession,
    settings: SupportSettings,
    actor: Principal | None,
    now: datetime,
    plan_id: str,
    period_start: datetime | None,
    period_end: datetime | None,
) -> SlaReport:
    """Tickets opened in [start, end): per plan and target, the clocks with an outcome and how
    many kept their promise (cancelled tickets are not measured); views and deflections per
    category in the period; consulting minutes logged in the period, per organisation."""
    _agent(actor)
    v = Validator()
    plan_filter = _parse_uuid(v, "plan_id", plan_id, required=False)
    v.check(period_start is not None, "period_start", "is required")
    v.check(period_end is not None, "period_end", "is required")
    if period_start is not None and period_end is not None:
        v.check(period_end > period_start, "period_end", "must be after period_start")
    v.raise_if_any()
    assert period_start is not None and period_end is not None
    plans_query = select(Plan).order_by(Plan.code)
    if plan_filter is not None:
        plans_query = plans_query.where(Plan.id == plan_filter)
    plans = list(await session.scalars(plans_query))
    if plan_filter is not None and not plans:
        raise NotFound("plan not found")
    in_period = and_(Ticket.created_at >= period_start, Ticket.created_at < period_end)
    figures: list[PlanFigures] = []
    for plan in plans:
        opened = await session.scalar(
            select(func.count()).select_from(Ticket).where(Ticket.plan_id == plan.id, in_period)
        )
        stopped_late = and_(SlaClock.stopped_at.is_not(None), SlaClock.met.is_(False))
        rows = await session.execute(
            select(
                SlaClock.clock,
                func.count().filter(or_(SlaClock.stopped_at.is_not(None), SlaClock.breached)),
                func.count().filter(SlaClock.stopped_at.is_not(None), SlaClock.met.is_(True)),
                func.count().filter(or_(SlaClock.breached, stopped_late)),
            )
            .join(Ticket, Ticket.id == SlaClock.ticket_id)
            .where(Ticket.plan_id == plan.id, in_period, Ticket.status != Status.CANCELLED.value)
            .group_by(SlaClock.clock)
        )
        by_clock = {row[0]: row for row in rows}
        targets = [
            TargetFigures(
                clock=clock.value,
                measured=int(by_clock[clock.value][1]) if clock.value in by_clock else 0,
                within=int(by_clock[clock.value][2]) if clock.value in by_clock else 0,
                breached=int(by_clock[clock.value][3]) if clock.value in by_clock else 0,
            )
            for clock in Clock
        ]
        counts = await session.execute(
            select(
                func.count().filter(SlaEvent.kind == EventKind.BREACH.value),
                func.count().filter(SlaEvent.kind == EventKind.WARNING.value),
            )
            .select_from(SlaEvent)
            .join(Ticket, Ticket.id == SlaEvent.ticket_id)
            .where(Ticket.plan_id == plan.id, in_period)
        )
        breaches, warnings = counts.one()
        figures.append(PlanFigures(plan, int(opened or 0), targets, int(breaches), int(warnings)))
    window = timedelta(seconds=settings.deflection_window_seconds)
    deflected = and_(
        FaqView.ticket_id.is_(None),
        or_(FaqView.deflected_at.is_not(None), FaqView.viewed_at <= now - window),
    )
    view_rows = await session.execute(
        select(
            Category,
            func.count(FaqView.id),
            func.count(FaqView.id).filter(deflected),
            func.count(FaqView.id).filter(FaqView.ticket_id.is_not(None)),
        )
        .outerjoin(
            FaqView,
            and_(
                FaqView.category_id == Category.id,
                FaqView.viewed_at >= period_start,
                FaqView.viewed_at < period_end,
            ),
        )
        .group_by(Category.id)
        .order_by(Category.audience, Category.position, Category.name)
    )
    deflections = [
        DeflectionFigures(row[0], int(row[1]), int(row[2]), int(row[3])) for row in view_rows
    ]
    consulting_query = (
        select(
            Ticket.organisation_id,
            func.coalesce(func.max(Contract.organisation_name), ""),
            Ticket.plan_id,
            func.count(func.distinct(Ticket.id)),
            func.sum(ConsultingEntry.minutes),
        )
        .join(Ticket, Ticket.id == ConsultingEntry.ticket_id)
        .outerjoin(Contract, Contract.organisation_id == Ticket.organisation_id)
        .where(ConsultingEntry.created_at >= period_start, ConsultingEntry.created_at < period_end)
        .group_by(Ticket.organisation_id, Ticket.plan_id)
        .order_by(func.sum(ConsultingEntry.minutes).desc(), Ticket.organisation_id)
    )
    if plan_filter is not None:
        consulting_query = consulting_query.where(Ticket.plan_id == plan_filter)
    consulting = [
        ConsultingFigures(row[0], str(row[1]), row[2], int(row[3]), int(row[4] or 0))
        for row in await session.execute(consulting_query)
    ]
    return SlaReport(figures, deflections, consulting)
