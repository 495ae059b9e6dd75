"""Membership's rules: banner programs, workshop memberships and their yearly renewal window,
option-change requests, technicians and courses, warranty claims; association members and fees,
trainings and registrations, coverage requests, client records, duplicates, merges, deletions.

Every function takes the caller's session keyword-only and never commits: the servicer owns the
transaction, so a refused request leaves nothing half-written. Time comes in as `now` (UTC; dates
are UTC calendar dates). The caller is `actor`: the verified principal, or None on the three
public calls. A tenant asking about another tenant's data gets NOT_FOUND, never a hint that it
exists; someone of the right tenant without the right role gets PERMISSION_DENIED.
"""

from __future__ import annotations

import calendar
import re
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol, TypeVar, cast

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import ColumnElement, Select, and_, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import CursorResult
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
    keyset_after as _after,
    page_token as _page_token,
    parse_page as _parse_page,
)
from services.kit.temporal import MEMBERSHIP
from services.membership import duplicates as dup
from services.membership.models import (
    AssociationMember,
    ClaimEvent,
    ClaimStatus,
    ClientRecord,
    ClientRecordAudit,
    CourseRegistration,
    CourseRegistrationStatus,
    CoverageRequest,
    FeePayment,
    MembershipOption,
    MembershipStatus,
    OptionChange,
    OptionChangeRequest,
    OptionChangeStatus,
    Program,
    ProgramOption,
    RegistrationStatus,
    RenewalLetter,
    RenewalSignal,
    RequestChannel,
    Technician,
    Training,
    TrainingCourse,
    TrainingRegistration,
    WarrantyClaim,
    WorkshopMembership,
    outbox,
)
from services.membership.normalise import (
    MAX_EXTRA_WORDS,
    clean,
    contained_keys,
    fold,
    name_keys,
    normalise_siret,
)
from services.membership.settings import MembershipSettings

T = TypeVar("T")

# ------------------------------------------------------------------------------------------------
# Roles and constants
# ------------------------------------------------------------------------------------------------

OPS_ADMIN = "ops_admin"
SUPPORT_AGENT = "support_agent"
WORKSHOP_OWNER = "workshop_owner"
ASSOCIATION_ADMIN = "association_admin"
WORKSHOP_KIND = "workshop"
ASSOCIATION_KIND = "association"

RENEWAL_WORKFLOW = "Renewal"
MAX_IMPORT = 10_000
MAX_OPTIONS = 50
DELETE_CONFIRMATIONS = frozenset({"SUPPRIMER", "DELETE"})

