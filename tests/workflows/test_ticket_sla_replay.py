"""Replays a saved TicketSla history (warning, breach with escalation, late reply, finish) with
today's workflow code: a change that would break running workflows fails here.

The history was recorded by `test_ticket_sla.py` (`SAVE_SLA_HISTORY=1`); record it again only for
a deliberate, versioned change of the workflow.
"""

from __future__ import annotations

import json
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.contracts import business_time
from workflows.ticket_sla import TicketSla

HISTORY = Path(__file__).resolve().parents[1] / "histories" / "ticket_sla.json"


async def test_saved_history_replays_with_the_current_code() -> None:
    document = json.loads(HISTORY.read_text())
    kinds = {event["eventType"] for event in document["events"]}
    # The saved run covers what matters: a timer, the report (local activity), signals, the end.
    assert {
        "EVENT_TYPE_TIMER_FIRED",
        "EVENT_TYPE_MARKER_RECORDED",
        "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED",
        "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED",
    } <= kinds
    # Cold caches: the calendar and its holidays are computed inside the sandbox, as on a fresh
    # worker.
    business_time._compile.cache_clear()
    business_time._public_holidays.cache_clear()
    business_time.open_intervals.cache_clear()
    history = WorkflowHistory.from_json("ticket-sla/replayed", document)
    result = await Replayer(workflows=[TicketSla]).replay_workflow(history)
    assert result.replay_failure is None
