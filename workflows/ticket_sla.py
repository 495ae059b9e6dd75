"""TicketSla: one workflow per ticket (`ticket-sla/<ticket_id>`) that watches its SLA clocks.

Started by the support service through its outbox when a ticket opens, and signalled
(`ticket_event`) through the service's signal outbox on every event: an agent's reply, a
customer's reply, a status change, a change of priority or plan. It computes every running
clock's warning and breach instants in business time (`workflows.contracts.business_time`), sleeps
until the nearest one, and reports it to the service (activity `record_sla_event`), which records
it and, for a breach, escalates. Waiting on the customer pauses every clock; each pause is kept.
A finished or cancelled ticket ends the workflow.

The clock rules themselves (`apply_event`, `thresholds`) are pure functions of
`workflows.contracts.support`, used by the service too, so that the service's view of a ticket
(deadlines in the queue, whether a stopped clock met its target) and the workflow's timers follow
one set of rules.

Events carry the service's time (`at`) and a per-ticket sequence number: the workflow applies
each once, in order, however late or often the relay delivers it.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from services.kit.temporal import TENANT, TICKET
    from workflows.contracts.support import (
        CLOSED_STATUSES,
        EVENT_SIGNAL,
        SLA_WORKFLOW,
        SlaRecord,
        SlaState,
        Threshold,
        TicketEvent,
        TicketSlaInput,
        TicketSlaResult,
        apply_event,
        opening_state,
        thresholds,
    )

# Continue-as-new well before Temporal's limits: the state is small, the history need not be.
MAX_HISTORY_EVENTS = 2000


# --- the workflow ---------------------------------------------------------------------------------

# Timers wake a little after the instant rather than before it: a threshold is never reported early.
_EPSILON = timedelta(milliseconds=1)

# A timer counts from when its workflow task completes, not from `workflow.now()` (when the task
# started): a task slowed by a busy worker would fire the warning that much late. A threshold
# further off than twice this is first aimed this much short, then re-aimed from a fresh clock.
_REAIM_BEFORE = timedelta(seconds=60)
# Runs recorded before re-aiming existed replay without it.
_REAIM_PATCH = "sla-reaim-timers"


# Not sandboxed: the workflow runs only the contract's pure rules and business-time arithmetic
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
