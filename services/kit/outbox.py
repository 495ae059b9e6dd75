"""The transactional outbox: a workflow start recorded with the change that needs it.

A service adds an `outbox` row in the same transaction as its change; the relay starts the
workflow once Temporal answers (retrying while it does not) and marks the row. Workflow ids are
business keys and the start uses USE_EXISTING, so a start retried after a crash is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column as _Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

log = logging.getLogger(__name__)


def outbox_table(metadata: MetaData) -> Table:
    """Each service owns its outbox, in its own database."""
    return Table(
        "outbox",
        metadata,
        _Column("id", UUID(as_uuid=True), primary_key=True),
        _Column("workflow", String(100), nullable=False),
        _Column("workflow_id", String(300), nullable=False, unique=True),
        _Column("task_queue", String(100), nullable=False),
        _Column("argument", JSONB, nullable=False),
        _Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        _Column("started_at", DateTime(timezone=True), nullable=True, index=True),
        _Column("attempts", Integer, nullable=False, server_default="0"),
        _Column("last_error", Text, nullable=True),
    )


async def enqueue(
    session: AsyncSession,
    table: Table,
    *,
    workflow: str,
    workflow_id: str,
    argument: dict[str, Any],
    task_queue: str,
) -> None:
    """Records a workflow to start; the caller's transaction decides whether it happens."""
    await session.execute(
        table.insert().values(
            id=uuid.uuid4(),
            workflow=workflow,
            workflow_id=workflow_id,
            task_queue=task_queue,
            argument=argument,
        )
    )


class OutboxRelay:
    """Starts the workflows recorded in an outbox; one per service process, safe to run many."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        table: Table,
        connect: Callable[[], Awaitable[Client]],
        *,
        poll_interval: float = 0.5,
        batch_size: int = 100,
    ) -> None:
        self._sessions = session_factory
        self._table = table
        self._connect = connect
        self._client: Client | None = None
        self._poll_interval = poll_interval
        self._batch_size = batch_size
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Called after a commit that enqueued something, so it starts without waiting a poll."""
        self._wake.set()

    async def run(self) -> None:
        backoff = self._poll_interval
        while True:
            try:
                started = await self.relay_once()
                backoff = self._poll_interval
                if started:
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as error:  # Temporal or the database is away: keep the rows, retry.
                log.warning("outbox relay waiting: %s", error)
                self._client = None
                backoff = min(backoff * 2, 10.0)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=backoff)

    async def relay_once(self) -> int:
        """Starts every pending row it can lock; returns how many it started."""
        t = self._table
        async with self._sessions.begin() as session:
            rows = (
                await session.execute(
                    select(t.c.id, t.c.workflow, t.c.workflow_id, t.c.task_queue, t.c.argument)
                    .where(t.c.started_at.is_(None))
                    .order_by(t.c.created_at)
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            if self._client is None:
                self._client = await self._connect()
            for row in rows:
                # Already started before a crash, or already completed: either way, done.
                with contextlib.suppress(WorkflowAlreadyStartedError):
                    await self._client.start_workflow(
                        row.workflow,
                        row.argument,
                        id=row.workflow_id,
                        task_queue=row.task_queue,
                        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    )
                await session.execute(
                    update(t)
                    .where(t.c.id == row.id)
                    .values(started_at=datetime.now(UTC), attempts=t.c.attempts + 1)
                )
            return len(rows)