_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,31}$")
_VIN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")
_PHONE = re.compile(r"^\+?[0-9 ().-]{6,32}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SIMPLE_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# Namespace of the deterministic ids of anniversary-letter mails (one per membership, renewal
# date and recipient), so a retried send can never mail twice.
_LETTER_MAILS = uuid.UUID("0b3f6a52-9d0e-4c63-8a9e-5d1f2c7e4b10")


def renewal_workflow_id(membership_id: uuid.UUID | str) -> str:
    return f"renewal/{membership_id}"


def add_years(day: date, years: int) -> date:
    """The same day `years` later; 29 February becomes 28 February in a common year."""
    year = day.year + years
    last = calendar.monthrange(year, day.month)[1]
    return day.replace(year=year, day=min(day.day, last))


# ------------------------------------------------------------------------------------------------
# Input checks
# ------------------------------------------------------------------------------------------------


def _text(v: Validator, field: str, value: str, *, limit: int = 200, required: bool = True) -> str:
    value = clean(value)
    if required:
        v.require(field, value)
    v.check(len(value) <= limit, field, f"must be at most {limit} characters")
    v.check(not _CONTROL.search(value), field, "must not contain control characters")
    return value


def _long_text(v: Validator, field: str, value: str, *, limit: int, required: bool) -> str:
    value = value.strip()
    if required:
        v.require(field, value)
    v.check(len(value) <= limit, field, f"must be at most {limit} characters")
    v.check("\x00" not in value, field, "must not contain NUL characters")
    return value


def _email(v: Validator, field: str, raw: str, *, required: bool = True) -> str:
    if not raw.strip():
        if required:
            v.require(field, raw)
        return ""
    try:
        email = validate_email(raw.strip(), check_deliverability=False).normalized
    except EmailNotValidError as error:
        v.check(False, field, f"is not a valid e-mail address: {error}")
        return ""
    v.check(len(email) <= 320, field, "must be at most 320 characters")
    return email


def _phone(v: Validator, field: str, raw: str) -> str:
    value = raw.strip()
    v.check(not value or bool(_PHONE.match(value)), field, "is not a phone number")
    return value


def _uuid(v: Validator, field: str, raw: str, *, required: bool = True) -> uuid.UUID | None:
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
    v = Validator()
    parsed = _uuid(v, field, raw)
    v.raise_if_any()
    assert parsed is not None
    return parsed


def _date(v: Validator, field: str, raw: str, *, required: bool = True) -> date | None:
    if not raw.strip():
        if required:
            v.require(field, raw)
        return None
    try:
        if not _ISO_DATE.match(raw.strip()):
            raise ValueError(raw)
        return date.fromisoformat(raw.strip())
    except ValueError:
        v.check(False, field, "must be a date, YYYY-MM-DD")
        return None


def _code(v: Validator, field: str, raw: str) -> str:
    value = raw.strip().upper()
    v.require(field, value)
    if value:
        v.check(bool(_CODE.match(value)), field, "must be 1 to 32 letters, digits, '_' or '-'")
    return value


def _siret(v: Validator, field: str, raw: str) -> str | None:
    if not raw.strip():
        return None
    try:
        return normalise_siret(raw)
    except ValueError as error:
        v.check(False, field, str(error))
        return None


def _constraint(error: IntegrityError) -> str:
    """The violated constraint's name, from asyncpg's exception under SQLAlchemy's wrapper."""
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


def _taken(field: str, description: str) -> AlreadyExists:
    return AlreadyExists(f"{field}: {description}", violations=[(field, description)])


# ------------------------------------------------------------------------------------------------
# Pagination (keyset; the token names the list and carries the last sort key)
# ------------------------------------------------------------------------------------------------


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


def _moment(raw: str) -> datetime:
    parsed = datetime.fromisoformat(raw)
    if parsed.tzinfo is None:
        raise ValueError(raw)
    return parsed


# ------------------------------------------------------------------------------------------------
# Who may do what
# ------------------------------------------------------------------------------------------------


def _require(actor: Principal | None) -> Principal:
    if actor is None:
        raise Unauthenticated("authentication required")
    return actor


def _require_user(actor: Principal | None) -> Principal:
    actor = _require(actor)
    if actor.is_service:
        raise PermissionDenied("this call is for signed-in users, not services")
    return actor


def _require_service(actor: Principal | None) -> Principal:
    actor = _require(actor)
    if not actor.is_service:
        raise PermissionDenied("this call is internal: services only")
    return actor


def is_operator(actor: Principal | None) -> bool:
    """The program team: ops_admin and support_agent run the banner program."""
    return (
        actor is not None and not actor.is_service and actor.has_any_role(OPS_ADMIN, SUPPORT_AGENT)
    )


def is_ops_admin(actor: Principal | None) -> bool:
    return actor is not None and not actor.is_service and actor.has_any_role(OPS_ADMIN)


def _require_operator(actor: Principal | None) -> Principal:
    actor = _require_user(actor)
    if not is_operator(actor):
        raise PermissionDenied("only the program team (operators) may do this")
    return actor


def _is_workshop_owner(actor: Principal, workshop_id: uuid.UUID) -> bool:
    return not actor.is_service and actor.has_role(str(workshop_id), WORKSHOP_OWNER)


def _workshop_party(actor: Principal | None, workshop_id: uuid.UUID) -> str:
    """ "operator" or "workshop"; anyone else learns nothing about the workshop."""
    actor = _require_user(actor)
    if is_operator(actor):
        return "operator"
    if _is_workshop_owner(actor, workshop_id):
        return "workshop"
    raise NotFound("workshop not found")


def _operator_on_workshop(actor: Principal | None, workshop_id: uuid.UUID, what: str) -> Principal:
    """Operators only; the workshop itself is told why it may not."""
    actor = _require_user(actor)
    if is_operator(actor):
        return actor
    if _is_workshop_owner(actor, workshop_id):
        raise PermissionDenied(f"a workshop cannot {what} itself: write to the program team")
    raise NotFound("workshop not found")


def _require_association_admin(actor: Principal | None, association_id: uuid.UUID) -> Principal:
    actor = _require_user(actor)
    if actor.has_role(str(association_id), ASSOCIATION_ADMIN) or is_ops_admin(actor):
        return actor
    if actor.roles_in(str(association_id)) or is_operator(actor):
        raise PermissionDenied("only an administrator of the association may do this")
    raise NotFound("association not found")


def actor_id(actor: Principal | None) -> str:
    if actor is None:
        return "anonymous"
    return f"svc:{actor.subject}" if actor.is_service else actor.subject


@dataclass(frozen=True)
class OrganisationInfo:
    id: uuid.UUID
    kind: str
    name: str


class Directory(Protocol):
    """Identity's organisations, as membership needs them (kind and name)."""

    async def organisation(self, organisation_id: uuid.UUID) -> OrganisationInfo | None: ...


# ------------------------------------------------------------------------------------------------
# Mail
# ------------------------------------------------------------------------------------------------


async def _mail(
    session: AsyncSession,
    settings: MembershipSettings,
    *,
    to: str,
    subject: str,
    body: str,
    mail_id: uuid.UUID | None = None,
) -> None:
    await enqueue_mail(
        session,
        outbox,
        mail_id=str(mail_id or uuid.uuid4()),
        to=[to],
        subject=subject,
        body=body,
        sealing_key=settings.mail_sealing_key,
        task_queue=settings.temporal_task_queue,
    )


# ================================================================================================
# Banner programs
# ================================================================================================


@dataclass(frozen=True)
class ProgramView:
    program: Program
    options: list[ProgramOption]


async def _options_of(
    session: AsyncSession, program_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[ProgramOption]]:
    ids = list(set(program_ids))
    found: dict[uuid.UUID, list[ProgramOption]] = {program_id: [] for program_id in ids}
    if not ids:
        return found
    rows = await session.scalars(
        select(ProgramOption).where(ProgramOption.program_id.in_(ids)).order_by(ProgramOption.code)
    )
    for option in rows:
        found[option.program_id].append(option)
    return found


async def create_program(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    code: str,
    name: str,
    description: str,
    benefits: Sequence[str],
) -> ProgramView:
    _require_operator(actor)
    v = Validator()
    code = _code(v, "code", code)
    name = _text(v, "name", name)
    description = _long_text(v, "description", description, limit=4000, required=False)
    v.check(len(benefits) <= 30, "benefits", "must list at most 30 benefits")
    cleaned = [clean(benefit) for benefit in benefits]
    for index, benefit in enumerate(cleaned):
        v.check(bool(benefit), f"benefits[{index}]", "must not be empty")
        v.check(len(benefit) <= 300, f"benefits[{index}]", "must be at most 300 characters")
    v.raise_if_any()
    program = Program(
        id=uuid.uuid4(),
        code=code,
        name=name,
        description=description,
        benefits=cleaned,
        created_at=now,
    )
    session.add(program)
    await _flush(session, {"uq_programs_code": _taken("code", "is already the code of a program")})
    return ProgramView(program, [])


async def list_programs(
    *, session: AsyncSession, actor: Principal | None, page_size: int, page_token: str
) -> Page[ProgramView]:
    _require_operator(actor)
    v = Validator()
    page = _parse_page(v, "programs", page_size, page_token, [str])
    v.raise_if_any()
    query = select(Program).where(*_after(page, [Program.code])).order_by(Program.code)
    result = await _fetch_page(session, query, page, "programs", lambda p: (p.code,))
    options = await _options_of(session, (p.id for p in result.items))
    return Page([ProgramView(p, options[p.id]) for p in result.items], result.next_page_token)


async def add_program_option(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    program_id: str,
    code: str,
    name: str,
    benefit: str,
) -> ProgramOption:
    _require_operator(actor)
    v = Validator()
    parsed = _uuid(v, "program_id", program_id)
    code = _code(v, "code", code)
    name = _text(v, "name", name)
    benefit = _long_text(v, "benefit", benefit, limit=1000, required=True)
    v.raise_if_any()
    assert parsed is not None
    if await session.get(Program, parsed) is None:
        raise NotFound("program not found")
    option = ProgramOption(
        id=uuid.uuid4(), program_id=parsed, code=code, name=name, benefit=benefit, created_at=now
    )
    session.add(option)
    await _flush(
        session,
        {"uq_program_options_program_id": _taken("code", "is already an option of this program")},
    )
    return option


# ================================================================================================
# Workshop memberships
# ================================================================================================


@dataclass(frozen=True)
class ContactInput:
    name: str
    email: str


@dataclass(frozen=True)
class WorkshopInput:
    name: str
    email: str
    phone: str = ""
    address_line: str = ""
    postal_code: str = ""
    city: str = ""


@dataclass(frozen=True)
class MembershipView:
    membership: WorkshopMembership
    program: Program
    # The options the membership holds, and every option the program offers.
    options: list[ProgramOption]
    program_options: list[ProgramOption]


async def _view(session: AsyncSession, membership: WorkshopMembership) -> MembershipView:
    program = await session.get(Program, membership.program_id)
    assert program is not None
    offered = (await _options_of(session, [program.id]))[program.id]
    held = set(
        await session.scalars(
            select(MembershipOption.option_id).where(
                MembershipOption.membership_id == membership.id
            )
        )
    )
    return MembershipView(membership, program, [o for o in offered if o.id in held], offered)


def _check_contacts(
    v: Validator,
    workshop: WorkshopInput,
    wholesaler: ContactInput,
    distributor: ContactInput,
    *,
    default_name: str = "",
) -> tuple[WorkshopInput, ContactInput, ContactInput]:
    checked_workshop = WorkshopInput(
        name=_text(v, "workshop.name", workshop.name or default_name),
        email=_email(v, "workshop.email", workshop.email),
        phone=_phone(v, "workshop.phone", workshop.phone),
        address_line=_text(v, "workshop.address_line", workshop.address_line, required=False),
        postal_code=_text(
            v, "workshop.postal_code", workshop.postal_code, limit=16, required=False
        ),
        city=_text(v, "workshop.city", workshop.city, limit=100, required=False),
    )
    checked = []
    for field, contact in (("wholesaler", wholesaler), ("distributor", distributor)):
        checked.append(
            ContactInput(
                name=_text(v, f"{field}.name", contact.name),
                email=_email(v, f"{field}.email", contact.email),
            )
        )
    return checked_workshop, checked[0], checked[1]


def _apply_contacts(
    membership: WorkshopMembership,
    workshop: WorkshopInput,
    wholesaler: ContactInput,
    distributor: ContactInput,
) -> None:
    membership.workshop_name = workshop.name
    membership.workshop_email = workshop.email
    membership.workshop_phone = workshop.phone
    membership.address_line = workshop.address_line
    membership.postal_code = workshop.postal_code
    membership.city = workshop.city
    membership.wholesaler_name = wholesaler.name
    membership.wholesaler_email = wholesaler.email
    membership.distributor_name = distributor.name
    membership.distributor_email = distributor.email


def _signal_renewal(session: AsyncSession, membership: WorkshopMembership, now: datetime) -> None:
    """Records, with the change, that the renewal workflow must hear of it (signal outbox)."""
    membership.version += 1
    session.add(
        RenewalSignal(membership_id=membership.id, version=membership.version, created_at=now)
    )


async def create_workshop_membership(
    *,
    session: AsyncSession,
    settings: MembershipSettings,
    directory: Directory,
    actor: Principal | None,
    now: datetime,
    workshop_id: str,
    program_id: str,
    renewal_date: str,
    workshop: WorkshopInput,
    wholesaler: ContactInput,
    distributor: ContactInput,
    option_ids: Sequence[str],
) -> MembershipView:
    """Enrols a workshop; its renewal workflow starts through the outbox in this transaction."""
    _require_operator(actor)
    v = Validator()
    workshop_uuid = _uuid(v, "workshop_id", workshop_id)
    program_uuid = _uuid(v, "program_id", program_id)
    renewal = _date(v, "renewal_date", renewal_date)
    if renewal is not None:
        v.check(renewal > now.date(), "renewal_date", "must be after today")
    v.check(len(option_ids) <= MAX_OPTIONS, "option_ids", f"at most {MAX_OPTIONS} options")
    options = [_uuid(v, f"option_ids[{i}]", raw) for i, raw in enumerate(option_ids[:MAX_OPTIONS])]
    organisation = None
    if workshop_uuid is not None:
        organisation = await directory.organisation(workshop_uuid)
        if organisation is None:
            v.check(False, "workshop_id", "no such organisation")
        elif organisation.kind != WORKSHOP_KIND:
            v.check(False, "workshop_id", f"is a {organisation.kind}, not a workshop")
    checked_workshop, checked_wholesaler, checked_distributor = _check_contacts(
        v, workshop, wholesaler, distributor, default_name=organisation.name if organisation else ""
    )
    program = await session.get(Program, program_uuid) if program_uuid else None
    if program_uuid is not None and program is None:
        v.check(False, "program_id", "no such program")
    offered = (await _options_of(session, [program.id]))[program.id] if program else []
    offered_ids = {o.id for o in offered}
    strays = [
        index
        for index, option_id in enumerate(options)
        if option_id is not None and program is not None and option_id not in offered_ids
    ]
    # Named one by one up to a few: the whole list travels in the status (gRPC headers).
    for index in strays[:5]:
        v.check(False, f"option_ids[{index}]", "is not an option of the program")
    if len(strays) > 5:
        v.check(False, "option_ids", f"{len(strays)} ids are not options of the program")
    v.raise_if_any()
    assert workshop_uuid is not None and program is not None and renewal is not None
    membership = WorkshopMembership(
        id=uuid.uuid4(),
        workshop_id=workshop_uuid,
        program_id=program.id,
        status=MembershipStatus.ACTIVE.value,
        renewal_date=renewal,
        window_open=False,
        version=1,
        created_at=now,
        updated_at=now,
    )
    _apply_contacts(membership, checked_workshop, checked_wholesaler, checked_distributor)
    session.add(membership)
    await _flush(
        session,
        {
            "uq_workshop_memberships_active_workshop": _taken(
                "workshop_id", "this workshop already has an active membership"
            )
        },
    )
    for option_id in dict.fromkeys(o for o in options if o is not None):
        session.add(
            MembershipOption(membership_id=membership.id, option_id=option_id, added_at=now)
        )
    await enqueue(
        session,
        outbox,
        workflow=RENEWAL_WORKFLOW,
        workflow_id=renewal_workflow_id(membership.id),
        argument={"membership_id": str(membership.id)},
        task_queue=settings.temporal_task_queue,
        search_attributes={MEMBERSHIP.name: str(membership.id)},
    )
    await session.flush()
    return await _view(session, membership)


async def _membership_of(
    session: AsyncSession, workshop_id: uuid.UUID, *, lock: bool = False, active: bool = False
) -> WorkshopMembership:
    """The workshop's active membership, else (unless `active`) its latest one."""
    query = (
        select(WorkshopMembership)
        .where(WorkshopMembership.workshop_id == workshop_id)
        .order_by(
            (WorkshopMembership.status == MembershipStatus.ACTIVE.value).desc(),
            WorkshopMembership.created_at.desc(),
        )
        .limit(1)
    )
    if lock:
        query = query.with_for_update()
    membership = await session.scalar(query)
    if membership is None:
        raise NotFound("this workshop has no banner-program membership")
    if active and membership.status != MembershipStatus.ACTIVE:
        raise FailedPrecondition(
            f"this workshop's membership ended on {membership.ended_on}", reason="membership_ended"
        )
    return membership


async def get_workshop(
    *, session: AsyncSession, actor: Principal | None, workshop_id: str
) -> MembershipView:
    """The workshop's read-only view: its information, program, options and removal window."""
    parsed = _uuid_or_raise("workshop_id", workshop_id)
    _workshop_party(actor, parsed)
    return await _view(session, await _membership_of(session, parsed))


async def list_workshop_memberships(
    *, session: AsyncSession, actor: Principal | None, page_size: int, page_token: str
) -> Page[MembershipView]:
    _require_operator(actor)
    v = Validator()
    page = _parse_page(v, "memberships", page_size, page_token, [_moment, uuid.UUID])
    v.raise_if_any()
    columns = [WorkshopMembership.created_at, WorkshopMembership.id]
    query = select(WorkshopMembership).where(*_after(page, columns)).order_by(*columns)
    result = await _fetch_page(
        session, query, page, "memberships", lambda m: (m.created_at.isoformat(), m.id)
    )
    return Page([await _view(session, m) for m in result.items], result.next_page_token)


async def update_workshop_contacts(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    workshop_id: str,
    workshop: WorkshopInput,
    wholesaler: ContactInput,
    distributor: ContactInput,
) -> MembershipView:
    """Operators only: the workshop sees its details but changes them through the team."""
    parsed = _uuid_or_raise("workshop_id", workshop_id)
    _operator_on_workshop(actor, parsed, "change its contact details")
    v = Validator()
    checked = _check_contacts(v, workshop, wholesaler, distributor)
    v.raise_if_any()
    membership = await _membership_of(session, parsed, lock=True, active=True)
    _apply_contacts(membership, *checked)
    membership.updated_at = now
    return await _view(session, membership)


async def change_renewal_date(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    workshop_id: str,
    renewal_date: str,
) -> MembershipView:
    """A new renewal date; the renewal workflow hears of it by a signal sent through an outbox."""
    parsed = _uuid_or_raise("workshop_id", workshop_id)
    _operator_on_workshop(actor, parsed, "change its renewal date")
    v = Validator()
    renewal = _date(v, "renewal_date", renewal_date)
    if renewal is not None:
        v.check(renewal > now.date(), "renewal_date", "must be after today")
    v.raise_if_any()
    assert renewal is not None
    membership = await _membership_of(session, parsed, lock=True, active=True)
    if (
        membership.window_open
        and membership.window_closes_on
        and renewal < membership.window_closes_on
    ):
        closes = membership.window_closes_on.isoformat()
        raise InvalidArgument(
            [("renewal_date", f"must be after the open removal window (it closes on {closes})")]
        )
    if renewal == membership.renewal_date:
        return await _view(session, membership)
    membership.renewal_date = renewal
    membership.updated_at = now
    _signal_renewal(session, membership, now)
    return await _view(session, membership)


async def end_workshop_membership(
    *, session: AsyncSession, actor: Principal | None, now: datetime, workshop_id: str, reason: str
) -> MembershipView:
    parsed = _uuid_or_raise("workshop_id", workshop_id)
    _operator_on_workshop(actor, parsed, "end its membership")
    v = Validator()
    reason = _long_text(v, "reason", reason, limit=1000, required=True)
    v.raise_if_any()
    membership = await _membership_of(session, parsed, lock=True, active=True)
    membership.status = MembershipStatus.ENDED.value
    membership.ended_on = now.date()
    membership.end_reason = reason
    membership.window_open = False
    membership.updated_at = now
    _signal_renewal(session, membership, now)
    return await _view(session, membership)


# ================================================================================================
# Option changes: recorded requests; removals only in the yearly window
# ================================================================================================


@dataclass(frozen=True)
class OptionRequestView:
    request: OptionChangeRequest
    membership: WorkshopMembership
    option: ProgramOption


def window_refusal(membership: WorkshopMembership) -> FailedPrecondition:
    opens = membership.renewal_date.isoformat()
    return FailedPrecondition(
        "options can be removed only once a year, in the window that opens at the renewal "
        f"date: the next window opens on {opens}",
        reason="removal_window_closed",
        violations=[("change", f"removals open on {opens}")],
    )


async def request_option_change(
    *,
    session: AsyncSession,
    settings: MembershipSettings,
    actor: Principal | None,
    now: datetime,
    workshop_id: str,
    option_id: str,
    change: str,
    channel: str,
    note: str,
) -> OptionRequestView:
    """Records a request: the workshop on the portal, or an operator for a request received by
    e-mail. Requests by phone are refused. Removals outside the window are refused with the date
    it opens. The program team is told by e-mail."""
    parsed_workshop = _uuid_or_raise("workshop_id", workshop_id)
    party = _workshop_party(actor, parsed_workshop)
    v = Validator()
    parsed_option = _uuid(v, "option_id", option_id)
    v.require("change", change, "must be ADD or REMOVE")
    if channel == "phone":
        v.check(False, "channel", "changes are never accepted by phone: send them by e-mail")
    elif party == "workshop":
        v.check(
            channel in ("", RequestChannel.PORTAL), "channel", "a workshop requests on the portal"
        )
        channel = RequestChannel.PORTAL.value
    else:
        v.check(
            channel == RequestChannel.EMAIL,
            "channel",
            "operators record requests received by e-mail (channel EMAIL)",
        )
    note = _long_text(v, "note", note, limit=2000, required=False)
    v.raise_if_any()
    assert parsed_option is not None
    membership = await _membership_of(session, parsed_workshop, lock=True, active=True)
    option = await session.get(ProgramOption, parsed_option)
    if option is None or option.program_id != membership.program_id:
        raise InvalidArgument([("option_id", "is not an option of the workshop's program")])
    held = await session.get(MembershipOption, (membership.id, option.id)) is not None
    if change == OptionChange.ADD and held:
        raise FailedPrecondition("the workshop already holds this option", reason="option_held")
    if change == OptionChange.REMOVE:
        if not held:
            raise FailedPrecondition(
                "the workshop does not hold this option", reason="option_not_held"
            )
        if not membership.window_open:
            raise window_refusal(membership)
    request = OptionChangeRequest(
        id=uuid.uuid4(),
        membership_id=membership.id,
        option_id=option.id,
        change=change,
        channel=channel,
        status=OptionChangeStatus.PENDING.value,
        note=note,
        requested_by=actor_id(actor),
        created_at=now,
    )
    session.add(request)
    await _flush(
        session,
        {
            "uq_option_change_requests_pending": _taken(
                "option_id", "a request for this option is already pending"
            )
        },
    )
    verb = "ajout" if change == OptionChange.ADD else "retrait"
    await _mail(
        session,
        settings,
        to=settings.program_team_email,
        subject=f"Demande de {verb} d'option : {membership.workshop_name}",
        body=(
            f"L'atelier {membership.workshop_name} demande le {verb} de l'option "
            f"« {option.name} » ({option.code}).\n"
            f"Canal : {channel}. Note : {note or '—'}\n"
            f"Référence de la demande : {request.id}\n"
        ),
    )
    return OptionRequestView(request, membership, option)


async def list_option_change_requests(
    *,
    session: AsyncSession,
    actor: Principal | None,
    workshop_id: str,
    page_size: int,
    page_token: str,
) -> Page[OptionRequestView]:
    parsed = _uuid_or_raise("workshop_id", workshop_id)
    _workshop_party(actor, parsed)
    v = Validator()
    page = _parse_page(v, "option-requests", page_size, page_token, [_moment, uuid.UUID])
    v.raise_if_any()
    columns = [OptionChangeRequest.created_at, OptionChangeRequest.id]
    query = (
        select(OptionChangeRequest, WorkshopMembership, ProgramOption)
        .join(WorkshopMembership, WorkshopMembership.id == OptionChangeRequest.membership_id)
        .join(ProgramOption, ProgramOption.id == OptionChangeRequest.option_id)
        .where(WorkshopMembership.workshop_id == parsed, *_after(page, columns, descending=True))
        .order_by(*(c.desc() for c in columns))
        .limit(page.size + 1)
    )
    rows = [OptionRequestView(*row) for row in (await session.execute(query)).all()]
    token = ""
    if len(rows) > page.size:
        rows = rows[: page.size]
        last = rows[-1].request
        token = _page_token("option-requests", (last.created_at.isoformat(), last.id))
    return Page(rows, token)


async def decide_option_change(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    workshop_id: str,
    request_id: str,
    approve: bool,
    note: str,
) -> tuple[OptionRequestView, MembershipView]:
    """An operator approves (the change is applied) or rejects (with a reason) a pending request.
    A removal requested while the window was open may be approved after it closed."""
    parsed_workshop = _uuid_or_raise("workshop_id", workshop_id)
    _operator_on_workshop(actor, parsed_workshop, "decide on its own requests")
    v = Validator()
    parsed = _uuid(v, "request_id", request_id)
    note = _long_text(v, "note", note, limit=2000, required=not approve)
    v.raise_if_any()
    request = await session.get(OptionChangeRequest, parsed, with_for_update=True)
    owner = (
        await session.scalar(
            select(WorkshopMembership.workshop_id).where(
                WorkshopMembership.id == request.membership_id
            )
        )
        if request
        else None
    )
    if request is None or owner != parsed_workshop:
        raise NotFound("option change request not found")
    if request.status != OptionChangeStatus.PENDING:
        raise FailedPrecondition(
            f"this request was already {request.status}", reason="already_decided"
        )
    membership = await session.get(WorkshopMembership, request.membership_id, with_for_update=True)
    option = await session.get(ProgramOption, request.option_id)
    assert membership is not None and option is not None
    if approve:
        if membership.status != MembershipStatus.ACTIVE:
            raise FailedPrecondition("this membership has ended", reason="membership_ended")
        held = await session.get(MembershipOption, (membership.id, option.id))
        if request.change == OptionChange.ADD and held is None:
            session.add(
                MembershipOption(membership_id=membership.id, option_id=option.id, added_at=now)
            )
        elif request.change == OptionChange.REMOVE and held is not None:
            await session.delete(held)
    request.status = (OptionChangeStatus.APPROVED if approve else OptionChangeStatus.REJECTED).value
    request.decided_by = actor_id(actor)
    request.decision_note = note
    request.decided_at = now
    membership.updated_at = now
    await session.flush()
    return OptionRequestView(request, membership, option), await _view(session, membership)


# ================================================================================================
# The renewal workflow's activities (service token only)
# ================================================================================================


@dataclass(frozen=True)
class RenewalState:
    membership: WorkshopMembership
    window_days: int
    letter_lead_days: int


async def _membership_for_workflow(
    session: AsyncSession, actor: Principal | None, membership_id: str, *, lock: bool = False
) -> WorkshopMembership:
    _require_service(actor)
    parsed = _uuid_or_raise("membership_id", membership_id)
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
    parsed = _date(v, "renewal_date", raw)
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
    subject, body = anniversary_letter(await _view(session, membership), settings, renewal)
    for role, address in recipients:
        mail_id = uuid.uuid5(_LETTER_MAILS, f"{membership.id}/{renewal.isoformat()}/{role}")
        await _mail(session, settings, to=address, subject=subject, body=body, mail_id=mail_id)
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


# ================================================================================================
# Technicians and training courses
# ================================================================================================


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
    parsed = _uuid_or_raise("workshop_id", workshop_id)
    _workshop_party(actor, parsed)
    v = Validator()
    first = _text(v, "first_name", first_name, limit=100)
    last = _text(v, "last_name", last_name, limit=100)
    address = _email(v, "email", email, required=False)
    v.raise_if_any()
    await _membership_of(session, parsed, active=True)
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
    parsed = _uuid_or_raise("workshop_id", workshop_id)
    _workshop_party(actor, parsed)
    v = Validator()
    page = _parse_page(v, "technicians", page_size, page_token, [str, uuid.UUID])
    v.raise_if_any()
    columns = [Technician.last_name, Technician.id]
    query = (
        select(Technician)
        .where(Technician.workshop_id == parsed, *_after(page, columns))
        .order_by(*columns)
    )
    return await _fetch_page(session, query, page, "technicians", lambda t: (t.last_name, t.id))


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
    code: str,
    title: str,
    description: str,
    starts_on: str,
    ends_on: str,
    location: str,
    capacity: int,
) -> CourseView:
    _require_operator(actor)
    v = Validator()
    code = _code(v, "code", code)
    title = _text(v, "title", title)
    description = _long_text(v, "description", description, limit=4000, required=False)
    starts = _date(v, "starts_on", starts_on)
    ends = _date(v, "ends_on", ends_on, required=False) or starts
    if starts is not None:
        v.check(starts > now.date(), "starts_on", "must be after today")
    if starts is not None and ends is not None:
        v.check(ends >= starts, "ends_on", "must not be before starts_on")
    location = _text(v, "location", location)
    v.check(1 <= capacity <= 1000, "capacity", "must be between 1 and 1000")
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
    await _flush(
        session, {"uq_training_courses_code": _taken("code", "is already the code of a course")}
    )
    return CourseView(course, 0)


