"""Replays saved Renewal histories with today's workflow code: a change that would break running
workflows fails here.

- `renewal.json` (recorded by `test_renewal.py`, before time zones): a year with a renewal date
  changed by signal, the letter, the window opening, the membership ended by signal, the end;
- `renewal_time_zones.json` (recorded by `test_renewal_dates.py`): timers at midnight of the
  workshop's zone with their summaries, the zone changed by signal, the workshop-code search
  attribute behind its `workflow.patched` marker, the letter, the window opening.

Record them again (`SAVE_RENEWAL_HISTORY=1`) only for a deliberate, versioned workflow change.
"""

from __future__ import annotations

import json
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.renewal import Renewal

HISTORIES = Path(__file__).resolve().parents[1] / "histories"
HISTORY = HISTORIES / "renewal.json"


async def test_saved_history_replays_with_the_current_code() -> None:
    document = json.loads(HISTORY.read_text())
    kinds = {event["eventType"] for event in document["events"]}
    assert {
        "EVENT_TYPE_TIMER_FIRED",
        "EVENT_TYPE_ACTIVITY_TASK_COMPLETED",
        "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED",
        "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED",
    } <= kinds
    activities = {
        event["activityTaskScheduledEventAttributes"]["activityType"]["name"]
        for event in document["events"]
        if event["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"
    }
    assert {
        "membership_renewal_state",
        "membership_send_anniversary_letter",
        "membership_open_removal_window",
    } <= activities
    history = WorkflowHistory.from_json("renewal/replayed", document)
    result = await Replayer(workflows=[Renewal]).replay_workflow(history)
    assert result.replay_failure is None


async def test_the_time_zone_history_replays_with_the_current_code() -> None:
    document = json.loads((HISTORIES / "renewal_time_zones.json").read_text())
    markers = [
        event["markerRecordedEventAttributes"]
        for event in document["events"]
        if event["eventType"] == "EVENT_TYPE_MARKER_RECORDED"
    ]
    assert markers, "the workshop-code patch marker"
    timers = [
        event for event in document["events"] if event["eventType"] == "EVENT_TYPE_TIMER_STARTED"
    ]
    assert all("summary" in event.get("userMetadata", {}) for event in timers)
    history = WorkflowHistory.from_json("renewal/time-zones", document)
    result = await Replayer(workflows=[Renewal]).replay_workflow(history)
    assert result.replay_failure is None
