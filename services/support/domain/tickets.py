"""Tickets: the extranet form that opens one (its SLA starts), and reading them: a company's
list with search, the team's queue by nearest deadline, one ticket's whole history.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, literal, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Validator,
)
from services.kit.i18n import DEFAULT_LANGUAGE, language_of, pick
from services.kit.paging import Page, parse_page
from services.support.domain.categories import consume_view
from services.support.domain.common import (
    ACTIVE_STATUSES,
    CUSTOMER_ROLE_BY_KIND,
    TEXT_MAX,
    TITLE_MAX,
    aware,
    check_text,
    customer_organisations,
    fetch_page,
    fold,
    is_agent,
    parse_kind,
    parse_priority,
    parse_uuid,
    require_agent,
    require_user,
    ticket_for,
)
from services.support.domain.mails import CustomerAddress, opened_receipt
from services.support.domain.sla import clock_rows, pause_rows, start_sla
from services.support.models import (
    Attachment,
    Audience,
    Category,
    Channel,
    ConsultingEntry,
    Contract,
    Kind,
    Message,
    OrganisationKind,
    Priority,
    SlaClock,
    SlaEvent,
    SlaPause,
    Status,
    Ticket,
)
from services.support.settings import SupportSettings

EXAMPLE_MAX = 500


_SCREEN_CODE = re.compile(r"^[A-Za-z0-9_.\- ]{1,40}$")
_NUMBER = re.compile(r"^#?(\d{1,18})$")


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
    # The customer's language (a BCP 47 tag); unsupported or unset: French.
    language: str = ""


async def customer_contract(
    session: AsyncSession, actor: Principal, organisation_id: str, kind: OrganisationKind
) -> Contract:
    """The caller's organisation of that kind with a contract, where they hold the right role."""
    role = CUSTOMER_ROLE_BY_KIND[kind]
    own = {org for org in customer_organisations(actor) if role in actor.roles_in(str(org))}
    if organisation_id.strip():
        v = Validator()
        wanted = parse_uuid(v, "organisation_id", organisation_id)
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


async def category_for(
    session: AsyncSession, v: Validator, raw: str, audience: Audience
) -> Category | None:
    category_id = parse_uuid(v, "category_id", raw)
    if category_id is None:
        return None
    category = await session.get(Category, category_id)
    if category is None or category.audience != audience.value:
        v.check(False, "category_id", "is not a category of this form", code="unknown_category")
        return None
    return category


def search_text_of(ticket: Ticket) -> str:
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
    customer_address: CustomerAddress | None = None,
) -> Ticket:
    """The extranet form: every field required, each missing one named; the SLA starts, and the
    customer is mailed a receipt in their language."""
    actor = require_user(actor)
    v = Validator()
    category = await category_for(session, v, form.category_id, Audience.CUSTOMER)
    check_text(v, "title", form.title, TITLE_MAX)
    check_text(v, "description", form.description, TEXT_MAX, lines=True)
    v.require("screen_code", form.screen_code)
    v.check(
        not form.screen_code.strip() or bool(_SCREEN_CODE.match(form.screen_code.strip())),
        "screen_code",
        "must be 1 to 40 letters, digits, spaces, '.', '_' or '-' (e.g. ATW0001)",
    )
    check_text(v, "example_record", form.example_record, EXAMPLE_MAX, lines=True)
    priority = parse_priority(v, form.priority, default=Priority.NORMAL)
    kind = parse_kind(v, form.kind, default=Kind.SUPPORT)
    v.raise_if_any()
    assert category is not None and priority is not None and kind is not None
    contract = await customer_contract(
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
        language=language_of(form.language) or DEFAULT_LANGUAGE,
    )
    ticket.search_text = search_text_of(ticket)
    session.add(ticket)
    await session.flush()
    await consume_view(session, actor, form.view_id, category.id, ticket)
    # The number (an identity column) is assigned by the insert; the receipt quotes it.
    await session.refresh(ticket, ["number"])
    receipt = await opened_receipt(
        settings,
        ticket,
        pick(category.translations, ticket.language, "name", category.name),
        customer_address,
    )
    await start_sla(session, settings, ticket, now=now, receipt=receipt)
    return ticket


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
    actor = require_user(actor)
    v = Validator()
    wanted_statuses = _statuses(v, statuses)
    check_text(v, "query", query, 200, required=False)
    organisation = parse_uuid(v, "organisation_id", organisation_id, required=False)
    parsed_kind = parse_kind(v, kind, default=Kind.SUPPORT) if kind else None
    page = parse_page(v, "tickets", page_size, page_token, [aware, uuid.UUID])
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
    return await fetch_page(
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
    require_agent(actor)
    v = Validator()
    wanted = _statuses(v, statuses) or [s.value for s in ACTIVE_STATUSES]
    page = parse_page(v, "queue", page_size, page_token, [aware, uuid.UUID])
    v.raise_if_any()
    due = func.coalesce(Ticket.next_due_at, literal(aware(_FAR_FUTURE)))
    query = select(Ticket).where(Ticket.status.in_(wanted)).order_by(due, Ticket.id)
    if page.after is not None:
        query = query.where(tuple_(due, Ticket.id) > tuple_(*page.after))
    return await fetch_page(
        session,
        query,
        page,
        "queue",
        lambda t: ((t.next_due_at or aware(_FAR_FUTURE)).isoformat(), t.id),
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
    ticket, _ = await ticket_for(session, actor, ticket_id)
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
        clocks=await clock_rows(session, ticket.id),
        events=list(events),
        pauses=await pause_rows(session, ticket.id),
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