async def list_training_courses(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    upcoming_only: bool,
    page_size: int,
    page_token: str,
) -> Page[CourseView]:
    """Operators and every workshop of the program see the course catalogue."""
    actor = _require_user(actor)
    if not (is_operator(actor) or actor.has_any_role(WORKSHOP_OWNER)):
        raise PermissionDenied("the course catalogue is for workshops and the program team")
    v = Validator()
    page = _parse_page(v, "courses", page_size, page_token, [date.fromisoformat, uuid.UUID])
    v.raise_if_any()
    columns = [TrainingCourse.starts_on, TrainingCourse.id]
    query = select(TrainingCourse).where(*_after(page, columns)).order_by(*columns)
    if upcoming_only:
        query = query.where(TrainingCourse.starts_on > now.date())
    result = await _fetch_page(
        session, query, page, "courses", lambda c: (c.starts_on.isoformat(), c.id)
    )
    seats = await _seats(session, (c.id for c in result.items))
    return Page([CourseView(c, seats[c.id]) for c in result.items], result.next_page_token)


async def register_technician(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    workshop_id: str,
    course_id: str,
    technician_id: str,
) -> CourseRegistrationView:
    """The workshop registers one of its technicians; the course must be upcoming and not full."""
    parsed_workshop = _uuid_or_raise("workshop_id", workshop_id)
    _workshop_party(actor, parsed_workshop)
    v = Validator()
    parsed_course = _uuid(v, "course_id", course_id)
    parsed_technician = _uuid(v, "technician_id", technician_id)
    v.raise_if_any()
    await _membership_of(session, parsed_workshop, active=True)
    technician = await session.get(Technician, parsed_technician)
    if technician is None or technician.workshop_id != parsed_workshop:
        raise NotFound("technician not found")
    # The course row is the lock that keeps concurrent registrations within its capacity.
    course = await session.get(TrainingCourse, parsed_course, with_for_update=True)
    if course is None:
        raise NotFound("course not found")
    if course.starts_on <= now.date():
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
    await _flush(
        session,
        {
            "uq_course_registrations_live": _taken(
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
    workshop_id: str,
    registration_id: str,
    status: str,
) -> CourseRegistrationView:
    """CANCELLED by the workshop or operators before the course starts; COMPLETED or ABSENT by
    operators once it started (the technician's training history)."""
    parsed_workshop = _uuid_or_raise("workshop_id", workshop_id)
    party = _workshop_party(actor, parsed_workshop)
    v = Validator()
    parsed = _uuid(v, "registration_id", registration_id)
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
    started = course.starts_on <= now.date()
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
    parsed_workshop = _uuid_or_raise("workshop_id", workshop_id)
    _workshop_party(actor, parsed_workshop)
    v = Validator()
    parsed_technician = _uuid(v, "technician_id", technician_id, required=False)
    page = _parse_page(v, "course-registrations", page_size, page_token, [_moment, uuid.UUID])
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


# ================================================================================================
# Labour-warranty claims
# ================================================================================================

OPERATOR, WORKSHOP = "operator", "workshop"

# (from, to) → (who may, whether a note is required).
CLAIM_TRANSITIONS: dict[tuple[ClaimStatus, ClaimStatus], tuple[str, bool]] = {
    (ClaimStatus.SUBMITTED, ClaimStatus.UNDER_REVIEW): (OPERATOR, False),
    (ClaimStatus.SUBMITTED, ClaimStatus.REJECTED): (OPERATOR, True),
    (ClaimStatus.SUBMITTED, ClaimStatus.WITHDRAWN): (WORKSHOP, False),
    (ClaimStatus.UNDER_REVIEW, ClaimStatus.APPROVED): (OPERATOR, False),
    (ClaimStatus.UNDER_REVIEW, ClaimStatus.REJECTED): (OPERATOR, True),
    (ClaimStatus.UNDER_REVIEW, ClaimStatus.NEEDS_INFORMATION): (OPERATOR, True),
    (ClaimStatus.NEEDS_INFORMATION, ClaimStatus.UNDER_REVIEW): (WORKSHOP, True),
    (ClaimStatus.NEEDS_INFORMATION, ClaimStatus.WITHDRAWN): (WORKSHOP, False),
    (ClaimStatus.APPROVED, ClaimStatus.PAID): (OPERATOR, False),
}


@dataclass(frozen=True)
class ClaimView:
    claim: WarrantyClaim
    history: list[ClaimEvent]


async def _claim_view(session: AsyncSession, claim: WarrantyClaim) -> ClaimView:
    events = await session.scalars(
        select(ClaimEvent).where(ClaimEvent.claim_id == claim.id).order_by(ClaimEvent.seq)
    )
    return ClaimView(claim, list(events))


async def submit_warranty_claim(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    workshop_id: str,
    vehicle_vin: str,
    repair_order: str,
    repair_date: str,
    technician_id: str,
    labour_minutes: int,
    amount_cents: int,
    description: str,
) -> ClaimView:
    """The workshop submits a labour-warranty claim (an active membership is required)."""
    parsed_workshop = _uuid_or_raise("workshop_id", workshop_id)
    if _workshop_party(actor, parsed_workshop) != WORKSHOP:
        raise PermissionDenied("claims are submitted by the workshop")
    v = Validator()
    vin = vehicle_vin.strip().upper()
    v.require("vehicle_vin", vin)
    if vin:
        v.check(bool(_VIN.match(vin)), "vehicle_vin", "must be 17 characters, without I, O or Q")
    order = _text(v, "repair_order", repair_order, limit=40)
    repaired = _date(v, "repair_date", repair_date)
    if repaired is not None:
        v.check(repaired <= now.date(), "repair_date", "must not be in the future")
    parsed_technician = _uuid(v, "technician_id", technician_id, required=False)
    v.check(0 < labour_minutes <= 100 * 60, "labour_minutes", "must be between 1 and 6000")
    v.check(0 <= amount_cents <= 10_000_000, "amount_cents", "must be between 0 and 10000000")
    text_ = _long_text(v, "description", description, limit=4000, required=True)
    v.raise_if_any()
    assert repaired is not None
    membership = await _membership_of(session, parsed_workshop, active=True)
    if parsed_technician is not None:
        technician = await session.get(Technician, parsed_technician)
        if technician is None or technician.workshop_id != parsed_workshop:
            raise InvalidArgument([("technician_id", "is not a technician of this workshop")])
    claim = WarrantyClaim(
        id=uuid.uuid4(),
        workshop_id=parsed_workshop,
        membership_id=membership.id,
        vehicle_vin=vin,
        repair_order=order,
        repair_date=repaired,
        technician_id=parsed_technician,
        labour_minutes=labour_minutes,
        amount_cents=amount_cents,
        description=text_,
        status=ClaimStatus.SUBMITTED.value,
        created_at=now,
        updated_at=now,
    )
    session.add(claim)
    await session.flush()
    session.add(
        ClaimEvent(
            claim_id=claim.id,
            from_status=None,
            to_status=ClaimStatus.SUBMITTED.value,
            actor_id=actor_id(actor),
            note="",
            at=now,
        )
    )
    await session.flush()
    return await _claim_view(session, claim)


async def _claim_of(
    session: AsyncSession, workshop_id: uuid.UUID, claim_id: str, *, lock: bool = False
) -> WarrantyClaim:
    parsed = _uuid_or_raise("claim_id", claim_id)
    claim = await session.get(WarrantyClaim, parsed, with_for_update=lock or None)
    if claim is None or claim.workshop_id != workshop_id:
        raise NotFound("claim not found")
    return claim


async def get_warranty_claim(
    *, session: AsyncSession, actor: Principal | None, workshop_id: str, claim_id: str
) -> ClaimView:
    parsed = _uuid_or_raise("workshop_id", workshop_id)
    _workshop_party(actor, parsed)
    return await _claim_view(session, await _claim_of(session, parsed, claim_id))


async def list_warranty_claims(
    *,
    session: AsyncSession,
    actor: Principal | None,
    workshop_id: str,
    status: str,
    page_size: int,
    page_token: str,
) -> Page[ClaimView]:
    parsed = _uuid_or_raise("workshop_id", workshop_id)
    _workshop_party(actor, parsed)
    v = Validator()
    page = _parse_page(v, "claims", page_size, page_token, [_moment, uuid.UUID])
    v.raise_if_any()
    columns = [WarrantyClaim.created_at, WarrantyClaim.id]
    query = (
        select(WarrantyClaim)
        .where(WarrantyClaim.workshop_id == parsed, *_after(page, columns, descending=True))
        .order_by(*(c.desc() for c in columns))
    )
    if status:
        query = query.where(WarrantyClaim.status == status)
    result = await _fetch_page(
        session, query, page, "claims", lambda c: (c.created_at.isoformat(), c.id)
    )
    return Page([await _claim_view(session, c) for c in result.items], result.next_page_token)


async def transition_warranty_claim(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    workshop_id: str,
    claim_id: str,
    to_status: str,
    note: str,
) -> ClaimView:
    """Moves a claim along CLAIM_TRANSITIONS, by the party each transition belongs to."""
    parsed_workshop = _uuid_or_raise("workshop_id", workshop_id)
    party = _workshop_party(actor, parsed_workshop)
    v = Validator()
    v.check(to_status in set(ClaimStatus), "to_status", "must be a claim status")
    note = _long_text(v, "note", note, limit=4000, required=False)
    v.raise_if_any()
    claim = await _claim_of(session, parsed_workshop, claim_id, lock=True)
    current, wanted = ClaimStatus(claim.status), ClaimStatus(to_status)
    rule = CLAIM_TRANSITIONS.get((current, wanted))
    if rule is None:
        allowed = sorted(to.value for (frm, to) in CLAIM_TRANSITIONS if frm == current)
        raise FailedPrecondition(
            f"a {current.value} claim cannot become {wanted.value}"
            + (f" (allowed: {', '.join(allowed)})" if allowed else " (it is final)"),
            reason="invalid_transition",
        )
    who, needs_note = rule
    if who != party:
        whom = "the program team" if who == OPERATOR else "the workshop"
        raise PermissionDenied(f"only {whom} may make a {current.value} claim {wanted.value}")
    if needs_note and not note:
        raise InvalidArgument([("note", f"is required to make a claim {wanted.value}")])
    claim.status = wanted.value
    claim.updated_at = now
    session.add(
        ClaimEvent(
            claim_id=claim.id,
            from_status=current.value,
            to_status=wanted.value,
            actor_id=actor_id(actor),
            note=note,
            at=now,
        )
    )
    await session.flush()
    return await _claim_view(session, claim)


# ================================================================================================
# Association members and their yearly fee
# ================================================================================================


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
    actor: Principal | None,
    now: datetime,
    association_id: str,
    user_id: str,
    first_name: str,
    last_name: str,
    email: str,
    joined_on: str,
) -> MemberView:
    parsed = _uuid_or_raise("association_id", association_id)
    _require_association_admin(actor, parsed)
    v = Validator()
    user = _uuid(v, "user_id", user_id, required=False)
    first = _text(v, "first_name", first_name, limit=100)
    last = _text(v, "last_name", last_name, limit=100)
    address = _email(v, "email", email, required=False)
    joined = _date(v, "joined_on", joined_on, required=False) or now.date()
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
    await _flush(
        session,
        {
            "uq_association_members_association_id": _taken(
                "user_id", "this account is already a member of the association"
            )
        },
    )
    return MemberView(member, [])


async def list_members(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    association_id: str,
    fee_year: int,
    fee_filter: str,
    page_size: int,
    page_token: str,
) -> Page[MemberView]:
    parsed = _uuid_or_raise("association_id", association_id)
    _require_association_admin(actor, parsed)
    v = Validator()
    v.check(fee_year == 0 or 1900 <= fee_year <= 2200, "fee_year", "must be a year")
    page = _parse_page(v, "members", page_size, page_token, [str, str, uuid.UUID])
    v.raise_if_any()
    year = fee_year or now.year
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
    result = await _fetch_page(
        session, query, page, "members", lambda m: (m.last_name, m.first_name, m.id)
    )
    return Page(await _member_views(session, result.items), result.next_page_token)


async def record_fee_payment(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    association_id: str,
    member_id: str,
    year: int,
    amount_cents: int,
    paid_on: str,
) -> MemberView:
    association, parsed = _association_and(actor, association_id, "member_id", member_id)
    v = Validator()
    v.check(1900 <= year <= 2200, "year", "must be a year")
    v.check(0 <= amount_cents <= 10_000_000, "amount_cents", "must be between 0 and 10000000")
    paid = _date(v, "paid_on", paid_on, required=False) or now.date()
    v.check(paid <= now.date(), "paid_on", "must not be in the future")
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
    await _flush(
        session, {"pk_fee_payments": _taken("year", f"the {year} fee is already recorded")}
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
    actor: Principal | None,
    now: datetime,
    organisation_id: str,
    user_id: str,
    year: int,
) -> FeeStatus:
    """Whether the account's fee for `year` (default: this year) is recorded. Asked by identity
    (service token) when an admin validates an account; an admin of the association may ask too.
    A user who is not a recorded member has simply not paid."""
    actor = _require(actor)
    v = Validator()
    organisation = _uuid(v, "organisation_id", organisation_id)
    user = _uuid(v, "user_id", user_id)
    v.check(year == 0 or 1900 <= year <= 2200, "year", "must be a year")
    v.raise_if_any()
    assert organisation is not None and user is not None
    if not actor.is_service:
        _require_association_admin(actor, organisation)
    year = year or now.year
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


# ================================================================================================
# Client records: created (or matched) with every request
# ================================================================================================


@dataclass(frozen=True)
class RequesterInput:
    company_name: str
    siret: str
    client_number: int
    email: str
    contact_name: str


async def _lock_keys(session: AsyncSession, keys: Iterable[str]) -> None:
    """Transaction-scoped advisory locks, always taken in the same order (no deadlock)."""
    for key in sorted(set(keys)):
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key}
        )


