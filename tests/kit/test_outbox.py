"""The outbox keeps a workflow start while Temporal is away and makes it once it is back."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import pytest
from opentelemetry import context as otel_context, trace
from sqlalchemy import MetaData, Table, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    StartWorkflowInput,
    WorkflowHandle,
)
from temporalio.testing import WorkflowEnvironment

from services.kit.db import create_engine, create_session_factory
from services.kit.mail import enqueue_mail, new_sealing_key
from services.kit.outbox import OutboxRelay, enqueue, outbox_table
from services.kit.temporal import GROUP
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


class CountStarts(Interceptor):
    """Counts the start calls the relay makes on a real client, and how many run at once."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.in_flight = 0
        self.peak = 0

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        counter = self

        class Outbound(OutboundInterceptor):
            async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
                counter.calls[input.id] += 1
                counter.in_flight += 1
                counter.peak = max(counter.peak, counter.in_flight)
                try:
                    return await super().start_workflow(input)
                finally:
                    counter.in_flight -= 1

        return Outbound(next)


def counted(client: Client, counter: CountStarts) -> Client:
    """The same connection, with the counter on the way out."""
    config = client.config()
    config["interceptors"] = [*config["interceptors"], counter]
    return Client(**config)


async def new_outbox(
    pg: DatabaseServer,
) -> tuple[AsyncEngine, async_sessionmaker[AsyncSession], Table]:
    metadata = MetaData()
    outbox = outbox_table(metadata)
    engine = create_engine(await pg.new_database("outbox"))
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    return engine, create_session_factory(engine), outbox


async def enqueue_many(
    sessions: async_sessionmaker[AsyncSession], outbox: Table, count: int, queue: str
) -> list[str]:
    """`count` starts of a workflow nobody runs (the queue has no worker): they stay running."""
    ids = [f"outbox-test/{uuid.uuid4()}" for _ in range(count)]
    async with sessions.begin() as session:
        for workflow_id in ids:
            await enqueue(
                session,
                outbox,
                workflow="NobodyRunsThis",
                workflow_id=workflow_id,
                argument={"n": workflow_id},
                task_queue=queue,
            )
    return ids


async def pending(sessions: async_sessionmaker[AsyncSession], outbox: Table) -> list[Any]:
    async with sessions.begin() as session:
        return list(
            (
                await session.execute(
                    select(outbox.c.workflow_id, outbox.c.attempts, outbox.c.last_error).where(
                        outbox.c.started_at.is_(None)
                    )
                )
            ).all()
        )


async def test_a_batch_starts_concurrently_and_is_marked_at_once(
    pg: DatabaseServer, temporal_env: WorkflowEnvironment
) -> None:
    engine, sessions, outbox = await new_outbox(pg)
    ids = await enqueue_many(sessions, outbox, 250, f"nobody-polls-{uuid.uuid4()}")
    counter = CountStarts()
    client = counted(temporal_env.client, counter)

    async def connect() -> Client:
        return client

    relay = OutboxRelay(sessions, outbox, connect, batch_size=100, concurrency=32)
    assert [await relay.relay_once() for _ in range(4)] == [100, 100, 50, 0]
    assert counter.calls == Counter(dict.fromkeys(ids, 1))
    assert 1 < counter.peak <= 32  # concurrent, and bounded
    async with sessions.begin() as session:
        marks = (await session.execute(select(outbox.c.started_at, outbox.c.attempts))).all()
    assert len(marks) == 250
    assert all(started is not None and attempts == 1 for started, attempts in marks)
    # The first batch's rows were marked by one statement: one transaction, one instant.
    assert len({started for started, _ in marks}) == 3
    for workflow_id in ids[:3]:
        description = await temporal_env.client.get_workflow_handle(workflow_id).describe()
        assert description.workflow_type == "NobodyRunsThis"
    await engine.dispose()


