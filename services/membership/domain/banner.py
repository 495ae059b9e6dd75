"""Banner programs (their benefits and options) and workshop memberships: enrolment, contact
details, renewal date, end. What the renewal workflow must hear of is recorded, in the same
transaction, in the workflow outbox (start) or the signal outbox (changes)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit import names
from services.kit.auth import Principal
from services.kit.clock import local_today
from services.kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Validator,
)
from services.kit.i18n import MAX_TRANSLATIONS, check_tag
from services.kit.outbox import enqueue
from services.kit.paging import Page, keyset_after as _after, parse_page as _parse_page
from services.kit.temporal import MEMBERSHIP, WORKSHOP_CODE
from services.membership.domain.common import (
    WORKSHOP_KIND,
    Directory,
    OrganisationInfo,
    already_taken,
    check_code,
    check_date,
    check_email,
    check_long_text,
    check_phone,
    check_text,
    check_time_zone,
    check_uuid,
    fetch_page,
    flush_or_raise,
    operator_on_workshop,
    parse_moment,
    parse_uuid,
    require_operator,
    workshop_party,
)
from services.membership.domain.normalise import clean
from services.membership.models import (
    MembershipOption,
    MembershipStatus,
    Program,
    ProgramOption,
    RenewalLetter,
    RenewalLetterResend,
    RenewalSignal,
    WorkshopMembership,
    outbox,
)
from services.membership.settings import MembershipSettings
from workflows.contracts.membership import RENEWAL_WORKFLOW, renewal_workflow_id

MAX_OPTIONS = 50


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
    settings: MembershipSettings,
    actor: Principal | None,
    now: datetime,
    code: str,
    name: str,
    description: str,
    benefits: Sequence[str],
    time_zone: str = "",
) -> ProgramView:
    """A program, in the time zone it lives by (the service's default unless named)."""
    require_operator(actor)
    v = Validator()
    zone = (
        check_time_zone(v, "time_zone", time_zone)
        if time_zone.strip()
        else settings.default_time_zone
    )
    code = check_code(v, "code", code)
    name = check_text(v, "name", name)
    key = names.check_name(v, "name", name)
    description = check_long_text(v, "description", description, limit=4000, required=False)
    v.check(len(benefits) <= 30, "benefits", "must list at most 30 benefits")
    cleaned = [clean(benefit) for benefit in benefits]
    for index, benefit in enumerate(cleaned):
        v.check(bool(benefit), f"benefits[{index}]", "must not be empty", code="string_too_short")
        v.check(
            len(benefit) <= 300,
            f"benefits[{index}]",
            "must be at most 300 characters",
            code="string_too_long",
        )
    v.raise_if_any()
    why = "is already the name of a program (as people read it)"
    name_taken = AlreadyExists(f"name: {why}", reason="name_taken", violations=[("name", why)])
    if await session.scalar(select(Program.id).where(Program.name_key == key)) is not None:
        raise name_taken
    program = Program(
        id=uuid.uuid4(),
        code=code,
        name=name,
        name_key=key,
        description=description,
        benefits=cleaned,
        time_zone=zone,
        created_at=now,
    )
    session.add(program)
    await flush_or_raise(
        session,
        {
            "uq_programs_code": already_taken("code", "is already the code of a program"),
            "uq_programs_name_key": name_taken,
        },
    )
    return ProgramView(program, [])


async def list_programs(
    *, session: AsyncSession, actor: Principal | None, page_size: int, page_token: str
) -> Page[ProgramView]:
    require_operator(actor)
    v = Validator()
    page = _parse_page(v, "programs", page_size, page_token, [str])
    v.raise_if_any()
    query = select(Program).where(*_after(page, [Program.code])).order_by(Program.code)
    result = await fetch_page(session, query, page, "programs", lambda p: (p.code,))
    options = await _options_of(session, (p.id for p in result.items))
    return Page([ProgramView(p, options[p.id]) for p in result.items], result.next_page_token)


@dataclass(frozen=True)
class OptionTranslation:
    """An option's name and benefit in another language (a BCP 47 tag: "pt-BR")."""

    locale: str
    name: str
    benefit: str


def _option_translations(
    v: Validator, translations: Sequence[OptionTranslation]
) -> dict[str, dict[str, str]]:
    """Each translation: a well-formed tag, once, within the original's limits."""
    v.check(
        len(translations) <= MAX_TRANSLATIONS,
        "translations",
        f"must hold at most {MAX_TRANSLATIONS} translations",
        code="too_long",
    )
    checked: dict[str, dict[str, str]] = {}
    for index, text in enumerate(translations):
        where = f"translations[{index}]"
        check_tag(v, f"{where}.locale", text.locale)
        v.check(
            text.locale not in checked,
            f"{where}.locale",
            "is listed twice",
            code="duplicate_language",
        )
        checked[text.locale] = {
            "name": check_text(v, f"{where}.name", text.name),
            "benefit": check_long_text(
                v, f"{where}.benefit", text.benefit, limit=1000, required=True
            ),
        }
    return checked


async def add_program_option(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    program_id: str,
    code: str,
    name: str,
    benefit: str,
    translations: Sequence[OptionTranslation] = (),
) -> ProgramOption:
    require_operator(actor)
    v = Validator()
    parsed = check_uuid(v, "program_id", program_id)
    code = check_code(v, "code", code)
    name = check_text(v, "name", name)
    benefit = check_long_text(v, "benefit", benefit, limit=1000, required=True)
    texts = _option_translations(v, translations)
    v.raise_if_any()
    assert parsed is not None
    if await session.get(Program, parsed) is None:
        raise NotFound("program not found")
    option = ProgramOption(
        id=uuid.uuid4(),
        program_id=parsed,
        code=code,
        name=name,
        benefit=benefit,
        created_at=now,
        translations=texts,
    )
    session.add(option)
    await flush_or_raise(
        session,
        {
            "uq_program_options_program_id": already_taken(
                "code", "is already an option of this program"
            )
        },
    )
    return option


async def update_program_option(
    *,
    session: AsyncSession,
    actor: Principal | None,
    program_id: str,
    option_id: str,
    name: str,
    benefit: str,
    translations: Sequence[OptionTranslation],
) -> ProgramOption:
    """Replaces an option's name, benefit and translations; its code, which workshops' requests
    and letters name, stays."""
    require_operator(actor)
    v = Validator()
    program = check_uuid(v, "program_id", program_id)
    parsed = check_uuid(v, "option_id", option_id)
    name = check_text(v, "name", name)
    benefit = check_long_text(v, "benefit", benefit, limit=1000, required=True)
    texts = _option_translations(v, translations)
    v.raise_if_any()
    option = await session.get(ProgramOption, parsed, with_for_update=True)
    if option is None or option.program_id != program:
        raise NotFound("option not found")
    option.name, option.benefit, option.translations = name, benefit, texts
    await session.flush()
    return option


async def set_program_time_zone(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    program_id: str,
    time_zone: str,
) -> ProgramView:
    """The program team moves a program to another time zone: the renewal workflow of every
    active membership that follows it hears of it (signal outbox) and plans its letter and
    window again at midnight of the new zone."""
    require_operator(actor)
    v = Validator()
    parsed = check_uuid(v, "program_id", program_id)
    zone = check_time_zone(v, "time_zone", time_zone)
    v.raise_if_any()
    assert parsed is not None
    program = await session.get(Program, parsed, with_for_update=True)
    if program is None:
        raise NotFound("program not found")
    if program.time_zone != zone:
        program.time_zone = zone
        followers = (
            update(WorkshopMembership)
            .where(
                WorkshopMembership.program_id == program.id,
                WorkshopMembership.status == MembershipStatus.ACTIVE.value,
                WorkshopMembership.time_zone == "",
            )
            .values(version=WorkshopMembership.version + 1, updated_at=now)
            .returning(WorkshopMembership.id, WorkshopMembership.version)
        )
        changed = (await session.execute(followers)).all()
        if changed:
            await session.execute(
                insert(RenewalSignal),
                [
                    {"membership_id": mid, "version": version, "created_at": now}
                    for mid, version in changed
                ],
            )
    options = await _options_of(session, [program.id])
    return ProgramView(program, options[program.id])


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
    # This renewal's anniversary letter (None before it leaves), and each time it was sent again.
    letter: RenewalLetter | None = None
    resends: tuple[RenewalLetterResend, ...] = ()

    @property
    def time_zone(self) -> str:
        """The zone the membership's days are counted in: the workshop's, else the program's."""
        return self.membership.time_zone or self.program.time_zone


async def membership_time_zone(session: AsyncSession, membership: WorkshopMembership) -> str:
    """The zone the membership's days are counted in: the workshop's, else its program's."""
    if membership.time_zone:
        return membership.time_zone
    program = await session.get(Program, membership.program_id)
    assert program is not None
    return program.time_zone


async def membership_view(session: AsyncSession, membership: WorkshopMembership) -> MembershipView:
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
    letter = await session.get(RenewalLetter, (membership.id, membership.renewal_number))
    resends = await session.scalars(
        select(RenewalLetterResend)
        .where(
            RenewalLetterResend.membership_id == membership.id,
            RenewalLetterResend.renewal_number == membership.renewal_number,
        )
        .order_by(RenewalLetterResend.at, RenewalLetterResend.id)
    )
    return MembershipView(
        membership,
        program,
        [o for o in offered if o.id in held],
        offered,
        letter,
        tuple(resends),
    )


def _check_contacts(
    v: Validator,
    workshop: WorkshopInput,
    wholesaler: ContactInput,
    distributor: ContactInput,
    *,
    default_name: str = "",
    name_required: bool = True,
) -> tuple[WorkshopInput, ContactInput, ContactInput]:
    """`name_required` False: the workshop is unknown (its 404 follows the form's own mistakes),
    so a name it would have given is not the form's mistake."""
    checked_workshop = WorkshopInput(
        name=check_text(v, "workshop.name", workshop.name or default_name, required=name_required),
        email=check_email(v, "workshop.email", workshop.email),
        phone=check_phone(v, "workshop.phone", workshop.phone),
        address_line=check_text(v, "workshop.address_line", workshop.address_line, required=False),
        postal_code=check_text(
            v, "workshop.postal_code", workshop.postal_code, limit=16, required=False
        ),
        city=check_text(v, "workshop.city", workshop.city, limit=100, required=False),
    )
    checked = []
    for field, contact in (("wholesaler", wholesaler), ("distributor", distributor)):
        checked.append(
            ContactInput(
                name=check_text(v, f"{field}.name", contact.name),
                email=check_email(v, f"{field}.email", contact.email),
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


def _require_workshop(organisation: OrganisationInfo | None) -> None:
    """A path id that names no workshop: 404 (issue #24), with the field and its code."""
    if organisation is None or organisation.kind != WORKSHOP_KIND:
        why, code = (
            ("names no organisation", "unknown_organisation")
            if organisation is None
            else (f"is a {organisation.kind}, not a workshop", "not_a_workshop")
        )
        raise NotFound("workshop not found", violations=[("workshop_id", why, code)])


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
    time_zone: str = "",
) -> MembershipView:
    """Enrols a workshop; its renewal workflow starts through the outbox in this transaction.

    The renewal date is a day of the workshop's time zone (`time_zone`, when it differs from
    the program's) and must be after today there."""
    require_operator(actor)
    v = Validator()
    workshop_uuid = check_uuid(v, "workshop_id", workshop_id)
    program_uuid = check_uuid(v, "program_id", program_id)
    renewal = check_date(v, "renewal_date", renewal_date)
    own_zone = check_time_zone(v, "time_zone", time_zone, required=False)
    v.check(len(option_ids) <= MAX_OPTIONS, "option_ids", f"at most {MAX_OPTIONS} options")
    options = [
        check_uuid(v, f"option_ids[{i}]", raw) for i, raw in enumerate(option_ids[:MAX_OPTIONS])
    ]
    organisation = None
    if workshop_uuid is not None:
        organisation = await directory.organisation(workshop_uuid)
    checked_workshop, checked_wholesaler, checked_distributor = _check_contacts(
        v,
        workshop,
        wholesaler,
        distributor,
        default_name=organisation.name if organisation else "",
        name_required=organisation is not None,
    )
    program = await session.get(Program, program_uuid) if program_uuid else None
    if program_uuid is not None and program is None:
        v.check(False, "program_id", "no such program", code="unknown_program")
    zone = own_zone or (program.time_zone if program is not None else settings.default_time_zone)
    if renewal is not None:
        today = local_today(now, zone)
        v.check(
            renewal > today,
            "renewal_date",
            f"must be after today ({today.isoformat()})",
            code="in_the_past",
        )
    offered = (await _options_of(session, [program.id]))[program.id] if program else []
    offered_ids = {o.id for o in offered}
    strays = [
        index
        for index, option_id in enumerate(options)
        if option_id is not None and program is not None and option_id not in offered_ids
    ]
    # Named one by one up to a few: the whole list travels in the status (gRPC headers).
    for index in strays[:5]:
        v.check(
            False, f"option_ids[{index}]", "is not an option of the program", code="unknown_option"
        )
    if len(strays) > 5:
        v.check(
            False,
            "option_ids",
            f"{len(strays)} ids are not options of the program",
            code="unknown_option",
        )
    v.raise_if_any()
    assert workshop_uuid is not None and program is not None and renewal is not None
    _require_workshop(organisation)
    membership = WorkshopMembership(
        id=uuid.uuid4(),
        workshop_id=workshop_uuid,
        program_id=program.id,
        status=MembershipStatus.ACTIVE.value,
        renewal_date=renewal,
        anniversary=renewal,
        renewal_number=1,
        time_zone=own_zone,
        workshop_code=organisation.code if organisation is not None else "",
        window_open=False,
        version=1,
        created_at=now,
        updated_at=now,
    )
    _apply_contacts(membership, checked_workshop, checked_wholesaler, checked_distributor)
    session.add(membership)
    await flush_or_raise(
        session,
        {
            "uq_workshop_memberships_active_workshop": already_taken(
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
        search_attributes={
            MEMBERSHIP.name: str(membership.id),
            **({WORKSHOP_CODE.name: membership.workshop_code} if membership.workshop_code else {}),
        },
    )
    await session.flush()
    return await membership_view(session, membership)


async def membership_of(
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
    parsed = parse_uuid("workshop_id", workshop_id)
    workshop_party(actor, parsed)
    return await membership_view(session, await membership_of(session, parsed))


async def list_workshop_memberships(
    *, session: AsyncSession, actor: Principal | None, page_size: int, page_token: str
) -> Page[MembershipView]:
    require_operator(actor)
    v = Validator()
    page = _parse_page(v, "memberships", page_size, page_token, [parse_moment, uuid.UUID])
    v.raise_if_any()
    columns = [WorkshopMembership.created_at, WorkshopMembership.id]
    query = select(WorkshopMembership).where(*_after(page, columns)).order_by(*columns)
    result = await fetch_page(
        session, query, page, "memberships", lambda m: (m.created_at.isoformat(), m.id)
    )
    return Page([await membership_view(session, m) for m in result.items], result.next_page_token)


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
    parsed = parse_uuid("workshop_id", workshop_id)
    operator_on_workshop(actor, parsed, "change its contact details")
    # The membership first: 404 for a workshop without one, and its name when none is sent.
    membership = await membership_of(session, parsed, lock=True, active=True)
    v = Validator()
    checked = _check_contacts(
        v, workshop, wholesaler, distributor, default_name=membership.workshop_name
    )
    v.raise_if_any()
    _apply_contacts(membership, *checked)
    membership.updated_at = now
    return await membership_view(session, membership)


async def change_renewal_date(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    workshop_id: str,
    renewal_date: str,
) -> MembershipView:
    """A new (corrected) renewal date, which becomes the anniversary later renewals are computed
    from; the renewal workflow hears of it by a signal sent through an outbox. A letter already
    sent for this renewal is not sent again (see `renewals.resend_anniversary_letter`)."""
    parsed = parse_uuid("workshop_id", workshop_id)
    operator_on_workshop(actor, parsed, "change its renewal date")
    v = Validator()
    renewal = check_date(v, "renewal_date", renewal_date)
    v.raise_if_any()
    assert renewal is not None
    membership = await membership_of(session, parsed, lock=True, active=True)
    today = local_today(now, await membership_time_zone(session, membership))
    if renewal <= today:
        raise InvalidArgument(
            [("renewal_date", f"must be after today ({today.isoformat()})", "in_the_past")]
        )
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
        return await membership_view(session, membership)
    membership.renewal_date = renewal
    membership.anniversary = renewal
    membership.updated_at = now
    _signal_renewal(session, membership, now)
    return await membership_view(session, membership)


async def end_workshop_membership(
    *, session: AsyncSession, actor: Principal | None, now: datetime, workshop_id: str, reason: str
) -> MembershipView:
    parsed = parse_uuid("workshop_id", workshop_id)
    operator_on_workshop(actor, parsed, "end its membership")
    v = Validator()
    reason = check_long_text(v, "reason", reason, limit=1000, required=True)
    v.raise_if_any()
    membership = await membership_of(session, parsed, lock=True, active=True)
    membership.status = MembershipStatus.ENDED.value
    membership.ended_on = local_today(now, await membership_time_zone(session, membership))
    membership.end_reason = reason
    membership.window_open = False
    membership.updated_at = now
    _signal_renewal(session, membership, now)
    return await membership_view(session, membership)


async def set_workshop_time_zone(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    workshop_id: str,
    time_zone: str,
) -> MembershipView:
    """The program team names the workshop's own time zone ("" = its program's); the renewal
    workflow hears of it and plans its letter and window at midnight there."""
    parsed = parse_uuid("workshop_id", workshop_id)
    operator_on_workshop(actor, parsed, "change its time zone")
    v = Validator()
    zone = check_time_zone(v, "time_zone", time_zone, required=False)
    v.raise_if_any()
    membership = await membership_of(session, parsed, lock=True, active=True)
    if membership.time_zone != zone:
        membership.time_zone = zone
        membership.updated_at = now
        _signal_renewal(session, membership, now)
    return await membership_view(session, membership)
