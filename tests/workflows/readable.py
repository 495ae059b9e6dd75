"""What an operator reads in a run's history: the summaries of its activities and timers, and the
names of its markers (local activities). Shared by the workflow tests that check a run reads well
(docs/runbook.md)."""

from __future__ import annotations

import json

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory


def _text(payload_data: bytes) -> str:
    value = json.loads(payload_data) if payload_data else ""
    return value if isinstance(value, str) else json.dumps(value)


def summaries(history: WorkflowHistory, event_type: EventType.ValueType) -> list[str]:
    """The summaries (user metadata) of the events of one type, in history order."""
    return [
        _text(event.user_metadata.summary.data)
        for event in history.events
        if event.event_type == event_type and event.HasField("user_metadata")
    ]


def activity_summaries(history: WorkflowHistory) -> list[str]:
    return summaries(history, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)


def timer_summaries(history: WorkflowHistory) -> list[str]:
    return summaries(history, EventType.EVENT_TYPE_TIMER_STARTED)


def local_activity_summaries(history: WorkflowHistory) -> list[str]:
    """The summaries of the local activities' markers, in history order."""
    return [
        _text(event.user_metadata.summary.data)
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and event.marker_recorded_event_attributes.marker_name == "core_local_activity"
        and event.HasField("user_metadata")
    ]