async def _live_record(session: AsyncSession, record: ClientRecord) -> ClientRecord:
    """A merged record's number still leads to the record its events went to. The record is
    returned share-locked: a merge or a deletion of it waits until the new event is committed
    (and then moves it, or refuses to delete a record that is not empty)."""
    for _ in range(32):
        await session.refresh(record, with_for_update={"read": True})
        if record.merged_into_id is None:
            return record
        target = await session.get(ClientRecord, record.merged_into_id)
        if target is None:
            break
        record = target
    return record


async def resolve_client_record(
    session: AsyncSession,
    *,
    now: datetime,
    association_id: uuid.UUID,
    requester: RequesterInput,
    field_prefix: str,
) -> tuple[ClientRecord, bool]:
    """The record a request belongs to: the client number if given, else a record with the same
    SIRET, else one with exactly the same company name; otherwise a new record. Returns
    (record, created). Concurrent requests from the same company serialise on advisory locks,
    so they never create two records."""
    v = Validator()
    name = _text(v, f"{field_prefix}company_name", requester.company_name)
    siret = _siret(v, f"{field_prefix}siret", requester.siret)
    v.check(requester.client_number >= 0, f"{field_prefix}client_number", "must be positive")
    v.raise_if_any()
    if requester.client_number:
        found = await session.scalar(
            select(ClientRecord).where(
                ClientRecord.association_id == association_id,
                ClientRecord.number == requester.client_number,
            )
        )
        if found is None:
            raise InvalidArgument(
                [(f"{field_prefix}client_number", "is not a client number of this association")]
            )
        return await _live_record(session, found), False
    keys = [f"client-name:{association_id}:{name}"]
    if siret:
        keys.append(f"client-siret:{association_id}:{siret}")
    await _lock_keys(session, keys)
    live = and_(
        ClientRecord.association_id == association_id, ClientRecord.merged_into_id.is_(None)
    )
    record = None
    if siret:
        record = await session.scalar(
            select(ClientRecord)
            .where(live, ClientRecord.siret == siret)
            .order_by(ClientRecord.number)
            .limit(1)
            .with_for_update(read=True)
        )
    if record is None:
        record = await session.scalar(
            select(ClientRecord)
            .where(live, ClientRecord.company_name == name)
            .order_by(ClientRecord.number)
            .limit(1)
            .with_for_update(read=True)
        )
    if record is not None:
        if siret and not record.siret:
            record.siret = siret
        if requester.email and not record.email:
            record.email = requester.email
        return record, False
    name_key, token_key = name_keys(name)
    record = ClientRecord(
        id=uuid.uuid4(),
        association_id=association_id,
        company_name=name,
        siret=siret,
        email=requester.email or None,
        contact_name=requester.contact_name or None,
        name_key=name_key,
        token_key=token_key,
        created_at=now,
    )
    session.add(record)
    await session.flush()
    await session.refresh(record, ["number"])
    return record, True


