"""The transactional outbox: a workflow start recorded with the change that needs it.

A service adds an `outbox` row in the same transaction as its change; the relay starts the
workflow once Temporal answers (retrying while it does not) and marks the row. Workflow ids are
business keys and the start uses USE_EXISTING, so a start retried after a crash is harmless.
A row is marked only once its start succeeded (or its workflow already existed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from opentelemetry import context as otel_context, propagate
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from sqlalchemy import (
    Column as _Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.common import (
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

log = logging.getLogger(__name__)

# `last_error` keeps the start of the message: enough to tell why, never a whole payload.
_ERROR_CHARS = 2000

# Answers no retry soon will change (Temporal judged the start itself, it was not just away).
_REFUSALS = frozenset(
    {
        RPCStatusCode.INVALID_ARGUMENT,
        RPCStatusCode.FAILED_PRECONDITION,
        RPCStatusCode.NOT_FOUND,
        RPCStatusCode.ALREADY_EXISTS,
        RPCStatusCode.PERMISSION_DENIED,
        RPCStatusCode.UNAUTHENTICATED,
        RPCStatusCode.OUT_OF_RANGE,
        RPCStatusCode.UNIMPLEMENTED,
    }
)


class OutboxStartError(RuntimeError):
    """Rows were tried and none started because Temporal did not answer: the relay backs off."""


def _refused(error: BaseException) -> bool:
    return isinstance(error, RPCError) and error.status in _REFUSALS


def _describe(error: BaseException) -> str:
    if isinstance(error, RPCError):
        return f"{error.status.name}: {error.message}"
    return f"{type(error).__name__}: {error}"


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
        # W3C trace context of the change that recorded the row: the start continues its trace.
        _Column("trace_context", JSONB, nullable=True),
        # Keyword search attributes set at the start, so the run is found by its business key
        # before its first workflow task has run.
        _Column("search_attributes", JSONB, nullable=True),
    )


async def enqueue(
    session: AsyncSession,
    table: Table,
    *,
    workflow: str,
    workflow_id: str,
    argument: dict[str, Any],
    task_queue: str,
    search_attributes: Mapping[str, str | int] | None = None,
) -> None:
    """Records a workflow to start; the caller's transaction decides whether it happens.

    The current trace context is kept with it, so that the request that recorded the row and the
    workflow it starts are one trace (the relay starts it later, in its own task).
    """
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    await session.execute(
        table.insert().values(
            id=uuid.uuid4(),
            workflow=workflow,
            workflow_id=workflow_id,
            task_queue=task_queue,
            argument=argument,
            trace_context=carrier or None,
            search_attributes=dict(search_attributes) if search_attributes else None,
        )
    )


def _typed_attributes(attributes: dict[str, Any] | None) -> TypedSearchAttributes | None:
    """The row's attributes with the types of the registry (`services.kit.temporal`): a
    Keyword unless the registry says otherwise (an Int is stored as its digits)."""
    if not attributes:
        return None
    from services.kit.temporal import typed_pair

    return TypedSearchAttributes([typed_pair(name, value) for name, value in attributes.items()])


class OutboxRelay:
    """Starts the workflows recorded in an outbox; one per service process, safe to run many.

    A batch of rows is locked (`SKIP LOCKED`, so two relays never take the same row), their
    workflows are started concurrently (at most `concurrency` calls in flight: one start is a
    round trip to Temporal, and one at a time capped a relay at ~20 starts/s), and the started
    rows are marked in one UPDATE before the lock is released. A start that fails leaves its row
    pending with `attempts` and `last_error`; if Temporal refused it (not merely was away) this
    relay skips the row for a while, doubling up to `max_row_backoff`, so a row that cannot start
    never takes the head of every batch nor holds up the rows behind it.
    """

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        table: Table,
        connect: Callable[[], Awaitable[Client]],
        *,
        poll_interval: float = 0.5,
        batch_size: int = 100,
        concurrency: int = 32,
        max_row_backoff: float = 300.0,
    ) -> None:
        self._sessions = session_factory
        self._table = table
        self._connect = connect
        self._client: Client | None = None
        self._poll_interval = poll_interval
        self._batch_size = batch_size
        self._concurrency = concurrency
        self._max_row_backoff = max_row_backoff
        # Rows Temporal refused, by id: when this relay may try them again (monotonic seconds).
        self._deferred: dict[uuid.UUID, float] = {}
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
        """Starts every pending row it can lock; returns how many it started.

        Raises `OutboxStartError` when none started because Temporal was away, so `run` backs
        off; rows Temporal refused are recorded and skipped for a while, and raise nothing.
        """
        t = self._table
        now = time.monotonic()
        self._deferred = {key: until for key, until in self._deferred.items() if until > now}
        query = (
            select(
                t.c.id,
                t.c.workflow,
                t.c.workflow_id,
                t.c.task_queue,
                t.c.argument,
                t.c.attempts,
                t.c.trace_context,
                t.c.search_attributes,
            )
            .where(t.c.started_at.is_(None))
            .order_by(t.c.created_at)
            .limit(self._batch_size)
            .with_for_update(skip_locked=True)
        )
        if self._deferred:
            query = query.where(t.c.id.not_in(list(self._deferred)))
        # The poll runs every half second: its own SQL is not worth a trace each time.
        token = otel_context.attach(otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            return await self._relay_batch(query)
        finally:
            otel_context.detach(token)

    async def _relay_batch(self, query: Any) -> int:
        t = self._table
        async with self._sessions.begin() as session:
            rows = (await session.execute(query)).all()
            if not rows:
                return 0
            if self._client is None:
                self._client = await self._connect()
            client = self._client
            gate = asyncio.Semaphore(self._concurrency)

            async def start(row: Any) -> BaseException | None:
                # In the recording request's trace (instrumentation back on for the start).
                parent = propagate.extract(row.trace_context or {})
                token = otel_context.attach(
                    otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, False, parent)
                )
                async with gate:
                    try:
                        await client.start_workflow(
                            row.workflow,
                            row.argument,
                            id=row.workflow_id,
                            task_queue=row.task_queue,
                            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                            search_attributes=_typed_attributes(row.search_attributes),
                        )
                    except WorkflowAlreadyStartedError:
                        return None  # already completed (started before a crash): done
                    except asyncio.CancelledError:
                        raise
                    except Exception as error:
                        return error
                    finally:
                        otel_context.detach(token)
                    return None

            outcomes = await asyncio.gather(*(start(row) for row in rows))
            started = [row.id for row, error in zip(rows, outcomes, strict=True) if error is None]
            failed = [(row, error) for row, error in zip(rows, outcomes, strict=True) if error]
            if started:
                await session.execute(
                    update(t)
                    .where(t.c.id.in_(started))
                    .values(started_at=datetime.now(UTC), attempts=t.c.attempts + 1)
                )
            if failed:
                await session.execute(
                    update(t)
                    .where(t.c.id == bindparam("row_id"))
                    .values(attempts=t.c.attempts + 1, last_error=bindparam("error")),
                    [
                        {"row_id": row.id, "error": _describe(error)[:_ERROR_CHARS]}
                        for row, error in failed
                    ],
                )
                for row, error in failed:
                    log.warning(
                        "outbox start failed",
                        extra={"workflow_id": row.workflow_id, "error": _describe(error)},
                    )
                    if _refused(error):
                        delay = self._poll_interval * 2 ** min(row.attempts + 1, 20)
                        self._deferred[row.id] = time.monotonic() + min(
                            delay, self._max_row_backoff
                        )
        away = [error for _, error in failed if not _refused(error)]
        if away and not started:
            raise OutboxStartError(f"{len(away)} workflow start(s) failed: {_describe(away[0])}")
        return len(started)
