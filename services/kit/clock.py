"""The one place a service reads the time: a `Clock` handed to its servicer at build.

Domain functions never read the time themselves: they take `now` (keyword-only), and the servicer
passes `self._clock()`. A service's `build(context, clock=...)` takes the clock; the process uses
`system_clock`, and tests give a `PinnedClock` that follows Temporal's time-skipping server, so a
renewal on 29 February 2028 or a letter across a change of daylight saving time is one test,
not a wait.

There is deliberately no way to set the clock of a running process (no setting, no flag, no
endpoint): Temporal's timers follow the cluster's clock, not ours, so a service whose clock was
moved would disagree with its own workflows, and every timestamp it wrote would be false. Why,
and what operators use instead, is in docs/decisions.md ("Clocks").

`local_today` and `local_midnight` are the calendar rules every service shares: the day people
live in a time zone, and the instant that day starts there (DST-aware through `zoneinfo`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from time import monotonic
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The wall clock, aware and in UTC: what every process uses."""
    return datetime.now(UTC)


class PinnedClock:
    """A clock a test sets: the wall clock until pinned, then the pinned instant plus the real
    time elapsed since (so that time still moves forward between two pins, as it does on the
    time-skipping server)."""

    __test__ = False

    def __init__(self, at: datetime | None = None) -> None:
        self._pinned: datetime | None = None
        self._since = 0.0
        if at is not None:
            self.pin(at)

    def pin(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("a clock is pinned to an aware instant")
        self._pinned = at.astimezone(UTC)
        self._since = monotonic()

    def __call__(self) -> datetime:
        if self._pinned is None:
            return system_clock()
        return self._pinned + timedelta(seconds=monotonic() - self._since)


def is_time_zone(name: str) -> bool:
    """True for an IANA time zone name `zoneinfo` knows (e.g. Europe/Paris, America/Montreal)."""
    if not name or name != name.strip():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def local_today(now: datetime, time_zone: str) -> date:
    """The calendar day it is in `time_zone` at the instant `now`."""
    if now.tzinfo is None:
        raise ValueError("local_today needs an aware instant")
    return now.astimezone(ZoneInfo(time_zone)).date()


def local_midnight(day: date, time_zone: str) -> datetime:
    """The instant (UTC) at which `day` begins in `time_zone`.

    Where a zone skips midnight (DST starting at 00:00, e.g. America/Santiago), the missing wall
    time is read with the offset in force before the change (PEP 495, fold=0), which lands on the
    first instant the day has (01:00 there)."""
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(time_zone)).astimezone(UTC)