def _client_number_text(record: ClientRecord, created: bool) -> str:
    if created:
        return (
            f"Votre numéro client est le {record.number}. Indiquez-le dans vos prochaines "
            "demandes (formations, dispositifs de secours) : il nous évite de créer une "
            "nouvelle fiche."
        )
    return f"Votre numéro client : {record.number}."


# ================================================================================================
# Association trainings and registrations
# ================================================================================================


@dataclass(frozen=True)
class TrainingView:
    training: Training
    seats_taken: int


@dataclass(frozen=True)
class TraineeInput:
    first_name: str
    last_name: str
    birth_date: str
    email: str
    phone: str


@dataclass(frozen=True)
class RegistrationView:
    registration: TrainingRegistration
    client: ClientRecord


@dataclass(frozen=True)
class RegistrationResult:
    view: RegistrationView
    cancelled_registration_id: uuid.UUID | None
    new_client_record: bool


def _live_registrations() -> ColumnElement[bool]:
    return TrainingRegistration.status != RegistrationStatus.CANCELLED.value


async def _training_seats(
    session: AsyncSession, training_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, int]:
    ids = list(set(training_ids))
    counts = {training_id: 0 for training_id in ids}
    if ids:
        rows = await session.execute(
            select(TrainingRegistration.training_id, func.count())
            .where(TrainingRegistration.training_id.in_(ids), _live_registrations())
            .group_by(TrainingRegistration.training_id)
        )
        counts.update({training_id: int(count) for training_id, count in rows})
    return counts


def person_key(first_name: str, last_name: str, birth_date: date) -> str:
    """Who a trainee is, whatever e-mail they type: folded names and birth date."""
    return f"{fold(last_name)[:110]}|{fold(first_name)[:110]}|{birth_date.isoformat()}"


async def create_training(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    association_id: str,
    training_type: str,
    title: str,
    starts_at: datetime | None,
    location: str,
    capacity: int,
    public: bool,
) -> TrainingView:
    parsed = _uuid_or_raise("association_id", association_id)
    _require_association_admin(actor, parsed)
    v = Validator()
    kind = _code(v, "training_type", training_type)
    title = _text(v, "title", title)
    v.check(starts_at is not None, "start_time", "is required")
    if starts_at is not None:
        v.check(starts_at > now, "start_time", "must be in the future")
    location = _text(v, "location", location)
    v.check(1 <= capacity <= 1000, "capacity", "must be between 1 and 1000")
    v.raise_if_any()
    assert starts_at is not None
    training = Training(
        id=uuid.uuid4(),
        association_id=parsed,
        training_type=kind,
        title=title,
        starts_at=starts_at,
        location=location,
        capacity=capacity,
        public=public,
        created_at=now,
    )
    session.add(training)
    await session.flush()
    return TrainingView(training, 0)


async def _list_trainings(
    session: AsyncSession,
    association_id: uuid.UUID,
    query_filter: Sequence[ColumnElement[bool]],
    page_size: int,
    page_token: str,
) -> Page[TrainingView]:
    v = Validator()
    page = _parse_page(v, "trainings", page_size, page_token, [_moment, uuid.UUID])
    v.raise_if_any()
    columns = [Training.starts_at, Training.id]
    query = (
        select(Training)
        .where(Training.association_id == association_id, *query_filter, *_after(page, columns))
        .order_by(*columns)
    )
    result = await _fetch_page(
        session, query, page, "trainings", lambda t: (t.starts_at.isoformat(), t.id)
    )
    seats = await _training_seats(session, (t.id for t in result.items))
    return Page([TrainingView(t, seats[t.id]) for t in result.items], result.next_page_token)


async def list_trainings(
    *,
    session: AsyncSession,
    actor: Principal | None,
    association_id: str,
    page_size: int,
    page_token: str,
) -> Page[TrainingView]:
    parsed = _uuid_or_raise("association_id", association_id)
    _require_association_admin(actor, parsed)
    return await _list_trainings(session, parsed, [], page_size, page_token)


async def list_public_trainings(
    *, session: AsyncSession, now: datetime, association_id: str, page_size: int, page_token: str
) -> Page[TrainingView]:
    """Public: the upcoming public trainings of an association."""
    parsed = _uuid_or_raise("association_id", association_id)
    return await _list_trainings(
        session,
        parsed,
        [Training.public.is_(True), Training.starts_at > now],
        page_size,
        page_token,
    )


