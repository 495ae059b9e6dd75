"""Activities of the ticket SLA workflow: calls to the support service, with the worker's token.

Built with a channel made by `create_channel(settings.support_addr, tokens=tokens)`: every call
carries a deadline and the worker's service token (RecordSlaEvent refuses anything else).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from guichet.support.v1 import support_pb2, support_pb2_grpc
from temporalio import activity
from temporalio.exceptions import ApplicationError

from workflows.contracts.support import REPORT_WAIT_LIMIT, SlaRecord

_KIND = {"warning": support_pb2.SLA_EVENT_KIND_WARNING, "breach": support_pb2.SLA_EVENT_KIND_BREACH}
_CLOCK = {
    "first_response": support_pb2.SLA_CLOCK_FIRST_RESPONSE,
    "next_response": support_pb2.SLA_CLOCK_NEXT_RESPONSE,
    "resolution": support_pb2.SLA_CLOCK_RESOLUTION,
}
# Refusals that no retry will change: the request itself is wrong.
_FINAL = frozenset(
    {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED}
)


class SupportActivities:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = support_pb2_grpc.SupportServiceStub(channel)

    @activity.defn(name="record_sla_event")
    async def record_sla_event(self, record: SlaRecord) -> str:
        """Reports a warning or breach; says what happened, as the run's history shows it
        ("first_response warning recorded"). Runs recorded before it said so hold `true`.

        With `record.wait` the run woke ahead of the instant: the report waits for it on this
        worker's clock, so it reaches support on time, never early. An instant further off than
        `REPORT_WAIT_LIMIT` means the clocks disagree (a test server that skips time, a clock set
        wrong): the report goes at once, as it did before runs woke ahead."""
        instant = datetime.fromisoformat(record.due_at)
        if record.wait:
            ahead = (instant - datetime.now(UTC)).total_seconds()
            if 0 < ahead <= REPORT_WAIT_LIMIT.total_seconds():
                await asyncio.sleep(ahead)
        due = Timestamp()
        due.FromDatetime(instant)
        try:
            response = await self._stub.RecordSlaEvent(
                support_pb2.RecordSlaEventRequest(
                    ticket_id=record.ticket_id,
                    kind=_KIND[record.kind],
                    clock=_CLOCK[record.clock],
                    cycle=record.cycle,
                    due_time=due,
                )
            )
        except grpc.aio.AioRpcError as error:
            if error.code() in _FINAL:
                raise ApplicationError(
                    f"support refused the SLA event: {error.details()}",
                    type=error.code().name,
                    non_retryable=True,
                ) from None
            raise
        what = f"{record.clock} {record.kind}"
        if record.clock == "next_response":
            what = f"{what} (cycle {record.cycle})"
        if response.recorded:
            return f"{what} recorded"
        return f"{what} not recorded again: already recorded, or the clock stopped in time"
