"""DeliverMail round-trip on the real dev server: outbox row -> relay -> workflow -> SMTP sink."""

from __future__ import annotations

import uuid

from sqlalchemy import MetaData, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecution, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from services.kit.db import create_engine, create_session_factory
from services.kit.mail import enqueue_mail, new_sealing_key, seal
from services.kit.outbox import OutboxRelay, outbox_table
from services.kit.smtpsink import SmtpSink
from services.kit.temporal import MAIL_KIND, USERNAME
from services.kit.testing import DatabaseServer, wait_until
from tests.workflows.readable import activity_summaries, local_activity_summaries
from workflows.mail import DeliverMail, DeliverMailInput
from workflows.settings import WorkerSettings
from workflows.worker import build_worker


def _workflow_tasks(history: WorkflowHistory) -> int:
    return sum(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED for e in history.events)


async def test_mail_recorded_in_outbox_is_delivered_once(
    pg: DatabaseServer, smtp_sink: SmtpSink, temporal_env: WorkflowEnvironment
) -> None:
    metadata = MetaData()
    outbox = outbox_table(metadata)
    engine = create_engine(await pg.new_database("outbox"))
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    sessions = create_session_factory(engine)
    key = new_sealing_key()
    queue = f"test-{uuid.uuid4()}"
    settings = WorkerSettings(
        smtp_port=smtp_sink.port, mail_sealing_key=key, temporal_task_queue=queue
    )
    recipient = f"{uuid.uuid4().hex[:8]}@example.org"
    mail_id = str(uuid.uuid4())
    async with sessions.begin() as session:
        await enqueue_mail(
            session,
            outbox,
            mail_id=mail_id,
            to=[recipient],
            subject="Vérifiez votre adresse",
            body="Lien secret: https://guichet.local/verify?token=abc",
            sealing_key=key,
            task_queue=queue,
            kind="verify_email",
            about={USERNAME: f"user-{mail_id}"},
        )

    async def connect():  # type: ignore[no-untyped-def]
        return temporal_env.client

    relay = OutboxRelay(sessions, outbox, connect)
    async with build_worker(temporal_env.client, settings, task_queue=queue):
        assert await relay.relay_once() == 1
        assert await relay.relay_once() == 0  # nothing left: started rows are marked
        handle = temporal_env.client.get_workflow_handle_for(DeliverMail.run, f"mail/{mail_id}")
        result = await handle.result()
        assert result.recipients == 1
        # The secret never sits in clear in the history.
        history = await handle.fetch_history()
        assert b"token=abc" not in history.to_json().encode()
        # What it sends, to how many, reads in the history; the subject and the body do not.
        # The send is a local activity: one workflow task, no activity task.
        assert local_activity_summaries(history) == [
            "send the verify email mail to 1 recipient over SMTP"
        ]
        assert activity_summaries(history) == []
        assert _workflow_tasks(history) == 1
        replayed = await Replayer(workflows=[DeliverMail]).replay_workflow(history)
        assert replayed.replay_failure is None
    # The operator asked "did my verification mail go out?" finds the run by kind and username.
    query = f"GuichetMailKind = 'verify_email' AND GuichetUsername = 'user-{mail_id}'"

    async def listed() -> list[WorkflowExecution] | None:
        return [w async for w in temporal_env.client.list_workflows(query)] or None

    found = await wait_until(listed, what=f"a run listed by {query}", within=10, every=0.2)
    assert [w.id for w in found] == [f"mail/{mail_id}"]
    assert found[0].typed_search_attributes.get(MAIL_KIND) == "verify_email"
    [mail] = await smtp_sink.wait_for(recipient)
    assert mail.subject == "Vérifiez votre adresse"
    assert "token=abc" in mail.body
    async with sessions.begin() as session:
        started = (await session.execute(select(outbox.c.started_at))).scalar_one()
        assert started is not None
    await engine.dispose()


async def test_a_run_started_before_local_sends_keeps_its_activity_task_and_replays(
    smtp_sink: SmtpSink, temporal_env: WorkflowEnvironment
) -> None:
    """An outbox row written before `send` existed starts a run whose input lacks it: that run
    sends through an activity task, as it did when recorded, and its history replays."""
    key = new_sealing_key()
    queue = f"test-{uuid.uuid4()}"
    settings = WorkerSettings(
        smtp_port=smtp_sink.port, mail_sealing_key=key, temporal_task_queue=queue
    )
    recipient = f"{uuid.uuid4().hex[:8]}@example.org"
    mail_id = str(uuid.uuid4())
    older = DeliverMailInput(
        mail_id=mail_id,
        to=[recipient],
        subject="Ancien format",
        sealed_body=seal("Bonjour", key),
        kind="verify_email",
    )
    async with build_worker(temporal_env.client, settings, task_queue=queue):
        handle = await temporal_env.client.start_workflow(
            DeliverMail.run, older, id=f"mail/{mail_id}", task_queue=queue
        )
        assert (await handle.result()).recipients == 1
    history = await handle.fetch_history()
    assert activity_summaries(history) == ["send the verify email mail to 1 recipient over SMTP"]
    assert local_activity_summaries(history) == []
    assert _workflow_tasks(history) == 2
    replayed = await Replayer(workflows=[DeliverMail]).replay_workflow(history)
    assert replayed.replay_failure is None
    [mail] = await smtp_sink.wait_for(recipient)
    assert mail.subject == "Ancien format"
