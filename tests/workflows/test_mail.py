"""DeliverMail round-trip on the real dev server: outbox row -> relay -> workflow -> SMTP sink."""

from __future__ import annotations

import uuid

from sqlalchemy import MetaData, select
from temporalio.client import WorkflowExecution
from temporalio.testing import WorkflowEnvironment

from services.kit.db import create_engine, create_session_factory
from services.kit.mail import enqueue_mail, new_sealing_key
from services.kit.outbox import OutboxRelay, outbox_table
from services.kit.smtpsink import SmtpSink
from services.kit.temporal import MAIL_KIND, USERNAME
from services.kit.testing import DatabaseServer, wait_until
from tests.workflows.readable import activity_summaries
from workflows.mail import DeliverMail
from workflows.settings import WorkerSettings
from workflows.worker import build_worker


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
        assert activity_summaries(history) == [
            "send the verify email mail to 1 recipient over SMTP"
        ]
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