async def register_for_training(
    *,
    session: AsyncSession,
    settings: MembershipSettings,
    now: datetime,
    association_id: str,
    training_id: str,
    trainee: TraineeInput,
    requester: RequesterInput,
) -> RegistrationResult:
    """Public. An earlier registration of the same person for a training of the same type is
    cancelled, unless it was validated: then the new one is refused. Serialised per person and
    type (advisory lock), and held by partial unique indexes whatever happens."""
    v = Validator()
    association = _uuid(v, "association_id", association_id)
    parsed = _uuid(v, "training_id", training_id)
    first = _text(v, "trainee.first_name", trainee.first_name, limit=100)
    last = _text(v, "trainee.last_name", trainee.last_name, limit=100)
    born = _date(v, "trainee.birth_date", trainee.birth_date)
    if born is not None:
        v.check(born < now.date(), "trainee.birth_date", "must be in the past")
        v.check(born.year >= 1900, "trainee.birth_date", "must be after 1900")
    email = _email(v, "trainee.email", trainee.email)
    phone = _phone(v, "trainee.phone", trainee.phone)
    v.raise_if_any()
    assert born is not None
    training = await session.get(Training, parsed)
    if training is None or not training.public or training.association_id != association:
        raise NotFound("training not found")
    if training.starts_at <= now:
        raise FailedPrecondition("this training has already started", reason="training_started")
    key = person_key(first, last, born)
    await _lock_keys(
        session, [f"registration:{training.association_id}:{key}:{training.training_type}"]
    )
    earlier = list(
        await session.scalars(
            select(TrainingRegistration)
            .where(
                TrainingRegistration.association_id == training.association_id,
                TrainingRegistration.person_key == key,
                TrainingRegistration.training_type == training.training_type,
                _live_registrations(),
            )
            .with_for_update()
        )
    )
    validated = [r for r in earlier if r.status == RegistrationStatus.VALIDATED]
    if validated:
        raise FailedPrecondition(
            f"{first} {last} already has a validated registration for a "
            f"{training.training_type} training: a new registration for this type is refused",
            reason="already_validated",
        )
    cancelled_id = None
    for registration in earlier:
        registration.status = RegistrationStatus.CANCELLED.value
        registration.cancelled_at = now
        registration.cancel_reason = (
            f"replaced by a new registration for the {training.training_type} training "
            f"« {training.title} » of {training.starts_at.date().isoformat()}"
        )
        cancelled_id = registration.id
    await session.flush()
    # The training row keeps concurrent registrations within its capacity.
    await session.refresh(training, with_for_update=True)
    if (await _training_seats(session, [training.id]))[training.id] >= training.capacity:
        raise FailedPrecondition("this training is full", reason="training_full")
    company = requester.company_name.strip() or f"{last.upper()} {first}"
    known = None
    if not (requester.company_name.strip() or requester.siret.strip() or requester.client_number):
        # A civilian on their own: the record of their earlier registrations, however they typed
        # their name this time (the person key matched).
        known = await session.scalar(
            select(ClientRecord)
            .join(TrainingRegistration, TrainingRegistration.client_record_id == ClientRecord.id)
            .where(
                TrainingRegistration.association_id == training.association_id,
                TrainingRegistration.person_key == key,
            )
            .order_by(TrainingRegistration.created_at.desc())
            .limit(1)
        )
    if known is not None:
        record, created = await _live_record(session, known), False
    else:
        record, created = await resolve_client_record(
            session,
            now=now,
            association_id=training.association_id,
            requester=RequesterInput(
                company_name=company,
                siret=requester.siret,
                client_number=requester.client_number,
                email=email,
                contact_name=f"{first} {last}",
            ),
            field_prefix="requester.",
        )
    registration = TrainingRegistration(
        id=uuid.uuid4(),
        training_id=training.id,
        association_id=training.association_id,
        training_type=training.training_type,
        first_name=first,
        last_name=last,
        birth_date=born,
        email=email,
        phone=phone,
        person_key=key,
        status=RegistrationStatus.REGISTERED.value,
        client_record_id=record.id,
        created_at=now,
    )
    session.add(registration)
    await _flush(
        session,
        {
            "uq_training_registrations_registered": FailedPrecondition(
                "another registration of this person for this type was made at the same time",
                reason="concurrent_registration",
            )
        },
    )
    body = [
        f"Bonjour {first},",
        "",
        f"Votre inscription à la formation « {training.title} » ({training.training_type}) du "
        f"{training.starts_at.date().isoformat()}, {training.location}, est enregistrée.",
    ]
    if cancelled_id is not None:
        body.append(
            f"Votre précédente inscription à une formation {training.training_type} est annulée."
        )
    body += ["", _client_number_text(record, created), "", f"Référence : {registration.id}"]
    await _mail(
        session,
        settings,
        to=email,
        subject=f"Inscription confirmée : {training.title}",
        body="\n".join(body),
    )
    return RegistrationResult(RegistrationView(registration, record), cancelled_id, created)


def _association_and(
    actor: Principal | None, association_id: str, field: str, raw: str
) -> tuple[uuid.UUID, uuid.UUID]:
    """Parses the association and a resource id, and checks the caller administers the
    association before anything is read (a stranger learns nothing)."""
    v = Validator()
    association = _uuid(v, "association_id", association_id)
    resource = _uuid(v, field, raw)
    v.raise_if_any()
    assert association is not None and resource is not None
    _require_association_admin(actor, association)
    return association, resource


async def _registration_for_admin(
    session: AsyncSession,
    actor: Principal | None,
    association_id: str,
    registration_id: str,
    *,
    lock: bool = False,
) -> TrainingRegistration:
    association, parsed = _association_and(
        actor, association_id, "registration_id", registration_id
    )
    registration = await session.get(TrainingRegistration, parsed, with_for_update=lock or None)
    if registration is None or registration.association_id != association:
        raise NotFound("registration not found")
    return registration


async def validate_registration(
    *,
    session: AsyncSession,
    settings: MembershipSettings,
    actor: Principal | None,
    now: datetime,
    association_id: str,
    registration_id: str,
) -> RegistrationView:
    """An admin validates a registration; the trainee is told at their current address."""
    registration = await _registration_for_admin(session, actor, association_id, registration_id)
    await _lock_keys(
        session,
        [
            f"registration:{registration.association_id}:{registration.person_key}:"
            f"{registration.training_type}"
        ],
    )
    await session.refresh(registration, with_for_update=True)
    if registration.status == RegistrationStatus.VALIDATED:
        raise FailedPrecondition(
            "this registration is already validated", reason="already_validated"
        )
    if registration.status == RegistrationStatus.CANCELLED:
        raise FailedPrecondition(
            f"this registration was cancelled ({registration.cancel_reason})", reason="cancelled"
        )
    registration.status = RegistrationStatus.VALIDATED.value
    registration.validated_at = now
    await _flush(
        session,
        {
            "uq_training_registrations_validated": FailedPrecondition(
                "this person already has a validated registration for this type of training",
                reason="already_validated",
            )
        },
    )
    training = await session.get(Training, registration.training_id)
    record = await session.get(ClientRecord, registration.client_record_id)
    assert training is not None and record is not None
    await _mail(
        session,
        settings,
        to=registration.email,
        subject=f"Inscription validée : {training.title}",
        body=(
            f"Bonjour {registration.first_name},\n\nVotre inscription à la formation "
            f"« {training.title} » du {training.starts_at.date().isoformat()} est validée.\n"
        ),
    )
    return RegistrationView(registration, record)


async def list_trainees(
    *,
    session: AsyncSession,
    actor: Principal | None,
    association_id: str,
    training_id: str,
    include_cancelled: bool,
    page_size: int,
    page_token: str,
) -> Page[RegistrationView]:
    association, parsed = _association_and(actor, association_id, "training_id", training_id)
    training = await session.get(Training, parsed)
    if training is None or training.association_id != association:
        raise NotFound("training not found")
    v = Validator()
    page = _parse_page(v, "trainees", page_size, page_token, [str, uuid.UUID])
    v.raise_if_any()
    columns = [TrainingRegistration.last_name, TrainingRegistration.id]
    query = (
        select(TrainingRegistration, ClientRecord)
        .join(ClientRecord, ClientRecord.id == TrainingRegistration.client_record_id)
        .where(TrainingRegistration.training_id == parsed, *_after(page, columns))
        .order_by(*columns)
        .limit(page.size + 1)
    )
    if not include_cancelled:
        query = query.where(_live_registrations())
    rows = [RegistrationView(*row) for row in (await session.execute(query)).all()]
    token = ""
    if len(rows) > page.size:
        rows = rows[: page.size]
        last = rows[-1].registration
        token = _page_token("trainees", (last.last_name, last.id))
    return Page(rows, token)


async def correct_trainee_email(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    association_id: str,
    registration_id: str,
    email: str,
) -> RegistrationView:
    """Future mails go to the corrected address; mails already sent are not sent again."""
    v = Validator()
    address = _email(v, "email", email)
    v.raise_if_any()
    registration = await _registration_for_admin(
        session, actor, association_id, registration_id, lock=True
    )
    registration.email = address
    record = await session.get(ClientRecord, registration.client_record_id)
    assert record is not None
    return RegistrationView(registration, record)


# ================================================================================================
# First-aid coverage (DPS) requests
# ================================================================================================


@dataclass(frozen=True)
class OrganiserInput:
    company_name: str
    siret: str
    client_number: int
    contact_name: str
    email: str
    phone: str


@dataclass(frozen=True)
class CoverageView:
    request: CoverageRequest
    client: ClientRecord