async def test_a_start_temporal_refuses_keeps_its_row_and_holds_up_no_other(
    pg: DatabaseServer, temporal_env: WorkflowEnvironment
) -> None:
    """A payload over Temporal's 2 MiB blob limit (say, a mail with a huge body) is refused."""
    engine, sessions, outbox = await new_outbox(pg)
    queue = f"nobody-polls-{uuid.uuid4()}"
    before = await enqueue_many(sessions, outbox, 20, queue)
    too_big = f"outbox-test/too-big-{uuid.uuid4()}"
    async with sessions.begin() as session:
        await enqueue(
            session,
            outbox,
            workflow="NobodyRunsThis",
            workflow_id=too_big,
            argument={"body": "x" * (3 * 1024 * 1024)},
            task_queue=queue,
        )
    after = await enqueue_many(sessions, outbox, 20, queue)

    async def connect() -> Client:
        return temporal_env.client

    relay = OutboxRelay(sessions, outbox, connect, batch_size=100, poll_interval=0.5)
    assert await relay.relay_once() == 40
    [(workflow_id, attempts, last_error)] = await pending(sessions, outbox)
    assert (workflow_id, attempts) == (too_big, 1)
    assert last_error.startswith("INVALID_ARGUMENT")
    assert "size" in last_error.lower()
    for started in (before[0], after[-1]):
        await temporal_env.client.get_workflow_handle(started).describe()
    # The refused row waits its turn (1 s, then 2, 4 ... up to 5 minutes) instead of heading
    # every batch; rows added meanwhile go out at once.
    late = await enqueue_many(sessions, outbox, 5, queue)
    assert await relay.relay_once() == 5
    assert [row.attempts for row in await pending(sessions, outbox)] == [1]
    await asyncio.sleep(1.1)
    assert await relay.relay_once() == 0  # tried again, refused again: no error, no spin
    [(_, attempts, _)] = await pending(sessions, outbox)
    assert attempts == 2
    await temporal_env.client.get_workflow_handle(late[0]).describe()
    await engine.dispose()


async def test_two_relays_racing_start_each_workflow_once(
    pg: DatabaseServer, temporal_env: WorkflowEnvironment
) -> None:
    engine, sessions, outbox = await new_outbox(pg)
    ids = await enqueue_many(sessions, outbox, 300, f"nobody-polls-{uuid.uuid4()}")
    counter = CountStarts()
    client = counted(temporal_env.client, counter)

    async def connect() -> Client:
        return client

    relays = [OutboxRelay(sessions, outbox, connect, batch_size=40) for _ in range(2)]

    async def drain(relay: OutboxRelay) -> int:
        total = 0
        while started := await relay.relay_once():
            total += started
        return total

    shares = await asyncio.gather(*(drain(relay) for relay in relays))
    assert sum(shares) == 300
    assert all(share > 0 for share in shares)  # they really raced over the same rows
    assert counter.calls == Counter(dict.fromkeys(ids, 1))  # SKIP LOCKED: no start twice
    assert await pending(sessions, outbox) == []
    async with sessions.begin() as session:
        attempts = (await session.execute(select(outbox.c.attempts))).scalars().all()
    assert set(attempts) == {1}
    await engine.dispose()


class TraceAtStart(Interceptor):
    """Records the trace id current when the relay starts each workflow."""

    def __init__(self) -> None:
        self.trace_ids: dict[str, int] = {}

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        seen = self.trace_ids

        class Outbound(OutboundInterceptor):
            async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
                seen[input.id] = trace.get_current_span().get_span_context().trace_id
                return await super().start_workflow(input)

        return Outbound(next)


async def test_a_start_continues_the_recording_trace_and_is_searchable_at_once(
    pg: DatabaseServer, temporal_env: WorkflowEnvironment
) -> None:
    """The relay starts later, in its own task: the row carries the request's trace context and
    the business keys, so the run is in the request's trace and found by its key before any
    worker has picked it up (nobody polls this queue)."""
    engine, sessions, outbox = await new_outbox(pg)
    request_trace = 0x5EED_0000_0000_0000_0000_0000_0000_0001
    recording = trace.NonRecordingSpan(
        trace.SpanContext(request_trace, 0x1234, is_remote=False, trace_flags=trace.TraceFlags(1))
    )
    workflow_id = f"outbox-test/{uuid.uuid4()}"
    token = otel_context.attach(trace.set_span_in_context(recording))
    try:
        async with sessions.begin() as session:
            await enqueue(
                session,
                outbox,
                workflow="NobodyRunsThis",
                workflow_id=workflow_id,
                argument={},
                task_queue=f"nobody-polls-{uuid.uuid4()}",
                search_attributes={GROUP.name: "Transitaires du Sud"},
            )
    finally:
        otel_context.detach(token)
    seen = TraceAtStart()

    async def connect() -> Client:
        config = temporal_env.client.config()
        config["interceptors"] = [*config["interceptors"], seen]
        return Client(**config)

    # The relay runs outside any request: its own context has no span at all.
    assert not trace.get_current_span().get_span_context().is_valid
    assert await OutboxRelay(sessions, outbox, connect).relay_once() == 1
    assert seen.trace_ids == {workflow_id: request_trace}
    description = await temporal_env.client.get_workflow_handle(workflow_id).describe()
    assert description.typed_search_attributes.get(GROUP) == "Transitaires du Sud"
    await engine.dispose()
