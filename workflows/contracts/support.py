"""What the support service and the ticket SLA workflow agree on: names, ids, data, the clock rules.

The workflow type (`TicketSla`), its id (`ticket-sla/<ticket_id>`), the `ticket_event` signal and
its event kinds, the dataclasses that cross the boundary (the workflow's input, the events the
service signals, the threshold the workflow reports back), and the SLA clock rules themselves
(`apply_event`, `deadlines`, `thresholds`, `elapsed`) over the business-time arithmetic of
`workflows.contracts.business_time`. The service uses the rules for its own view of a ticket
(deadlines in the queue, whether a stopped clock met its target) and the workflow for its timers,
so both follow one set of rules.

Type names, field names and shapes are part of the saved workflow histories
(tests/histories/ticket_sla.json): changing them breaks the replay of running workflows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio import workflow

from workflows.contracts.business_time import (
    CalendarSpec,
    Pause,
    active_time,
    compile_calendar,
    due_at,
    fraction,
)

SLA_WORKFLOW = "TicketSla"
EVENT_SIGNAL = "ticket_event"

FIRST_RESPONSE = "first_response"
NEXT_RESPONSE = "next_response"
RESOLUTION = "resolution"

WAITING = "waiting_on_customer"
CLOSED_STATUSES = frozenset({"finished", "cancelled"})

AGENT_REPLY = "agent_reply"
CUSTOMER_REPLY = "customer_reply"
STATUS_CHANGE = "status"
POLICY_CHANGE = "policy"


def sla_workflow_id(ticket_id: str) -> str:
    """The business-key id of a ticket's SLA workflow: one per ticket, a retried start harmless."""
    return f"ticket-sla/{ticket_id}"


@dataclass
class SlaPolicy:
    """What the ticket's plan and priority promise, with the calendar they count in."""

    plan_id: str
    priority: str
    first_response_seconds: int
    next_response_seconds: int
    resolution_seconds: int
    warning_percent: int
    calendar: CalendarSpec

    def target(self, clock: str) -> timedelta:
        seconds = {
            FIRST_RESPONSE: self.first_response_seconds,
            NEXT_RESPONSE: self.next_response_seconds,
            RESOLUTION: self.resolution_seconds,
        }[clock]
        return timedelta(seconds=seconds)


@dataclass
class ClockState:
    clock: str
    cycle: int
    started_at: str
    stopped_at: str | None = None
    warned: bool = False
    breached: bool = False


@dataclass
class PauseState:
    started_at: str
    ended_at: str | None = None


@dataclass
class SlaState:
    """Everything the rules need about one ticket; small enough to carry over continue-as-new."""

    status: str
    policy: SlaPolicy
    clocks: list[ClockState] = field(default_factory=list)
    pauses: list[PauseState] = field(default_factory=list)
    last_seq: int = 0


@dataclass
class TicketEvent:
    seq: int
    kind: str
    # The service's time of the event (ISO 8601, aware).
    at: str
    # The ticket's status after the event.
    status: str
    # Set when the plan or the priority changed: the new promise.
    policy: SlaPolicy | None = None


@dataclass
class SlaReceipt:
    """The customer's receipt for an extranet ticket, mailed by the ticket's SLA run
    (`SLA_SHAPE_RECEIPT`): the fields of `DeliverMail`'s input, so that the worker's `send_mail`
    activity sends it. The body is sealed (services/kit/mail.py), as in any mail run."""

    mail_id: str
    to: list[str]
    subject: str
    sealed_body: str
    kind: str = "ticket_opened"


@dataclass
class TicketSlaInput:
    ticket_id: str
    organisation_id: str
    opened_at: str
    policy: SlaPolicy
    # Carried over by continue-as-new.
    state: SlaState | None = None
    pending: list[TicketEvent] = field(default_factory=list)
    # How the run behaves, chosen by whoever starts it and carried over by continue-as-new:
    # 0 for runs started before the field existed (their `workflow.patched` markers say what they
    # did), `SLA_SHAPE_RECEIPT` for today's starts (see workflows/ticket_sla.py).
    shape: int = 0
    # The customer's receipt, sent by the run's first task (`SLA_SHAPE_RECEIPT`); None when the
    # opener has no verified address, for tickets support opens itself, and once sent (a
    # continue-as-new carries it over only while it is still being retried).
    receipt: SlaReceipt | None = None


# One timer per threshold, the search attributes set by the start, and no patch marker: the
# marker's `TemporalChangeVersion` upsert cost a visibility write per run (docs/performance.md).
SLA_SHAPE_ONE_TIMER = 1
# As above, and each timer wakes the run `SLA_REPORT_LEAD` before its threshold: the report (a
# local activity) waits for the instant on the worker's clock, then calls support. A timer fires
# on time, but the task it schedules then waits for the server and the worker (a few hundred
# milliseconds behind a burst); the lead absorbs that wait, so a warning is recorded within
# milliseconds of its instant rather than within a task's latency of it.
SLA_SHAPE_LEAD = 2
SLA_REPORT_LEAD = timedelta(seconds=2)
# As above, with a five-second lead, and the customer's receipt (`receipt`) sent by the run's
# first task beside its first timer instead of by a `DeliverMail` run of its own: one workflow
# per ticket, where there were two (half the starts, the visibility writes and the first tasks
# of an opening). Five seconds, because the task after a timer waited up to four behind the
# server and a worker's full garbage collection (docs/performance.md, session 6).
SLA_SHAPE_RECEIPT = 3
SLA_RECEIPT_LEAD = timedelta(seconds=5)