async def request_coverage(
    *,
    session: AsyncSession,
    settings: MembershipSettings,
    directory: Directory,
    now: datetime,
    association_id: str,
    event_name: str,
    event_date: str,
    location: str,
    expected_attendance: int,
    organiser: OrganiserInput,
) -> tuple[CoverageView, bool]:
    """Public: an organiser asks for first-aid coverage; the client record is matched or made
    and the client number mailed with the acknowledgement."""
    v = Validator()
    parsed = _uuid(v, "association_id", association_id)
    name = _text(v, "event_name", event_name)
    day = _date(v, "event_date", event_date)
    if day is not None:
        v.check(day > now.date(), "event_date", "must be after today")
    place = _text(v, "location", location)
    v.check(0 < expected_attendance <= 1_000_000, "expected_attendance", "must be positive")
    _text(v, "organiser.company_name", organiser.company_name)
    contact = _text(v, "organiser.contact_name", organiser.contact_name)
    email = _email(v, "organiser.email", organiser.email)
    phone = _phone(v, "organiser.phone", organiser.phone)
    v.raise_if_any()
    assert parsed is not None and day is not None
    found = await directory.organisation(parsed)
    if found is None or found.kind != ASSOCIATION_KIND:
        raise NotFound("association not found")
    record, created = await resolve_client_record(
        session,
        now=now,
        association_id=parsed,
        requester=RequesterInput(
            company_name=organiser.company_name,
            siret=organiser.siret,
            client_number=organiser.client_number,
            email=email,
            contact_name=contact,
        ),
        field_prefix="organiser.",
    )
    request = CoverageRequest(
        id=uuid.uuid4(),
        association_id=parsed,
        event_name=name,
        event_date=day,
        location=place,
        expected_attendance=expected_attendance,
        company_name=clean(organiser.company_name),
        siret=record.siret if organiser.siret.strip() else None,
        contact_name=contact,
        email=email,
        phone=phone,
        client_record_id=record.id,
        created_at=now,
    )
    session.add(request)
    await session.flush()
    await _mail(
        session,
        settings,
        to=email,
        subject=f"Demande de dispositif de secours reçue : {name}",
        body=(
            f"Bonjour {contact},\n\nNous avons bien reçu votre demande de dispositif prévisionnel "
            f"de secours pour « {name} » le {day.isoformat()} ({place}).\n\n"
            f"{_client_number_text(record, created)}\n\nRéférence : {request.id}\n"
        ),
    )
    return CoverageView(request, record), created


async def list_coverage_requests(
    *,
    session: AsyncSession,
    actor: Principal | None,
    association_id: str,
    page_size: int,
    page_token: str,
) -> Page[CoverageView]:
    parsed = _uuid_or_raise("association_id", association_id)
    _require_association_admin(actor, parsed)
    v = Validator()
    page = _parse_page(v, "coverage", page_size, page_token, [_moment, uuid.UUID])
    v.raise_if_any()
    columns = [CoverageRequest.created_at, CoverageRequest.id]
    query = (
        select(CoverageRequest, ClientRecord)
        .join(ClientRecord, ClientRecord.id == CoverageRequest.client_record_id)
        .where(CoverageRequest.association_id == parsed, *_after(page, columns, descending=True))
        .order_by(*(c.desc() for c in columns))
        .limit(page.size + 1)
    )
    rows = [CoverageView(*row) for row in (await session.execute(query)).all()]
    token = ""
    if len(rows) > page.size:
        rows = rows[: page.size]
        last = rows[-1].request
        token = _page_token("coverage", (last.created_at.isoformat(), last.id))
    return Page(rows, token)


# ================================================================================================
# Client records: lists, duplicates, merges, deletions, imports
# ================================================================================================


@dataclass(frozen=True)
class RecordView:
    record: ClientRecord
    registrations: int
    coverage_requests: int


async def _event_counts(
    session: AsyncSession, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, tuple[int, int]]:
    wanted = list(set(ids))
    counts = {record_id: (0, 0) for record_id in wanted}
    if not wanted:
        return counts
    registrations = {
        record_id: count
        for record_id, count in await session.execute(
            select(TrainingRegistration.client_record_id, func.count())
            .where(TrainingRegistration.client_record_id.in_(wanted))
            .group_by(TrainingRegistration.client_record_id)
        )
    }
    coverage = {
        record_id: count
        for record_id, count in await session.execute(
            select(CoverageRequest.client_record_id, func.count())
            .where(CoverageRequest.client_record_id.in_(wanted))
            .group_by(CoverageRequest.client_record_id)
        )
    }
    return {
        record_id: (int(registrations.get(record_id, 0)), int(coverage.get(record_id, 0)))
        for record_id in wanted
    }


async def _record_views(session: AsyncSession, records: Sequence[ClientRecord]) -> list[RecordView]:
    counts = await _event_counts(session, (r.id for r in records))
    return [RecordView(r, *counts[r.id]) for r in records]


async def _record_for_admin(
    session: AsyncSession, actor: Principal | None, association_id: str, record_id: str
) -> ClientRecord:
    association, parsed = _association_and(actor, association_id, "record_id", record_id)
    record = await session.get(ClientRecord, parsed)
    if record is None or record.association_id != association:
        raise NotFound("client record not found")
    return record


async def list_client_records(
    *,
    session: AsyncSession,
    actor: Principal | None,
    association_id: str,
    name_prefix: str,
    page_size: int,
    page_token: str,
) -> Page[RecordView]:
    """Live records by folded name (merged ones are left out), optionally by name prefix."""
    parsed = _uuid_or_raise("association_id", association_id)
    _require_association_admin(actor, parsed)
    v = Validator()
    page = _parse_page(v, "client-records", page_size, page_token, [str, int])
    v.raise_if_any()
    columns = [ClientRecord.name_key, ClientRecord.number]
    query = (
        select(ClientRecord)
        .where(
            ClientRecord.association_id == parsed,
            ClientRecord.merged_into_id.is_(None),
            *_after(page, columns),
        )
        .order_by(*columns)
    )
    prefix = fold(name_prefix)
    if prefix:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(ClientRecord.name_key.like(f"{escaped}%", escape="\\"))
    result = await _fetch_page(
        session, query, page, "client-records", lambda r: (r.name_key, r.number)
    )
    return Page(await _record_views(session, result.items), result.next_page_token)


async def get_client_record(
    *, session: AsyncSession, actor: Principal | None, association_id: str, record_id: str
) -> RecordView:
    record = await _record_for_admin(session, actor, association_id, record_id)
    return (await _record_views(session, [record]))[0]


@dataclass(frozen=True)
class DuplicateGroupView:
    kind: str  # "certain" or "probable"
    key: str
    records: list[RecordView]


@dataclass(frozen=True)
class DuplicateTotals:
    records: int
    certain_groups: int
    certain_pairs: int
    probable_groups: int
    probable_pairs: int
    elapsed_ms: int


