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

An operator reads a run in the Temporal UI by name: each timer's summary says which threshold it
waits for ("first-response warning, 80 %"), each report's summary and result say what was
recorded. A run costs Temporal as little as it can: the search attributes come with the start
(no upsert), and each threshold is one timer, re-aimed only when the task that set it was itself
late (docs/performance.md). Today's starts say so in their input (`shape`), not with a
`workflow.patched` marker, whose `TemporalChangeVersion` upsert is one more visibility write per
run; runs started before keep the markers they recorded.

Runs since `SLA_SHAPE_LEAD` set each timer to wake ahead of its threshold (two seconds, five for
today's `SLA_SHAPE_RECEIPT`), and the report waits for the instant on the worker's clock: the
timer fires on time, but the task it schedules waits for the server and the worker first (up to
seconds behind a burst or a full garbage collection), which is what a warning used to be late by.

Today's runs also mail the customer's receipt (`receipt`, a local activity of the first task,
beside the first timer): one workflow per ticket where a `DeliverMail` run per receipt doubled
an opening's starts. The receipt runs beside the clocks, never before them: its retries (an SMTP
relay away) do not hold a timer back, and the run ends only once it is sent.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from services.kit.temporal import TENANT, TICKET
    from workflows.contracts.support import (
        CLOSED_STATUSES,
        EVENT_SIGNAL,
        FIRST_RESPONSE,
        NEXT_RESPONSE,
        SLA_SHAPE_ONE_TIMER,
        SLA_SHAPE_RECEIPT,
        SLA_WORKFLOW,
        SlaPolicy,
        SlaReceipt,
        SlaRecord,
        SlaState,
        Threshold,
        TicketEvent,
        TicketSlaInput,
        TicketSlaResult,
        apply_event,
        opening_state,
        report_lead,
        thresholds,
    )
    from workflows.mail import SEND_RETRIES, SEND_TIMEOUT

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
# One timer per threshold, no search-attribute upsert when the start carried them. Under this
# patch a timer is re-aimed only when the task that sets it started more than `_LATE_TASK` after
# what woke it (the run's start, or the timer it follows): the sign of a struggling server or
# worker, whose late completion would carry into the timer's start. On time, one timer suffices.
_ONE_TIMER_PATCH = "sla-one-timer"
_LATE_TASK = timedelta(seconds=1)
# Runs of `SLA_SHAPE_ONE_TIMER` call a task late from a quarter of a second: on a quiet server a
# task starts within milliseconds, and a task that waited behind a saturated one (a Monday
# morning's openings) also completes late, so its timer starts late by as much. Re-aimed a
# minute before the instant, the threshold is reported on time once the burst has passed; a
# prompt task still sets one timer (docs/performance.md, "SLA timers").
_LATE_TASK_SHAPED = timedelta(milliseconds=250)
# Runs that wake ahead of their thresholds (`SLA_SHAPE_RECEIPT`) call a task late only from a
# second short of their lead: a timer set by a task that completes that much late still wakes the
# run ahead of its instant, so one timer still suffices. Their first task also mails the receipt
# (a local activity), which holds the task's completion, and so its first timer, by the SMTP
# exchange: that alone must not cost every ticket a second timer.
_LEAD_MARGIN = timedelta(seconds=1)

_NONE = timedelta(0)

_CLOCK_NAMES = {
    FIRST_RESPONSE: "first-response",
    NEXT_RESPONSE: "next-response",
    "resolution": "resolution",
}


def describe(threshold: Threshold, policy: SlaPolicy) -> str:
    """What a threshold is, as an operator reads it: "first-response warning, 80 %"."""
    name = _CLOCK_NAMES.get(threshold.clock, threshold.clock)
    if threshold.clock == NEXT_RESPONSE:
        name = f"{name} #{threshold.cycle}"
    share = policy.warning_percent if threshold.kind == "warning" else 100
    return f"{name} {threshold.kind}, {share} %"


