"""A warning reaches support on its instant, on the real dev server (not the time-skipping one).

Today's runs (`SLA_SHAPE_RECEIPT`) set each timer to wake the run five seconds ahead of its
threshold; the report (a local activity) then waits for the instant on the worker's clock. A
timer fires on time, but the workflow task it schedules waits for the server and the worker, up
to seconds behind a burst of openings (bench/sla.py): the lead absorbs that wait.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from guichet.support.v1 import support_pb2 as spb
from sqlalchemy import select
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from services.kit.smtpsink import SmtpSink
from services.kit.testing import DatabaseServer, wait_until
from services.support.models import SlaEvent
from tests.support import harness as support_harness
from workflows.contracts.support import SLA_RECEIPT_LEAD, sla_workflow_id
from workflows.ticket_sla import TicketSla


async def test_a_warning_is_recorded_on_its_instant_never_before(
    pg: DatabaseServer, temporal_env: WorkflowEnvironment, smtp_sink: SmtpSink
) -> None:
    """First response in one business minute, warned at 15 %: the warning is due 9 s after the
    opening. The run's timer fires five seconds ahead; support records the warning at the
    instant, not before it (without the report's wait it would be five seconds early), and well
    within a second of it."""
    async with support_harness.support_on(
        pg, temporal_env.client, smtp_sink, "support_on_time"
    ) as support:
        calendar = await support.calendar(weekly_hours=["00:00-24:00"] * 7, country="")
        plan = await support.plan(calendar.id, minutes=(1, 1, 60), warning_percent=15)
        category = await support.category()
        _, _, customer = await support.customer(plan.id)
        ticket = await support.open(customer, category.id)

        async def warning() -> SlaEvent | None:
            async with support.sessions.begin() as session:
                return await session.scalar(
                    select(SlaEvent).where(
                        SlaEvent.ticket_id == uuid.UUID(ticket.id), SlaEvent.kind == "warning"
                    )
                )

        recorded = await wait_until(warning, within=30)
        assert recorded is not None and recorded.due_at is not None
        late = recorded.at - recorded.due_at
        assert timedelta(0) <= late < timedelta(seconds=1), late

        handle = temporal_env.client.get_workflow_handle_for(
            TicketSla.run, sla_workflow_id(ticket.id)
        )
        history = await handle.fetch_history()
        [fired, *_] = [
            e for e in history.events if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED
        ]
        woke = fired.event_time.ToDatetime(tzinfo=UTC)
        ahead = recorded.due_at - woke
        assert SLA_RECEIPT_LEAD / 2 < ahead <= SLA_RECEIPT_LEAD, ahead
        assert woke < datetime.now(UTC)

        _, agent = await support.agent()
        await support.stub.ChangeTicketStatus(
            spb.ChangeTicketStatusRequest(ticket_id=ticket.id, status=spb.TICKET_STATUS_FINISHED),
            metadata=agent,
        )
        assert (await handle.result()).warnings == 1
