"""DeliverMail round-trip on the real dev server: outbox row -> relay -> workflow -> SMTP sink."""

from __future__ import annotations

import uuid

from sqlalchemy import MetaData, select
from temporalio.testing import WorkflowEnvironment

from services.kit.db import create_engine, create_session_factory
from services.kit.mail import enqueue_mail, new_sealing_key
from services.kit.outbox import OutboxRelay, outbox_table
from services.kit.smtpsink import SmtpSink
from services.kit.testing import DatabaseServer
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
    [mail] = await smtp_sink.wait_for(recipient)
    assert mail.subject == "Vérifiez votre adresse"
    assert "token=abc" in mail.body
    async with sessions.begin() as session:
        started = (await session.execute(select(outbox.c.started_at))).scalar_one()
        assert started is not None
    await engine.dispose()
