"""Saved OrderEscalation histories (one per path) replay against the current workflow code: a
change that would break running escalations fails here, not in production.

`order_escalation_<path>.json` were recorded before escalations closed their support ticket (they
replay through the `escalation-closes-its-ticket` patch, without the step);
`order_escalation_<path>_ticket_closed.json` after (the patch marker, then `close_ticket`).

Regenerate after an intended change: `GUICHET_RECORD_HISTORIES=1 pytest
tests/workflows/test_order_escalation.py` (and keep the old files if old runs may still be open:
then the change needs `workflow.patched`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.order_escalation import OrderEscalation

HISTORIES = sorted(
    (Path(__file__).resolve().parents[1] / "histories").glob("order_escalation_*.json")
)


def test_every_path_has_a_saved_history() -> None:
    names = {path.stem.removeprefix("order_escalation_") for path in HISTORIES}
    before = {"accepted", "refused", "no_answer", "support_cancels"}
    assert names >= before | {f"{name}_ticket_closed" for name in before - {"accepted"}}


@pytest.mark.parametrize(
    "path", [p for p in HISTORIES if p.stem.endswith("_ticket_closed")], ids=lambda p: p.stem
)
def test_the_newer_histories_close_the_ticket(path: Path) -> None:
    document = json.loads(path.read_text())
    activities = [
        event["activityTaskScheduledEventAttributes"]["activityType"]["name"]
        for event in document["events"]
        if event["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"
    ]
    assert activities[-1] == "partners.escalation.close_ticket"


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_saved_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(f"order-escalation/{path.stem}", path.read_text())
    result = await Replayer(workflows=[OrderEscalation]).replay_workflow(history)
    assert result.replay_failure is None
