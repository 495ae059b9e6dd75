"""TicketSla: one workflow per ticket (`ticket-sla/<ticket_id>`) that watches its SLA clocks.

Started by the support service through its outbox when a ticket opens, and signalled
(`ticket_event`) through the service's signal outbox on every event: an agent's reply, a
customer's reply, a status change, a change of priority or plan. It computes every running
clock's warning and breach instants in business time (`workflows.business_time`), sleeps until
the nearest one, and reports it to the service (activity `record_sla_event`), which records it
and, for a breach, escalates. Waiting on the customer pauses every clock; each pause is kept.
A finished or cancelled ticket ends the workflow.

The clock rules themselves (`apply_event`, `thresholds`) are pure functions of this module,
used by the service too, so that the service's view of a ticket (deadlines in the queue, whether a
stopped clock met its target) and the workflow's timers follow one set of rules.

Events carry the service's time (`at`) and a per-ticket sequence number: the workflow applies
each once, in order, however late or often the relay delivers it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from services.kit.temporal import TENANT, TICKET
    from workflows.business_time import (
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

# Continue-as-new well before Temporal's limits: the state is small, the history need not be.
MAX_HISTORY_EVENTS = 2000


def sla_workflow_id(ticket_id: str) -> str:
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
class TicketSlaInput:
    ticket_id: str
    organisation_id: str
    opened_at: str
    policy: SlaPolicy
    # Carried over by continue-as-new.
    state: SlaState | None = None
    pending: list[TicketEvent] = field(default_factory=list)


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


# --- the workflow ---------------------------------------------------------------------------------

# Timers wake a little after the instant rather than before it: a threshold is never reported early.
_EPSILON = timedelta(milliseconds=1)

# A timer counts from when its workflow task completes, not from `workflow.now()` (when the task
# started): a task slowed by a busy worker would fire the warning that much late. A threshold
# further off than twice this is first aimed this much short, then re-aimed from a fresh clock.
_REAIM_BEFORE = timedelta(seconds=60)
# Runs recorded before re-aiming existed replay without it.
_REAIM_PATCH = "sla-reaim-timers"


# Not sandboxed: the workflow runs only this module's pure rules and business_time's arithmetic
# (no I/O, no clock, no randomness; time is `workflow.now()`), and ten thousand of them live at
# once, each re-instantiated when evicted from the worker's cache: the sandbox's per-run module
# reload would cost more CPU than all the rest (bench/sla.py). The replay test guards determinism.
@workflow.defn(name=SLA_WORKFLOW, sandboxed=False)
class TicketSla:
    def __init__(self) -> None:
        self._pending: list[TicketEvent] = []
        self._state: SlaState | None = None

    @workflow.signal(name=EVENT_SIGNAL)
    def ticket_event(self, event: TicketEvent) -> None:
        self._pending.append(event)

    @workflow.query
    def state(self) -> SlaState | None:
        return self._state

    def _apply_pending(self, state: SlaState) -> None:
        """Applies buffered events in sequence; drops repeats, keeps those that come early."""
        self._pending.sort(key=lambda e: e.seq)
        waiting: list[TicketEvent] = []
        for event in self._pending:
            if event.seq <= state.last_seq:
                continue
            if event.seq != state.last_seq + 1:
                waiting.append(event)
                continue
            apply_event(state, event)
        self._pending = waiting

    def _ready(self) -> bool:
        assert self._state is not None
        return any(e.seq == self._state.last_seq + 1 for e in self._pending)

    @workflow.run
    async def run(self, request: TicketSlaInput) -> TicketSlaResult:
        state = request.state or opening_state(request.opened_at, request.policy)
        self._state = state
        self._pending = list(request.pending) + self._pending
        if request.state is None:
            workflow.upsert_search_attributes(
                [TICKET.value_set(request.ticket_id), TENANT.value_set(request.organisation_id)]
            )
        while True:
            self._apply_pending(state)
            if state.status in CLOSED_STATUSES:
                break
            now = workflow.now()
            for threshold in thresholds(state):
                if threshold.due > now:
                    break
                await self._report(request.ticket_id, threshold)
                clock = next(
                    c
                    for c in state.clocks
                    if c.clock == threshold.clock and c.cycle == threshold.cycle
                )
                clock.warned = True
                clock.breached = clock.breached or threshold.kind == "breach"
            if self._ready():
                continue
            info = workflow.info()
            if info.get_current_history_length() > MAX_HISTORY_EVENTS or (
                info.is_continue_as_new_suggested()
            ):
                workflow.continue_as_new(
                    TicketSlaInput(
                        ticket_id=request.ticket_id,
                        organisation_id=request.organisation_id,
                        opened_at=request.opened_at,
                        policy=state.policy,
                        state=state,
                        pending=self._pending,
                    )
                )
            upcoming = [t.due for t in thresholds(state) if t.due > workflow.now()]
            if upcoming:
                delay = min(upcoming) - workflow.now() + _EPSILON
                if delay > 2 * _REAIM_BEFORE and workflow.patched(_REAIM_PATCH):
                    delay -= _REAIM_BEFORE
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(self._ready, timeout=delay)
            else:
                await workflow.wait_condition(self._ready)
        return TicketSlaResult(
            ticket_id=request.ticket_id,
            status=state.status,
            warnings=sum(c.warned for c in state.clocks),
            breaches=sum(c.breached for c in state.clocks),
            pauses=len(state.pauses),
        )

    async def _report(self, ticket_id: str, threshold: Threshold) -> None:
        """Reports one threshold; a refusal no retry can change is logged, not fatal.

        A local activity: one short call to support, run inside the workflow task that the timer
        woke, so a warning costs one workflow task instead of three tasks and an activity."""
        try:
            await workflow.execute_local_activity(
                "record_sla_event",
                SlaRecord(
                    ticket_id=ticket_id,
                    kind=threshold.kind,
                    clock=threshold.clock,
                    cycle=threshold.cycle,
                    due_at=threshold.due.isoformat(),
                ),
                start_to_close_timeout=timedelta(seconds=15),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=1),
                    backoff_coefficient=2.0,
                    maximum_interval=timedelta(minutes=2),
                    maximum_attempts=0,
                ),
            )
        except ActivityError as error:
            workflow.logger.warning("SLA %s not recorded: %s", threshold.kind, error.cause)
