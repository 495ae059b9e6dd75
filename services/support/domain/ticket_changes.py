"""Changing a ticket: replies (mailed to the customer when the team answers), status moves along
the allowed transitions, priority, support or consulting, consulting time logged.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import (
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Validator,
)
from services.support.domain.common import (
    TEXT_MAX,
    check_text,
    parse_kind,
    parse_priority,
    parse_uuid,
    require_active,
    require_agent,
    ticket_for,
)
from services.support.domain.mails import CustomerAddress, mail_answer
from services.support.domain.sla import ticket_event
from services.support.models import (
    ConsultingEntry,
    Kind,
    Message,
    Side,
    Status,
    Ticket,
)
from services.support.settings import SupportSettings
from workflows.contracts.support import AGENT_REPLY, CUSTOMER_REPLY, POLICY_CHANGE, STATUS_CHANGE

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

NOTE_MAX = 500
MAX_CONSULTING_MINUTES = 24 * 60


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
    ticket, side = await ticket_for(session, actor, ticket_id, lock=True)
    assert actor is not None
    v = Validator()
    check_text(v, "body", body, TEXT_MAX, lines=True)
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
    await ticket_event(
        session,
        settings,
        ticket,
        kind=AGENT_REPLY if side == Side.AGENT else CUSTOMER_REPLY,
        now=now,
        actor_id=actor.subject,
    )
    if side == Side.AGENT:
        await mail_answer(session, settings, ticket, message, customer_address)
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
    ticket, side = await ticket_for(session, actor, ticket_id, lock=True)
    assert actor is not None
    v = Validator()
    v.require("status", status)
    v.check(not status or status in {s.value for s in Status}, "status", "is not a ticket status")
    check_text(v, "reason", reason, NOTE_MAX, required=False, lines=True)
    v.raise_if_any()
    target = Status(status)
    if side == Side.CUSTOMER and target != Status.CANCELLED:
        raise PermissionDenied("a customer may only cancel a ticket; the support team moves it")
    _transition(ticket, target)
    _close_if_final(ticket, now)
    ticket.updated_at = now
    await ticket_event(
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
    require_agent(actor)
    ticket, _ = await ticket_for(session, actor, ticket_id, lock=True)
    assert actor is not None
    v = Validator()
    parsed = parse_priority(v, priority)
    v.raise_if_any()
    assert parsed is not None
    require_active(ticket)
    if ticket.priority != parsed.value:
        ticket.priority = parsed.value
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
    return ticket


async def classify(
    *, session: AsyncSession, actor: Principal | None, now: datetime, ticket_id: str, kind: str
) -> Ticket:
    """Support or consulting is the team's call (consulting is billable)."""
    require_agent(actor)
    ticket, _ = await ticket_for(session, actor, ticket_id, lock=True)
    v = Validator()
    parsed = parse_kind(v, kind)
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
    require_agent(actor)
    ticket, _ = await ticket_for(session, actor, ticket_id, lock=True)
    assert actor is not None
    v = Validator()
    v.check(
        0 < minutes <= MAX_CONSULTING_MINUTES,
        "minutes",
        f"must be between 1 and {MAX_CONSULTING_MINUTES}",
    )
    check_text(v, "note", note, NOTE_MAX, required=False, lines=True)
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


# The author of the closing note a service leaves.
PLATFORM_AUTHOR = "Guichet"


async def close_linked_ticket(
    *,
    session: AsyncSession,
    settings: SupportSettings,
    actor: Principal | None,
    now: datetime,
    ticket_id: str,
    status: str,
    note: str,
) -> tuple[Ticket, bool]:
    """A service closes a ticket it opened about something of its own (a ticket with a link:
    an order escalation's), with a note saying how that ended; (ticket, closed now).

    Services only, and only linked tickets: a service cannot close a person's ticket. A ticket
    already closed (by an agent, or a retried call) is returned as it is."""
    if actor is None:
        raise Unauthenticated("authentication required")
    if not actor.is_service:
        raise PermissionDenied("this call is internal: services only")
    v = Validator()
    parsed = parse_uuid(v, "ticket_id", ticket_id)
    v.check(
        status in (Status.FINISHED.value, Status.CANCELLED.value),
        "status",
        "must be finished or cancelled",
    )
    check_text(v, "note", note, TEXT_MAX, lines=True)
    v.raise_if_any()
    ticket = await session.get(Ticket, parsed, with_for_update=True)
    if ticket is None:
        raise NotFound("ticket not found")
    if not ticket.link_kind:
        raise FailedPrecondition(
            "only a ticket a service opened about something of its own can be closed by it",
            reason="ticket_not_linked",
        )
    if ticket.status in (Status.FINISHED, Status.CANCELLED):
        return ticket, False
    session.add(
        Message(
            id=uuid.uuid4(),
            ticket_id=ticket.id,
            author_id=f"svc:{actor.subject}",
            author_name=PLATFORM_AUTHOR,
            side=Side.AGENT.value,
            body=note.strip(),
            created_at=now,
        )
    )
    _transition(ticket, Status(status))
    _close_if_final(ticket, now)
    ticket.updated_at = now
    await session.flush()
    await ticket_event(
        session, settings, ticket, kind=STATUS_CHANGE, now=now, actor_id=f"svc:{actor.subject}"
    )
    return ticket, True
