"""The SLA clocks of a ticket, as the service keeps them, and what the workflow reports back.

Every event of a ticket goes through `ticket_event`, which moves the clocks with the same pure
rules as the SLA workflow (`workflows.contracts.support.apply_event`), stores the clocks, pauses
and deadlines, and records the event for the workflow in the signal outbox (`sla_signals`) in the
same transaction. Opening a ticket records the workflow's start in the outbox (`start_sla`).
`record_sla_event` records the warnings and breaches the workflow reports, and escalates breaches.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import asdict
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import NotFound, PermissionDenied, Unauthenticated, Validator
from services.kit.mail import enqueue_mail
from services.kit.outbox import enqueue
from services.kit.temporal import MAIL_KIND, TENANT, TICKET, TICKET_NUMBER
from services.support.domain.calendars import calendar_spec
from services.support.domain.common import PRIORITY_ORDER, aware, uuid_or_raise
from services.support.models import (
    Clock,
    EventKind,
    Plan,
    PlanTarget,
    Priority,
    SlaClock,
    SlaEvent,
    SlaPause,
    SlaSignal,
    Status,
    Ticket,
    outbox,
)
from services.support.settings import SupportSettings
from workflows.contracts.business_time import CalendarSpec
from workflows.contracts.support import (
    POLICY_CHANGE,
    SLA_SHAPE_RECEIPT,
    SLA_WORKFLOW,
    ClockState,
    PauseState,
    SlaPolicy,
    SlaReceipt,
    SlaState,
    TicketEvent,
    TicketSlaInput,
    apply_event,
    deadlines,
    elapsed,
    opening_state,
    sla_workflow_id,
)

# A ticket with a service's own deadline counts in plain time: open every minute of every day.
ALWAYS_OPEN = CalendarSpec(time_zone="UTC", weekly=["00:00-24:00"] * 7)
# The shortest target a service's deadline makes (a deadline already past still gets one).
MIN_DEADLINE_SECONDS = 60


async def policy_for(session: AsyncSession, ticket: Ticket) -> SlaPolicy:
    """What the ticket is promised: its plan's targets for its priority, in the plan's calendar;
    or, when the service that opened it set a deadline (`respond_by`, an order escalation's),
    every target due at that deadline in plain time (the workflow gets it as its policy)."""
    plan = await session.get(Plan, ticket.plan_id)
    assert plan is not None
    if ticket.respond_by is not None:
        # Rounded up: the deadline is never announced before the service's own.
        seconds = math.ceil((ticket.respond_by - ticket.created_at).total_seconds())
        seconds = max(seconds, MIN_DEADLINE_SECONDS)
        return SlaPolicy(
            plan_id=str(plan.id),
            priority=ticket.priority,
            first_response_seconds=seconds,
            next_response_seconds=seconds,
            resolution_seconds=seconds,
            warning_percent=plan.warning_percent,
            calendar=ALWAYS_OPEN,
        )
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


async def clock_rows(session: AsyncSession, ticket_id: uuid.UUID) -> list[SlaClock]:
    return list(
        await session.scalars(
            select(SlaClock)
            .where(SlaClock.ticket_id == ticket_id)
            .order_by(SlaClock.started_at, SlaClock.clock, SlaClock.cycle)
        )
    )


async def pause_rows(session: AsyncSession, ticket_id: uuid.UUID) -> list[SlaPause]:
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
                started_at=aware(clock.started_at),
                target_seconds=int(state.policy.target(clock.clock).total_seconds()),
                warned=False,
                breached=False,
            )
            session.add(row)
            rows[(clock.clock, clock.cycle)] = row
        if clock.stopped_at is not None and row.stopped_at is None:
            row.stopped_at = aware(clock.stopped_at)
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
                    started_at=aware(pause.started_at),
                    started_by=actor_id,
                )
            )
            _event(session, ticket, EventKind.PAUSE, aware(pause.started_at), by=actor_id)
        elif pause.ended_at is not None and pauses[index].ended_at is None:
            pauses[index].ended_at = aware(pause.ended_at)
            pauses[index].ended_by = actor_id
            _event(session, ticket, EventKind.RESUME, aware(pause.ended_at), by=actor_id)
    running = [row for row in rows.values() if row.stopped_at is None]
    dues = [row.due_at for row in running if row.due_at is not None]
    ticket.next_due_at = min(dues) if dues else None
    ticket.at_risk = any(row.warned for row in running)
    ticket.breached = any(row.breached for row in rows.values())


async def ticket_event(
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
    clocks = await clock_rows(session, ticket.id)
    pauses = await pause_rows(session, ticket.id)
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


async def start_sla(
    session: AsyncSession,
    settings: SupportSettings,
    ticket: Ticket,
    *,
    now: datetime,
    receipt: SlaReceipt | None = None,
) -> None:
    """The ticket's clocks start, and its workflow is recorded for the outbox relay to start;
    the run mails `receipt` to the customer (an extranet ticket's)."""
    # The number (an identity column) is assigned by the insert: loaded here, awaited, for the
    # start's search attributes (an attribute load outside an await cannot reach the database).
    await session.flush()
    await session.refresh(ticket, ["number"])
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
                shape=SLA_SHAPE_RECEIPT,
                receipt=receipt,
            )
        ),
        task_queue=settings.temporal_task_queue,
        # Set at the start, so the run is found at once and never upserts them (one visibility
        # write less per ticket): by id, by the number people quote, by company.
        search_attributes={
            TICKET.name: str(ticket.id),
            TICKET_NUMBER.name: ticket.number,
            TENANT.name: str(ticket.organisation_id),
            # The run sends the receipt: "did the receipt go out?" finds it as a mail's run.
            **({MAIL_KIND.name: receipt.kind} if receipt is not None else {}),
        },
    )


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
    ticket = await session.get(Ticket, uuid_or_raise("ticket_id", ticket_id), with_for_update=True)
    if ticket is None:
        raise NotFound("ticket not found")
    row = await session.get(SlaClock, (ticket.id, clock, cycle), with_for_update=True)
    if row is None:
        raise NotFound("no such clock on this ticket")
    if row.stopped_at is not None and row.stopped_at <= due_at:
        return False, None
    if (
        row.stopped_at is None
        and (row.warning_at if kind == EventKind.WARNING else row.due_at) is None
    ):
        # Waiting on the customer: a run wakes ahead of its instant (since `SLA_SHAPE_LEAD`), so a
        # pause may come between its waking and its report. A clock paused by the instant is not
        # due.
        paused_at = await session.scalar(
            select(SlaPause.started_at).where(
                SlaPause.ticket_id == ticket.id, SlaPause.ended_at.is_(None)
            )
        )
        if paused_at is not None and paused_at <= due_at:
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
        await ticket_event(
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
        kind="sla_breach",
        about={TICKET: str(ticket.id), TICKET_NUMBER: ticket.number},
    )
    return True, event
