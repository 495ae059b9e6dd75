"""Replays saved TicketSla histories (warning, breach with escalation, late reply, finish) with
today's workflow code: a change that would break running workflows fails here.

`ticket_sla.json` is a run from before the `sla-one-timer` patch (its upsert of the search
attributes, the timers of that time); `ticket_sla_one_timer.json` is a run of that patch (its
marker, and the marker's `TemporalChangeVersion` upsert); `ticket_sla_shaped.json` is the first
shape chosen by the start's input (`shape`): one timer per threshold, each with a summary naming
it, reports whose summaries and results say what was recorded, and no marker nor upsert at all;
`ticket_sla_lead.json` is as the shaped run, each timer set to wake the run two seconds ahead of
its threshold, whose report then waits for the instant; `ticket_sla_receipt.json` is today's:
five seconds ahead, and the customer's receipt mailed by the run's first task (a local activity
beside the first timer) instead of a `DeliverMail` run of its own. All were recorded by
`test_ticket_sla.py` (`SAVE_SLA_HISTORY=1` writes the last); record again only for a
deliberate, versioned change of the workflow.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.contracts import business_time
from workflows.ticket_sla import TicketSla
from workflows.worker import preload

HISTORIES = Path(__file__).resolve().parents[1] / "histories"


def _summary(event: dict[str, Any]) -> str:
    data = event.get("userMetadata", {}).get("summary", {}).get("data", "")
    return str(json.loads(base64.b64decode(data))) if data else ""


@pytest.mark.parametrize(
    "name",
    [
        "ticket_sla.json",
        "ticket_sla_one_timer.json",
        "ticket_sla_shaped.json",
        "ticket_sla_lead.json",
        "ticket_sla_receipt.json",
    ],
)
async def test_saved_history_replays_with_the_current_code(name: str) -> None:
    document = json.loads((HISTORIES / name).read_text())
    kinds = {event["eventType"] for event in document["events"]}
    # The saved run covers what matters: a timer, the report (local activity), signals, the end.
    assert {
        "EVENT_TYPE_TIMER_FIRED",
        "EVENT_TYPE_MARKER_RECORDED",
        "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED",
        "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED",
    } <= kinds
    # Cold caches: the calendar and its holidays are computed inside the workflow, as on a fresh
    # worker (which has imported the holidays library's countries before polling).
    preload()
    business_time._compile.cache_clear()
    business_time._public_holidays.cache_clear()
    business_time.open_intervals.cache_clear()
    history = WorkflowHistory.from_json("ticket-sla/replayed", document)
    result = await Replayer(workflows=[TicketSla]).replay_workflow(history)
    assert result.replay_failure is None


def _time(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["eventTime"].replace("Z", "+00:00"))


def test_todays_shape_is_one_named_timer_per_threshold_woken_ahead() -> None:
    """The run reads by name in the UI, costs Temporal one timer per threshold, each timer wakes
    the run five seconds ahead of its threshold (the report waits for the instant), and its first
    task mails the receipt beside its first timer."""
    events = json.loads((HISTORIES / "ticket_sla_receipt.json").read_text())["events"]
    timers = [_summary(e) for e in events if e["eventType"] == "EVENT_TYPE_TIMER_STARTED"]
    fired = [e for e in events if e["eventType"] == "EVENT_TYPE_TIMER_FIRED"]
    markers = [
        e
        for e in events
        if e["eventType"] == "EVENT_TYPE_MARKER_RECORDED"
        and e["markerRecordedEventAttributes"]["markerName"] == "core_local_activity"
    ]
    [receipt, *reports] = markers
    assert _summary(receipt) == "send the customer's receipt to 1 recipient over SMTP"
    # The receipt and the first timer were commands of the same (first) workflow task.
    first_task_end = next(
        i for i, e in enumerate(events) if e["eventType"] == "EVENT_TYPE_WORKFLOW_TASK_COMPLETED"
    )
    first_timer = next(
        i for i, e in enumerate(events) if e["eventType"] == "EVENT_TYPE_TIMER_STARTED"
    )
    second_task = next(
        i
        for i, e in enumerate(events)
        if i > first_task_end and e["eventType"] == "EVENT_TYPE_WORKFLOW_TASK_SCHEDULED"
    )
    assert first_task_end < events.index(receipt) < second_task
    assert first_task_end < first_timer < second_task
    assert timers[0].startswith("first-response warning, 80 %, due ")
    assert timers[1].startswith("first-response breach, 100 %, due ")
    assert timers[2].startswith("resolution warning, 80 %, due ")
    assert all(t.endswith(", woken 5 s ahead") for t in timers)
    # The warning and the breach each woke once: no second timer to re-aim either.
    assert len(fired) == 2
    assert [_summary(e) for e in reports] == [
        "record the " + t.removesuffix(", woken 5 s ahead") for t in timers[:2]
    ]
    # Each woke the run five seconds (and a few milliseconds of the server's) before its instant.
    for timer, woke in zip(timers, fired, strict=False):
        due = datetime.strptime(timer.split(", due ")[1][:19], "%Y-%m-%d %H:%M:%S")
        ahead = due.replace(tzinfo=UTC) - _time(woke)
        assert timedelta(seconds=4.5) < ahead <= timedelta(seconds=5), (timer, ahead)
    results = [
        json.loads(
            base64.b64decode(
                e["markerRecordedEventAttributes"]["details"]["result"]["payloads"][0]["data"]
            )
        )
        for e in markers
    ]
    assert results == [1, "first_response warning recorded", "first_response breach recorded"]
    # The ticket's search attributes came with the start, and the shape with its input: the run
    # never upserts a search attribute, not even a patch's `TemporalChangeVersion`.
    kinds = {e["eventType"] for e in events}
    assert "EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES" not in kinds
    names = {
        e["markerRecordedEventAttributes"]["markerName"]
        for e in events
        if e["eventType"] == "EVENT_TYPE_MARKER_RECORDED"
    }
    assert names == {"core_local_activity"}
    started = events[0]["workflowExecutionStartedEventAttributes"]["searchAttributes"]
    assert {"GuichetTicket", "GuichetTicketNumber", "GuichetTenant", "GuichetMailKind"} <= set(
        started["indexedFields"]
    )