async def keyed_records(
    session: AsyncSession, association_id: uuid.UUID
) -> list[tuple[uuid.UUID, str, str]]:
    """(id, name_key, token_key) of the association's live records, straight from the driver:
    100,000 rows in a fraction of a second."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    rows: list[tuple[uuid.UUID, str, str]] = await driver.fetch(
        "SELECT id, name_key, token_key FROM client_records "
        "WHERE association_id = $1 AND merged_into_id IS NULL",
        association_id,
    )
    return rows  # asyncpg records index like the tuples they stand for


async def detect_duplicates(
    session: AsyncSession, association_id: uuid.UUID
) -> tuple[dup.DuplicateReport[uuid.UUID], int]:
    """The full report over the stored keys, and the milliseconds it took."""
    started = time.perf_counter()
    rows = await keyed_records(session, association_id)
    report = dup.find_duplicates(rows)
    return report, round((time.perf_counter() - started) * 1000)


async def list_duplicates(
    *,
    session: AsyncSession,
    actor: Principal | None,
    association_id: str,
    kind: str,
    page_size: int,
    page_token: str,
) -> tuple[Page[DuplicateGroupView], DuplicateTotals]:
    """Certain groups, then probable groups, each by key; the totals cover every group. The
    report is computed afresh on each call (about a second at 100,000 records)."""
    parsed = _uuid_or_raise("association_id", association_id)
    _require_association_admin(actor, parsed)
    v = Validator()
    page = _parse_page(v, "duplicates", page_size, page_token, [int, str])
    v.raise_if_any()
    report, elapsed = await detect_duplicates(session, parsed)
    totals = DuplicateTotals(
        records=report.records,
        certain_groups=len(report.certain),
        certain_pairs=report.certain_pairs,
        probable_groups=len(report.probable),
        probable_pairs=report.probable_pairs,
        elapsed_ms=elapsed,
    )
    groups: list[tuple[int, str, list[uuid.UUID]]] = []
    if kind in ("", "certain"):
        groups += [(0, g.key, g.ids) for g in report.certain]
    if kind in ("", "probable"):
        groups += [(1, g.key, g.ids) for g in report.probable]
    if page.after is not None:
        after = (page.after[0], page.after[1])
        groups = [g for g in groups if (g[0], g[1]) > after]
    token = ""
    if len(groups) > page.size:
        groups = groups[: page.size]
        token = _page_token("duplicates", (groups[-1][0], groups[-1][1]))
    ids = [record_id for _, _, group_ids in groups for record_id in group_ids]
    records = {
        r.id: r for r in await session.scalars(select(ClientRecord).where(ClientRecord.id.in_(ids)))
    }
    views = {view.record.id: view for view in await _record_views(session, list(records.values()))}
    result = [
        DuplicateGroupView(
            "certain" if order == 0 else "probable",
            key,
            sorted((views[i] for i in group_ids), key=lambda view: view.record.number),
        )
        for order, key, group_ids in groups
    ]
    return Page(result, token), totals


async def find_duplicates_of(
    *, session: AsyncSession, actor: Principal | None, association_id: str, record_id: str
) -> tuple[RecordView, list[tuple[str, RecordView]]]:
    """The merge screen: the record's certain duplicates (same folded name) and probable ones
    (its words contain, or are contained in, another's with at most two words more, or differ by
    one rare slip) — the pairs `ListDuplicates` counts, looked up through the indexes."""
    record = await _record_for_admin(session, actor, association_id, record_id)
    live = and_(
        ClientRecord.association_id == record.association_id,
        ClientRecord.merged_into_id.is_(None),
        ClientRecord.id != record.id,
    )
    certain = list(
        await session.scalars(
            select(ClientRecord).where(live, ClientRecord.name_key == record.name_key)
        )
    )
    probable: list[ClientRecord] = []
    if record.token_key:
        words = record.token_key.split()
        smaller = [record.token_key, *contained_keys(record.token_key)]
        array = func.string_to_array(ClientRecord.token_key, " ")
        probable = list(
            await session.scalars(
                select(ClientRecord).where(
                    live,
                    ClientRecord.name_key != record.name_key,
                    or_(
                        ClientRecord.token_key.in_(smaller),
                        and_(
                            array.op("@>")(words),
                            func.cardinality(array) <= len(words) + MAX_EXTRA_WORDS,
                        )
                        if len(words) >= 2
                        else ClientRecord.token_key == record.token_key,
                    ),
                )
            )
        )
        probable += await _slipped(session, record, live)
    certain_views = await _record_views(session, sorted(certain, key=lambda r: r.number))
    unique = {r.id: r for r in probable}
    probable_views = await _record_views(session, sorted(unique.values(), key=lambda r: r.number))
    candidates = [("certain", view) for view in certain_views]
    candidates += [("probable", view) for view in probable_views]
    return (await _record_views(session, [record]))[0], candidates


async def _slipped(
    session: AsyncSession, record: ClientRecord, live: ColumnElement[bool]
) -> list[ClientRecord]:
    """Records with the same words but one slipped (the rarity rule of `duplicates`), found
    through the words index: for each word, the records holding all the others."""
    words = record.token_key.split()
    if len(words) < 2:
        return []
    array = func.string_to_array(ClientRecord.token_key, " ")
    counts: dict[str, int] = {}

    async def count(word: str) -> int:
        if word not in counts:
            counts[word] = int(
                await session.scalar(
                    select(func.count()).where(
                        ClientRecord.association_id == record.association_id,
                        ClientRecord.merged_into_id.is_(None),
                        array.op("@>")([word]),
                    )
                )
                or 0
            )
        return counts[word]

    found: list[ClientRecord] = []
    for index, word in enumerate(words):
        if not word.isalpha() or len(word) < dup.TYPO_MIN_LENGTH - 1:
            continue
        rest = words[:index] + words[index + 1 :]
        candidates = await session.scalars(
            select(ClientRecord).where(
                live,
                ClientRecord.token_key != record.token_key,
                array.op("@>")(rest),
                func.cardinality(array) == len(words),
            )
        )
        for candidate in candidates:
            other = set(candidate.token_key.split()) - set(rest)
            if len(other) != 1:
                continue
            (slipped,) = other
            if not dup.one_slip(word, slipped):
                continue
            known = {word: await count(word), slipped: await count(slipped)}
            pair = dup.pair_kind(
                (record.name_key, record.token_key),
                (candidate.name_key, candidate.token_key),
                known,
            )
            if pair == "probable":
                found.append(candidate)
    return found


@dataclass(frozen=True)
class MergePreview:
    source: RecordView
    target: RecordView


async def _merge_pair(
    session: AsyncSession,
    actor: Principal | None,
    association_id: str,
    source_id: str,
    target_id: str,
    *,
    lock: bool,
) -> tuple[ClientRecord, ClientRecord]:
    v = Validator()
    association = _uuid(v, "association_id", association_id)
    source_uuid = _uuid(v, "source_id", source_id)
    target_uuid = _uuid(v, "target_id", target_id)
    if source_uuid is not None and source_uuid == target_uuid:
        v.check(False, "target_id", "must differ from source_id")
    v.raise_if_any()
    assert association is not None
    _require_association_admin(actor, association)
    # Both rows locked in one order: concurrent merges of the same records queue up, no deadlock.
    query = select(ClientRecord).where(ClientRecord.id.in_([source_uuid, target_uuid]))
    if lock:
        query = query.order_by(ClientRecord.id).with_for_update()
    found = {r.id: r for r in await session.scalars(query)}
    source, target = found.get(source_uuid), found.get(target_uuid)  # type: ignore[arg-type]
    for record, which in ((source, "source"), (target, "target")):
        if record is None or record.association_id != association:
            raise NotFound(f"{which} client record not found")
    assert source is not None and target is not None
    if source.merged_into_id is not None:
        into = await session.get(ClientRecord, source.merged_into_id)
        raise FailedPrecondition(
            f"client {source.number} was already merged into client "
            f"{into.number if into else source.merged_into_id}",
            reason="already_merged",
        )
    if target.merged_into_id is not None:
        into = await session.get(ClientRecord, target.merged_into_id)
        raise FailedPrecondition(
            f"client {target.number} was merged into client "
            f"{into.number if into else target.merged_into_id}: merge into that one instead",
            reason="target_merged",
        )
    return source, target


async def preview_merge(
    *,
    session: AsyncSession,
    actor: Principal | None,
    association_id: str,
    source_id: str,
    target_id: str,
) -> MergePreview:
    source, target = await _merge_pair(
        session, actor, association_id, source_id, target_id, lock=False
    )
    views = await _record_views(session, [source, target])
    return MergePreview(views[0], views[1])


@dataclass(frozen=True)
class MergeResult:
    source: RecordView
    target: RecordView
    registrations_moved: int
    coverage_moved: int
    audit: ClientRecordAudit


def _audit(
    session: AsyncSession,
    *,
    now: datetime,
    actor: Principal | None,
    event: str,
    record: ClientRecord,
    target: ClientRecord | None = None,
    **detail: object,
) -> ClientRecordAudit:
    entry = ClientRecordAudit(
        id=uuid.uuid4(),
        association_id=record.association_id,
        event=event,
        record_id=record.id,
        record_number=record.number,
        target_id=target.id if target else None,
        target_number=target.number if target else None,
        detail={key: str(value) for key, value in detail.items() if value is not None},
        actor_id=actor_id(actor),
        at=now,
    )
    session.add(entry)
    return entry


async def merge_client_records(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    association_id: str,
    source_id: str,
    target_id: str,
) -> MergeResult:
    """Moves every event (training registrations, coverage requests) of the source to the
    target and marks the source merged; audited. Of two concurrent merges of one source, the
    second finds it merged and is refused with the number it went to."""
    source, target = await _merge_pair(
        session, actor, association_id, source_id, target_id, lock=True
    )
    moved_registrations = cast(
        "CursorResult[Any]",
        await session.execute(
            update(TrainingRegistration)
            .where(TrainingRegistration.client_record_id == source.id)
            .values(client_record_id=target.id)
        ),
    ).rowcount
    moved_coverage = cast(
        "CursorResult[Any]",
        await session.execute(
            update(CoverageRequest)
            .where(CoverageRequest.client_record_id == source.id)
            .values(client_record_id=target.id)
        ),
    ).rowcount
    source.merged_into_id = target.id
    source.merged_at = now
    # The target keeps its own details; what it lacks is taken from the source.
    target.siret = target.siret or source.siret
    target.email = target.email or source.email
    target.contact_name = target.contact_name or source.contact_name
    entry = _audit(
        session,
        now=now,
        actor=actor,
        event="merged",
        record=source,
        target=target,
        registrations_moved=moved_registrations,
        coverage_requests_moved=moved_coverage,
        source_name=source.company_name,
        target_name=target.company_name,
    )
    await session.flush()
    views = await _record_views(session, [source, target])
    return MergeResult(views[0], views[1], int(moved_registrations), int(moved_coverage), entry)


async def delete_client_record(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    association_id: str,
    record_id: str,
    confirmation: str,
) -> ClientRecordAudit:
    """The deliberate, irreversible step after a merge: only a record without events, and only
    with the confirmation word."""
    v = Validator()
    v.check(
        confirmation.strip().upper() in DELETE_CONFIRMATIONS,
        "confirmation",
        "type SUPPRIMER (or DELETE) to confirm: deletion cannot be undone",
    )
    v.raise_if_any()
    record = await _record_for_admin(session, actor, association_id, record_id)
    await session.refresh(record, with_for_update=True)
    registrations, coverage = (await _event_counts(session, [record.id]))[record.id]
    if registrations or coverage:
        raise FailedPrecondition(
            f"client {record.number} still has {registrations} training registration(s) and "
            f"{coverage} coverage request(s): merge them into another record first",
            reason="record_not_empty",
        )
    # Records merged into this one now point where this one went (or nowhere).
    await session.execute(
        update(ClientRecord)
        .where(ClientRecord.merged_into_id == record.id)
        .values(merged_into_id=record.merged_into_id)
    )
    entry = _audit(
        session,
        now=now,
        actor=actor,
        event="deleted",
        record=record,
        company_name=record.company_name,
        siret=record.siret,
        merged_into=record.merged_into_id,
    )
    await session.execute(delete(ClientRecord).where(ClientRecord.id == record.id))
    await session.flush()
    return entry


async def list_client_record_audit(
    *,
    session: AsyncSession,
    actor: Principal | None,
    association_id: str,
    page_size: int,
    page_token: str,
) -> Page[ClientRecordAudit]:
    parsed = _uuid_or_raise("association_id", association_id)
    _require_association_admin(actor, parsed)
    v = Validator()
    page = _parse_page(v, "record-audit", page_size, page_token, [int])
    v.raise_if_any()
    query = (
        select(ClientRecordAudit)
        .where(
            ClientRecordAudit.association_id == parsed,
            *_after(page, [ClientRecordAudit.seq], descending=True),
        )
        .order_by(ClientRecordAudit.seq.desc())
    )
    return await _fetch_page(session, query, page, "record-audit", lambda e: (e.seq,))


@dataclass(frozen=True)
class ImportedRecord:
    external_ref: str
    company_name: str
    siret: str
    email: str
    contact_name: str


async def import_client_records(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    association_id: str,
    records: Sequence[ImportedRecord],
) -> tuple[int, int]:
    """Bulk load (ops_admin or a service): keys computed here, one INSERT … SELECT unnest per
    call, a ref already imported is skipped. Returns (inserted, skipped)."""
    actor = _require(actor)
    if not (actor.is_service or is_ops_admin(actor)):
        raise PermissionDenied("bulk imports are for operators (ops_admin) and services")
    v = Validator()
    parsed = _uuid(v, "association_id", association_id)
    v.check(len(records) <= MAX_IMPORT, "records", f"at most {MAX_IMPORT} records per call")
    columns: dict[str, list[Any]] = {
        name: []
        for name in (
            "id",
            "external_ref",
            "company_name",
            "siret",
            "email",
            "contact_name",
            "name_key",
            "token_key",
        )
    }
    for index, item in enumerate(records):
        if len(v.violations) >= 20:
            break
        ref = item.external_ref.strip()
        name = clean(item.company_name)
        v.check(0 < len(ref) <= 64, f"records[{index}].external_ref", "is required (64 at most)")
        v.check(0 < len(name) <= 200, f"records[{index}].company_name", "is required (200 at most)")
        siret = _siret(v, f"records[{index}].siret", item.siret)
        email = item.email.strip()
        v.check(
            not email or (len(email) <= 320 and bool(_SIMPLE_EMAIL.match(email))),
            f"records[{index}].email",
            "is not an e-mail address",
        )
        name_key, token_key = name_keys(name)
        columns["id"].append(uuid.uuid4())
        columns["external_ref"].append(ref)
        columns["company_name"].append(name)
        columns["siret"].append(siret)
        columns["email"].append(email or None)
        columns["contact_name"].append(clean(item.contact_name)[:200] or None)
        columns["name_key"].append(name_key)
        columns["token_key"].append(token_key)
    v.raise_if_any()
    if not records:
        return 0, 0
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    status = await driver.execute(
        """
        INSERT INTO client_records (id, association_id, external_ref, company_name, siret, email,
                                    contact_name, name_key, token_key, created_at)
        SELECT r.id, $1, r.external_ref, r.company_name, r.siret, r.email, r.contact_name,
               r.name_key, r.token_key, $2
        FROM unnest($3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                    $9::text[], $10::text[])
             AS r(id, external_ref, company_name, siret, email, contact_name, name_key, token_key)
        ON CONFLICT (association_id, external_ref) DO NOTHING
        """,
        parsed,
        now,
        *columns.values(),
    )
    inserted = int(status.rsplit(" ", 1)[-1])
    return inserted, len(records) - inserted
