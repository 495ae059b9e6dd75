"""Renewal: one workflow per workshop membership (`renewal/<membership_id>`), year after year.

Started by the membership service through its outbox when a membership is created. Each year
(one run; it continues as new into the next):

1. sleeps until `letter_lead_days` (30) before the renewal date, then has the service send the
   anniversary letter recapping the program's benefits to the workshop, its wholesaler member and
   its distributor (once per renewal date: the service keeps a letter row and gives the mails
   deterministic ids, so a retried activity never mails twice);
2. sleeps until the renewal date, then opens the option-removal window (the service moves the
   renewal date to next year in the same transaction);
3. sleeps until the window closes (`removal_window_days`, 30, later), closes it, and continues as
   new.

A changed renewal date or an ended membership reaches it as `membership_changed(version)`, sent
through the service's signal outbox with signal-with-start. The signal only wakes it: the workflow
re-reads the membership (activity) and plans again from what it reads, so a late, repeated or
reordered signal is harmless. Times are midnight UTC of the dates involved; every date comes from
the service, every instant from `workflow.now()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from workflows.contracts.membership import CHANGED_SIGNAL, RENEWAL_WORKFLOW, RenewalInput

with workflow.unsafe.imports_passed_through():
    from services.kit.temporal import MEMBERSHIP, TENANT

ACTIVITY_TIMEOUT = timedelta(seconds=30)
ACTIVITY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=0,
)


@dataclass
class RenewalState:
    """What the service says about the membership (activity `membership_renewal_state`)."""

    membership_id: str
    exists: bool
    workshop_id: str = ""
    active: bool = False
    renewal_date: str = ""
    window_open: bool = False
    window_opened_on: str = ""
    window_closes_on: str = ""
    version: int = 0
    window_days: int = 30
    letter_lead_days: int = 30


@dataclass
class CycleInput:
    membership_id: str
    # The renewal date this step belongs to (YYYY-MM-DD).
    renewal_date: str


@dataclass
class LetterResult:
    sent: bool
    recipients: list[str] = field(default_factory=list)


@dataclass
class WindowResult:
    changed: bool
    closes_on: str = ""
    next_renewal_date: str = ""


@dataclass
class RenewalStatus:
    """Answer of the `status` query: where the year stands."""

    phase: str
    cycle: int
    renewal_date: str
    version: int
    letters: list[str]
    window_closes_on: str


@dataclass
class RenewalResult:
    membership_id: str
    ended: bool
    cycles: int


def midnight(day: str) -> datetime:
    return datetime.combine(date.fromisoformat(day), time(0, tzinfo=UTC))


@workflow.defn(name=RENEWAL_WORKFLOW)
class Renewal:
    def __init__(self) -> None:
        self._heard = 0
        self._phase = "starting"
        self._cycle = 0
        self._renewal_date = ""
        self._window_closes_on = ""
        self._letters: list[str] = []

    @workflow.signal(name=CHANGED_SIGNAL)
    def membership_changed(self, version: int) -> None:
        self._heard = max(self._heard, version)

    @workflow.query
    def status(self) -> RenewalStatus:
        return RenewalStatus(
            phase=self._phase,
            cycle=self._cycle,
            renewal_date=self._renewal_date,
            version=self._heard,
            letters=list(self._letters),
            window_closes_on=self._window_closes_on,
        )

    async def _state(self, membership_id: str) -> RenewalState:
        state = await workflow.execute_activity(
            "membership_renewal_state",
            membership_id,
            result_type=RenewalState,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
        )
        assert isinstance(state, RenewalState)
        return state

    async def _step(self, activity: str, cycle: CycleInput, result_type: type[object]) -> object:
        return await workflow.execute_activity(
            activity,
            cycle,
            result_type=result_type,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
        )

    async def _sleep_until(self, moment: datetime, seen: int) -> bool:
        """Sleeps until `moment`; True when a change (a newer version) woke it first."""
        delay = moment - workflow.now()
        if delay <= timedelta(0):
            return self._heard > seen
        try:
            await workflow.wait_condition(lambda: self._heard > seen, timeout=delay)
        except TimeoutError:
            return False
        return True

    @workflow.run
    async def run(self, start: RenewalInput) -> RenewalResult:
        membership_id = start.membership_id
        self._heard = max(self._heard, start.known_version)
        self._cycle = start.cycle
        tagged = False
        while True:
            state = await self._state(membership_id)
            seen = state.version
            self._heard = max(self._heard, seen)
            if not tagged and state.exists:
                workflow.upsert_search_attributes(
                    [MEMBERSHIP.value_set(membership_id), TENANT.value_set(state.workshop_id)]
                )
                tagged = True
            if not state.exists or not state.active:
                if state.window_open:
                    await self._step(
                        "membership_close_removal_window",
                        CycleInput(membership_id, state.window_opened_on),
                        WindowResult,
                    )
                self._phase = "ended"
                return RenewalResult(membership_id, ended=True, cycles=self._cycle)
            self._renewal_date = state.renewal_date

            if state.window_open:
                # The window of this year is open: removals are accepted until it closes.
                self._phase = "window_open"
                self._window_closes_on = state.window_closes_on
                if await self._sleep_until(midnight(state.window_closes_on), seen):
                    continue
                await self._step(
                    "membership_close_removal_window",
                    CycleInput(membership_id, state.window_opened_on),
                    WindowResult,
                )
                self._phase = "window_closed"
                self._window_closes_on = ""
                workflow.continue_as_new(
                    RenewalInput(membership_id, known_version=seen, cycle=self._cycle + 1)
                )

            renewal = date.fromisoformat(state.renewal_date)
            letter_day = (renewal - timedelta(days=state.letter_lead_days)).isoformat()
            self._phase = "waiting_for_letter"
            if await self._sleep_until(midnight(letter_day), seen):
                continue
            letter = await self._step(
                "membership_send_anniversary_letter",
                CycleInput(membership_id, state.renewal_date),
                LetterResult,
            )
            assert isinstance(letter, LetterResult)
            if letter.sent:
                self._letters.append(state.renewal_date)

            self._phase = "waiting_for_renewal"
            if await self._sleep_until(midnight(state.renewal_date), seen):
                continue
            opened = await self._step(
                "membership_open_removal_window",
                CycleInput(membership_id, state.renewal_date),
                WindowResult,
            )
            assert isinstance(opened, WindowResult)
            # Opened now, or already (a retry): either way the next read finds the window open.
            # When the date moved meanwhile, the next read plans from the new date.
