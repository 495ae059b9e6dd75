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
reordered signal is harmless. A change of the membership's time zone (the workshop's or its
program's) reaches it the same way.

Every date and instant comes from the service: the letter leaves, and the window opens and closes,
at midnight of the membership's time zone (`GetRenewalState` gives the instants, DST-aware), so a
Québécois program's window opens at midnight in Montréal, not in UTC. A state read from a service
that predates time zones (no instants) falls back to midnight UTC of the dates. The timers carry
summaries saying what they wait for, and the run is found by the workshop's code
(`GuichetWorkshopCode`) beside its membership id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from workflows.contracts.membership import CHANGED_SIGNAL, RENEWAL_WORKFLOW, RenewalInput

with workflow.unsafe.imports_passed_through():
    from services.kit.temporal import MEMBERSHIP, TENANT, WORKSHOP_CODE

ACTIVITY_TIMEOUT = timedelta(seconds=30)
# Runs recorded before the workshop code was a search attribute replay without its upsert.
WORKSHOP_CODE_PATCH = "renewal-workshop-code"

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
    # The membership's time zone and the instants (ISO 8601, UTC) midnight there falls at: the
    # letter's day, the renewal date, the day the window closes (while open). Empty from a
    # service that predates time zones.
    time_zone: str = ""
    letter_at: str = ""
    window_opens_at: str = ""
    window_closes_at: str = ""
    workshop_code: str = ""
    # This renewal's letter has left already (e.g. before its date was corrected): not again.
    letter_sent: bool = False


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
    time_zone: str = ""


@dataclass
class RenewalResult:
    membership_id: str
    ended: bool
    cycles: int


def midnight(day: str) -> datetime:
    return datetime.combine(date.fromisoformat(day), time(0, tzinfo=UTC))


def instant(given: str, day: str) -> datetime:
    """The service's instant for a day (midnight of the membership's zone), else midnight UTC."""
    return datetime.fromisoformat(given) if given else midnight(day)


@workflow.defn(name=RENEWAL_WORKFLOW)
class Renewal:
    def __init__(self) -> None:
        self._heard = 0
        self._phase = "starting"
        self._cycle = 0
        self._renewal_date = ""
        self._window_closes_on = ""
        self._letters: list[str] = []
        self._time_zone = ""

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
            time_zone=self._time_zone,
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

    async def _step(
        self, activity: str, cycle: CycleInput, result_type: type[object], summary: str
    ) -> object:
        return await workflow.execute_activity(
            activity,
            cycle,
            result_type=result_type,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
            summary=summary,
        )

    async def _sleep_until(self, moment: datetime, seen: int, summary: str) -> bool:
        """Sleeps until `moment`; True when a change (a newer version) woke it first."""
        delay = moment - workflow.now()
        if delay <= timedelta(0):
            return self._heard > seen
        try:
            await workflow.wait_condition(
                lambda: self._heard > seen, timeout=delay, timeout_summary=summary
            )
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
                if state.workshop_code and workflow.patched(WORKSHOP_CODE_PATCH):
                    workflow.upsert_search_attributes(
                        [WORKSHOP_CODE.value_set(state.workshop_code)]
                    )
                tagged = True
            if not state.exists or not state.active:
                if state.window_open:
                    await self._step(
                        "membership_close_removal_window",
                        CycleInput(membership_id, state.window_opened_on),
                        WindowResult,
                        "close the removal window: the membership ended",
                    )
                self._phase = "ended"
                return RenewalResult(membership_id, ended=True, cycles=self._cycle)
            self._renewal_date = state.renewal_date
            self._time_zone = state.time_zone
            zone = state.time_zone or "UTC"

            if state.window_open:
                # The window of this year is open: removals are accepted until it closes.
                self._phase = "window_open"
                self._window_closes_on = state.window_closes_on
                closes = instant(state.window_closes_at, state.window_closes_on)
                if await self._sleep_until(
                    closes,
                    seen,
                    f"removal window closes, {state.window_days} days after renewal "
                    f"{state.window_opened_on} (midnight {state.window_closes_on}, {zone})",
                ):
                    continue
                await self._step(
                    "membership_close_removal_window",
                    CycleInput(membership_id, state.window_opened_on),
                    WindowResult,
                    f"close the removal window opened {state.window_opened_on}",
                )
                self._phase = "window_closed"
                self._window_closes_on = ""
                workflow.continue_as_new(
                    RenewalInput(membership_id, known_version=seen, cycle=self._cycle + 1)
                )

            renewal = date.fromisoformat(state.renewal_date)
            letter_day = (renewal - timedelta(days=state.letter_lead_days)).isoformat()
            if not state.letter_sent:
                self._phase = "waiting_for_letter"
                if await self._sleep_until(
                    instant(state.letter_at, letter_day),
                    seen,
                    f"anniversary letter, {state.letter_lead_days} days before renewal "
                    f"{state.renewal_date} (midnight {letter_day}, {zone})",
                ):
                    continue
                letter = await self._step(
                    "membership_send_anniversary_letter",
                    CycleInput(membership_id, state.renewal_date),
                    LetterResult,
                    f"anniversary letter for renewal {state.renewal_date}",
                )
                assert isinstance(letter, LetterResult)
                if letter.sent:
                    self._letters.append(state.renewal_date)

            self._phase = "waiting_for_renewal"
            if await self._sleep_until(
                instant(state.window_opens_at, state.renewal_date),
                seen,
                f"renewal {state.renewal_date}: removal window opens (midnight, {zone})",
            ):
                continue
            opened = await self._step(
                "membership_open_removal_window",
                CycleInput(membership_id, state.renewal_date),
                WindowResult,
                f"open the removal window of renewal {state.renewal_date}",
            )
            assert isinstance(opened, WindowResult)
            # Opened now, or already (a retry): either way the next read finds the window open.
            # When the date moved meanwhile, the next read plans from the new date.
