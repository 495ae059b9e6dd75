"""Replays a saved Renewal history (a year with a renewal date changed by signal, the letter,
the window opening, the membership ended by signal, the end) with today's
workflow code: a change that would break running workflows fails here.

The history was recorded by `test_renewal.py` (`SAVE_RENEWAL_HISTORY=1`); record it again only
for a deliberate, versioned change of the workflow.
"""

from __future__ import annotations

import json
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.renewal import Renewal

HISTORY = Path(__file__).resolve().parents[1] / "histories" / "renewal.json"


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
