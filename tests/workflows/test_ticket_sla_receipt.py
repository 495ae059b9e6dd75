"""A ticket's receipt is mailed by its SLA run (`SLA_SHAPE_RECEIPT`), on the real dev server.

One workflow per ticket: the receipt is a local activity of the run's first task, beside its
first timer, where a `DeliverMail` run of its own doubled an opening's starts. These check what
that must not cost: the timer is set even while the SMTP relay is away (the receipt retries
beside it, never before it), the receipt still goes out once a relay answers, exactly once, and
the run reads well in the UI.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from services.kit.mail import new_sealing_key, seal
from services.kit.ports import free_port
from services.kit.smtpsink import SmtpSink
from services.kit.testing import wait_until
from tests.workflows.readable import local_activity_summaries, timer_summaries
from workflows.contracts.business_time import CalendarSpec
from workflows.contracts.support import (
    EVENT_SIGNAL,
    SLA_SHAPE_RECEIPT,
    STATUS_CHANGE,
    SlaPolicy,
    SlaReceipt,
    TicketEvent,
    TicketSlaInput,
    sla_workflow_id,
)
from workflows.settings import WorkerSettings
from workflows.ticket_sla import TicketSla
from workflows.worker import build_worker

ALWAYS_OPEN = CalendarSpec(time_zone="UTC", weekly=["00:00-24:00"] * 7)


def _sent(history: WorkflowHistory) -> list[str]:
    return [s for s in local_activity_summaries(history) if s.startswith("send the customer's")]


async def test_the_receipt_waits_out_an_smtp_outage_beside_the_first_timer(
    temporal_env: WorkflowEnvironment,
) -> None:
    client = temporal_env.client
    queue = f"test-{uuid.uuid4()}"
    key = new_sealing_key()
    relay_port = free_port()  # nothing listens there yet: the relay is away
    settings = WorkerSettings(smtp_port=relay_port, mail_sealing_key=key, temporal_task_queue=queue)
    ticket_id = str(uuid.uuid4())
    recipient = f"{uuid.uuid4().hex[:8]}@example.org"
    opened = datetime.now(UTC)
    receipt = SlaReceipt(
        mail_id=f"ticket-{ticket_id}-opened",
        to=[recipient],
        subject="[Guichet #1042] Demande reçue : Facture",
        sealed_body=seal("Bonjour, nous avons bien reçu votre demande n° 1042.", key),
    )
    policy = SlaPolicy(
        plan_id="bench",
        priority="normal",
        first_response_seconds=3600,
        next_response_seconds=3600,
        resolution_seconds=86400,
        warning_percent=80,
        calendar=ALWAYS_OPEN,
    )
    relay = SmtpSink(port=relay_port)
    async with build_worker(client, settings, task_queue=queue):
        handle = await client.start_workflow(
            TicketSla.run,
            TicketSlaInput(
                ticket_id=ticket_id,
                organisation_id=str(uuid.uuid4()),
                opened_at=opened.isoformat(),
                policy=policy,
                shape=SLA_SHAPE_RECEIPT,
                receipt=receipt,
            ),
            id=sla_workflow_id(ticket_id),
            task_queue=queue,
            # The first task completes with its timer once a local activity outlives 80 % of
            # this (10 s by default; shorter here, for the test's sake).
            task_timeout=timedelta(seconds=5),
        )

        async def first_timer() -> WorkflowHistory | None:
            history = await handle.fetch_history()
            return history if timer_summaries(history) else None

        # The relay is away: the first timer is set all the same, the receipt not sent yet.
        history = await wait_until(first_timer, what="the first timer, relay away", within=30)
        [timer] = timer_summaries(history)
        assert timer.startswith("first-response warning, 80 %, due ")
        assert timer.endswith(", woken 5 s ahead")
        assert _sent(history) == []
        assert relay.to(recipient) == []

        # A relay answers: the receipt goes out, once, while the clocks keep running.
        relay.start()
        try:
            [mail] = await relay.wait_for(recipient, within=60)
            assert mail.subject == receipt.subject
            assert "nous avons bien reçu votre demande n° 1042" in mail.body

            async def recorded() -> WorkflowHistory | None:
                history = await handle.fetch_history()
                return history if _sent(history) else None

            history = await wait_until(recorded, what="the receipt's marker", within=30)
            assert _sent(history) == ["send the customer's receipt to 1 recipient over SMTP"]
            assert timer_summaries(history) == [timer]  # the timer was not set again

            await handle.signal(
                EVENT_SIGNAL,
                TicketEvent(
                    seq=1,
                    kind=STATUS_CHANGE,
                    at=datetime.now(UTC).isoformat(),
                    status="cancelled",
                ),
            )
            result = await handle.result()
        finally:
            relay.stop()
    assert result.status == "cancelled"
    assert len(relay.to(recipient)) == 1
    # No mail run of its own: the ticket's one workflow sent it.
    mail_runs = [
        run.id async for run in client.list_workflows(f"WorkflowId = 'mail/{receipt.mail_id}'")
    ]
    assert mail_runs == []
    started = [
        e
        for e in (await handle.fetch_history()).events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
    ]
    assert len(started) == 1
