"""The outbox keeps a workflow start while Temporal is away and makes it once it is back."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import MetaData, select
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from services.kit.db import create_engine, create_session_factory
from services.kit.mail import enqueue_mail, new_sealing_key
from services.kit.outbox import OutboxRelay, outbox_table
from services.kit.testing import DatabaseServer


async def test_rows_wait_while_temporal_is_down_and_start_once_after(
    pg: DatabaseServer, temporal_env: WorkflowEnvironment
) -> None:
    metadata = MetaData()
    outbox = outbox_table(metadata)
    engine = create_engine(await pg.new_database("outbox"))
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    sessions = create_session_factory(engine)
    queue = f"nobody-polls-{uuid.uuid4()}"
    mail_id = str(uuid.uuid4())
    async with sessions.begin() as session:
        await enqueue_mail(
            session,
            outbox,
            mail_id=mail_id,
            to=["someone@example.org"],
            subject="s",
            body="b",
            sealing_key=new_sealing_key(),
            task_queue=queue,
        )

    async def temporal_down() -> Client:
        return await Client.connect("127.0.0.1:1")  # nothing listens there

    with pytest.raises(RuntimeError):
        await OutboxRelay(sessions, outbox, temporal_down).relay_once()
    async with sessions.begin() as session:
        assert (await session.execute(select(outbox.c.started_at))).scalar_one() is None

    async def temporal_up() -> Client:
        return temporal_env.client

    relay = OutboxRelay(sessions, outbox, temporal_up)
    assert await relay.relay_once() == 1
    # A second relay (another replica, or a retry after a crash) starts nothing twice.
    async with sessions.begin() as session:
        await session.execute(outbox.update().values(started_at=None))
    assert await relay.relay_once() == 1
    description = await temporal_env.client.get_workflow_handle(f"mail/{mail_id}").describe()
    assert description.task_queue == queue
    count = 0
    async for _ in temporal_env.client.list_workflows(f"WorkflowId = 'mail/{mail_id}'"):
        count += 1
    assert count == 1
    await engine.dispose()