def report_lead(shape: int) -> timedelta:
    """How far ahead of each threshold a run of this shape wakes (zero before `SLA_SHAPE_LEAD`)."""
    if shape >= SLA_SHAPE_RECEIPT:
        return SLA_RECEIPT_LEAD
    if shape >= SLA_SHAPE_LEAD:
        return SLA_REPORT_LEAD
    return timedelta(0)


@dataclass
class TicketSlaResult:
    ticket_id: str
    status: str
    warnings: int
    breaches: int
    pauses: int


@dataclass
class Threshold:
    """An instant at which a running clock crosses its warning or its target."""

    kind: str  # "warning" or "breach"
    clock: str
    cycle: int
    due: datetime


@dataclass
class SlaRecord:
    """The activity's input: report one threshold to the support service."""

    ticket_id: str
    kind: str
    clock: str
    cycle: int
    due_at: str
    # Wait for `due_at` (the worker's clock) before reporting: the run woke ahead of it
    # (`SLA_SHAPE_LEAD`); an instant further off than `REPORT_WAIT_LIMIT` is reported at once.
    wait: bool = False


REPORT_WAIT_LIMIT = timedelta(seconds=10)


# --- the rules (pure) ---------------------------------------------------------------------------


@contextlib.contextmanager
def _outside_sandbox() -> Iterator[None]:
    """`holidays` imports its country modules lazily and reads the locale to name holidays:
    its dates are a pure function of country and year, so it runs unrestricted, its imports
    passed through (both no-ops outside a workflow)."""
    with workflow.unsafe.imports_passed_through(), workflow.unsafe.sandbox_unrestricted():
        yield


def parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"naive time {value!r}")
    return moment


def opening_state(opened_at: str, policy: SlaPolicy, status: str = "open") -> SlaState:
    """A new ticket: first response and resolution run from the moment it opened."""
    return SlaState(
        status=status,
        policy=policy,
        clocks=[
            ClockState(FIRST_RESPONSE, 1, opened_at),
            ClockState(RESOLUTION, 1, opened_at),
        ],
    )


def running(state: SlaState, clock: str) -> ClockState | None:
    for candidate in state.clocks:
        if candidate.clock == clock and candidate.stopped_at is None:
            return candidate
    return None


def _stop(state: SlaState, clock: str, at: str) -> None:
    current = running(state, clock)
    if current is not None:
        current.stopped_at = at


def apply_event(state: SlaState, event: TicketEvent) -> list[ClockState]:
    """Moves the clocks for one event; returns the clocks it stopped (to judge them).

    - an agent's reply stops the first response, and the next response waiting for it;
    - a customer's reply, once the first response was given, starts a next-response cycle
      (unless one already waits for an answer);
    - waiting on the customer opens a pause, leaving that status closes it;
    - finished or cancelled stops every clock.
    """
    before = {(c.clock, c.cycle) for c in state.clocks if c.stopped_at is None}
    if event.policy is not None:
        state.policy = event.policy
    if event.kind == AGENT_REPLY:
        _stop(state, FIRST_RESPONSE, event.at)
        _stop(state, NEXT_RESPONSE, event.at)
    elif event.kind == CUSTOMER_REPLY:
        first_done = running(state, FIRST_RESPONSE) is None
        if first_done and running(state, NEXT_RESPONSE) is None:
            cycles = [c.cycle for c in state.clocks if c.clock == NEXT_RESPONSE]
            state.clocks.append(ClockState(NEXT_RESPONSE, max(cycles, default=0) + 1, event.at))
    open_pause = state.pauses[-1] if state.pauses and state.pauses[-1].ended_at is None else None
    if event.status == WAITING and open_pause is None:
        state.pauses.append(PauseState(event.at))
    elif event.status != WAITING and open_pause is not None:
        open_pause.ended_at = event.at
    if event.status in CLOSED_STATUSES:
        for clock in state.clocks:
            if clock.stopped_at is None:
                clock.stopped_at = event.at
    state.status = event.status
    state.last_seq = max(state.last_seq, event.seq)
    return [c for c in state.clocks if (c.clock, c.cycle) in before and c.stopped_at is not None]


def pauses_of(state: SlaState) -> list[Pause]:
    return [
        Pause(parse_time(p.started_at), parse_time(p.ended_at) if p.ended_at else None)
        for p in state.pauses
    ]


def deadlines(state: SlaState, clock: ClockState) -> tuple[datetime | None, datetime | None]:
    """(warning, breach) instants of a clock; None while the ticket waits on the customer."""
    with _outside_sandbox():
        calendar = compile_calendar(state.policy.calendar)
        target = state.policy.target(clock.clock)
        start = parse_time(clock.started_at)
        pauses = pauses_of(state)
        warning = due_at(calendar, start, fraction(target, state.policy.warning_percent), pauses)
        breach = due_at(calendar, start, target, pauses)
    return warning, breach


def thresholds(state: SlaState) -> list[Threshold]:
    """The warnings and breaches still to come on running clocks, earliest first."""
    found: list[Threshold] = []
    if state.status in CLOSED_STATUSES:
        return found
    for clock in state.clocks:
        if clock.stopped_at is not None:
            continue
        warning, breach = deadlines(state, clock)
        if warning is not None and not clock.warned and not clock.breached:
            found.append(Threshold("warning", clock.clock, clock.cycle, warning))
        if breach is not None and not clock.breached:
            found.append(Threshold("breach", clock.clock, clock.cycle, breach))
    return sorted(found, key=lambda t: (t.due, t.kind != "breach"))


def elapsed(state: SlaState, clock: ClockState, until: datetime) -> timedelta:
    """Business time a clock has used by `until`, pauses excluded."""
    with _outside_sandbox():
        calendar = compile_calendar(state.policy.calendar)
        stop = parse_time(clock.stopped_at) if clock.stopped_at else until
        return active_time(calendar, parse_time(clock.started_at), stop, pauses_of(state))