def _at(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def aim(
    now: datetime, woken_for: datetime, due: datetime, late_after: timedelta = _LATE_TASK
) -> tuple[timedelta, bool]:
    """The timer for a threshold due at `due`, set by a task started at `now` for something due
    at `woken_for`: its length, and whether it is aimed a minute short to be re-aimed (the task
    was more than `late_after` late, and the threshold far enough for a second timer to be worth
    it)."""
    delay = due - now + _EPSILON
    if now - woken_for > late_after and delay > 2 * _REAIM_BEFORE:
        return delay - _REAIM_BEFORE, True
    return delay, False


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
        one_timer = request.shape >= SLA_SHAPE_ONE_TIMER or workflow.patched(_ONE_TIMER_PATCH)
        late_after = _LATE_TASK_SHAPED if request.shape >= SLA_SHAPE_ONE_TIMER else _LATE_TASK
        # Runs since `SLA_SHAPE_LEAD` wake ahead of each threshold and report it on the instant.
        lead = report_lead(request.shape)
        if request.shape >= SLA_SHAPE_RECEIPT:
            late_after = lead - _LEAD_MARGIN
        receipt = None
        if request.receipt is not None:
            receipt = asyncio.create_task(self._send_receipt(request.receipt))
        info = workflow.info()
        indexed = info.typed_search_attributes.get(TICKET) == request.ticket_id
        if request.state is None and not (one_timer and indexed):
            workflow.upsert_search_attributes(
                [TICKET.value_set(request.ticket_id), TENANT.value_set(request.organisation_id)]
            )
        # What woke the current task, to tell a late task (see `_ONE_TIMER_PATCH`).
        woken_for = info.workflow_start_time
        while True:
            self._apply_pending(state)
            if state.status in CLOSED_STATUSES:
                break
            now = workflow.now()
            for threshold in thresholds(state):
                if threshold.due > now + lead:
                    break
                await self._report(request.ticket_id, threshold, state.policy, wait=lead > _NONE)
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
                        shape=request.shape,
                        # Still being retried: the next run sends it (its attempts so far are
                        # lost with this run; the Message-ID is the same).
                        receipt=request.receipt if receipt and not receipt.done() else None,
                    )
                )
            now = workflow.now()
            upcoming = [t for t in thresholds(state) if t.due > now + lead]
            if upcoming:
                target = upcoming[0]
                summary = f"{describe(target, state.policy)}, due {_at(target.due)}"
                if lead > _NONE:
                    summary = f"{summary}, woken {lead.total_seconds():g} s ahead"
                if one_timer:
                    delay, reaim = aim(now, woken_for, target.due - lead, late_after)
                else:
                    delay = target.due - now + _EPSILON
                    reaim = delay > 2 * _REAIM_BEFORE and workflow.patched(_REAIM_PATCH)
                    if reaim:
                        delay -= _REAIM_BEFORE
                if reaim:
                    summary = f"{summary}: aimed 1 min short, to be re-aimed"
                woken_for = now + delay
                try:
                    await workflow.wait_condition(
                        self._ready, timeout=delay, timeout_summary=summary
                    )
                    woken_for = workflow.now()  # a signal: its task is as prompt as it gets
                except TimeoutError:
                    pass
            else:
                await workflow.wait_condition(self._ready)
                woken_for = workflow.now()
        if receipt is not None:
            await receipt
        return TicketSlaResult(
            ticket_id=request.ticket_id,
            status=state.status,
            warnings=sum(c.warned for c in state.clocks),
            breaches=sum(c.breached for c in state.clocks),
            pauses=len(state.pauses),
        )

    async def _send_receipt(self, receipt: SlaReceipt) -> None:
        """Mails the customer's receipt through the worker's `send_mail` (as `DeliverMail` does),
        retried until the SMTP relay takes it: a local activity, in the first task, whose
        commands (the first timer) go with it. A local activity running longer than the task's
        deadline lets the task complete with its commands and keeps running, so the timer does
        not wait for a relay that is away."""
        recipients = f"{len(receipt.to)} recipient{'s' if len(receipt.to) != 1 else ''}"
        try:
            await workflow.execute_local_activity(
                "send_mail",
                receipt,
                summary=f"send the customer's receipt to {recipients} over SMTP",
                start_to_close_timeout=SEND_TIMEOUT,
                retry_policy=SEND_RETRIES,
            )
        except ActivityError as error:
            workflow.logger.warning("receipt %s not sent: %s", receipt.mail_id, error.cause)

    async def _report(
        self, ticket_id: str, threshold: Threshold, policy: SlaPolicy, *, wait: bool = False
    ) -> None:
        """Reports one threshold; a refusal no retry can change is logged, not fatal.

        A local activity: one short call to support, run inside the workflow task that the timer
        woke, so a warning costs one workflow task instead of three tasks and an activity. Its
        summary names the threshold, so the history reads "first-response warning, 80 %".
        With `wait` (the run woke ahead, since `SLA_SHAPE_LEAD`) it first waits for the instant."""
        try:
            await workflow.execute_local_activity(
                "record_sla_event",
                SlaRecord(
                    ticket_id=ticket_id,
                    kind=threshold.kind,
                    clock=threshold.clock,
                    cycle=threshold.cycle,
                    due_at=threshold.due.isoformat(),
                    wait=wait,
                ),
                summary=f"record the {describe(threshold, policy)}, due {_at(threshold.due)}",
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
