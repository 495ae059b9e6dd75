"""How TicketSla aims a timer (today's shape): at the instant itself when its task is on time,
a minute short (then re-aimed) only when the task that sets it was itself late."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from workflows.ticket_sla import _LATE_TASK_SHAPED, aim

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)


def test_a_prompt_task_sets_one_timer_at_the_instant() -> None:
    due = T0 + timedelta(minutes=18, seconds=24)
    now = T0 + timedelta(milliseconds=300)  # woken 0.3 s after its start
    assert aim(now, T0, due) == (due - now + MS, False)


def test_a_late_task_aims_a_far_threshold_a_minute_short() -> None:
    due = T0 + timedelta(minutes=18)
    now = T0 + timedelta(seconds=5)  # the first task started 5 s after the run
    delay, reaimed = aim(now, T0, due)
    assert reaimed
    assert delay == due - now + MS - timedelta(minutes=1)


def test_a_late_task_aims_a_near_threshold_exactly() -> None:
    """Within two minutes a second timer would cost more than the lateness it could save."""
    due = T0 + timedelta(seconds=100)
    now = T0 + timedelta(seconds=5)
    assert aim(now, T0, due) == (due - now + MS, False)


def test_one_second_late_is_still_on_time() -> None:
    due = T0 + timedelta(hours=1)
    assert aim(T0 + timedelta(seconds=1), T0, due)[1] is False
    assert aim(T0 + timedelta(seconds=1) + MS, T0, due)[1] is True


def test_a_timer_is_never_aimed_early() -> None:
    for lateness in (0, 0.5, 2, 30):
        now = T0 + timedelta(seconds=lateness)
        for distance in (1, 119, 121, 3600):
            due = now + timedelta(seconds=distance)
            delay, reaimed = aim(now, T0, due)
            # One timer lands after the instant; a short one is followed by a re-aimed timer.
            assert reaimed or now + delay > due


def test_todays_runs_call_a_task_late_from_a_quarter_of_a_second() -> None:
    """A start that waited behind a burst re-aims; runs recorded before keep their one second."""
    due = T0 + timedelta(minutes=18)
    quarter = T0 + timedelta(milliseconds=250)
    assert aim(quarter, T0, due, _LATE_TASK_SHAPED)[1] is False
    assert aim(quarter + MS, T0, due, _LATE_TASK_SHAPED)[1] is True
    assert aim(quarter + MS, T0, due)[1] is False
