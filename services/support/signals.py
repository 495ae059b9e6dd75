"""The SLA signal outbox: events for ticket workflows, delivered after the commit that made them.

`domain.sla.ticket_event` adds a `sla_signals` row in the same transaction as the change; this
relay sends each row as the `ticket_event` signal, in id order, once the workflow's own start (a
row of the ordinary outbox) has gone out, and marks it sent. Delivery is at least once: a crash
between the signal and the mark sends it again, and the workflow drops a sequence number it already
applied. A workflow that has already ended (ticket closed) gets nothing: the row is marked with
that reason. While Temporal or the database is away, rows wait and the relay backs off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from services.support.models import SlaSignal, outbox
from workflows.contracts.support import EVENT_SIGNAL

log = logging.getLogger(__name__)


class SignalRelay:
    """Delivers pending SLA signals; one per service process, safe to run many (SKIP LOCKED)."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        connect: Callable[[], Awaitable[Client]],
        *,
        poll_interval: float = 0.5,
        batch_size: int = 200,
    ) -> None:
        self._sessions = session_factory
        self._connect = connect
        self._client: Client | None = None
        self._poll_interval = poll_interval
        self._batch_size = batch_size
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        backoff = self._poll_interval
        while True:
            try:
                sent = await self.relay_once()
                backoff = self._poll_interval
                if sent:
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as error:  # Temporal or the database is away: keep the rows.
                log.warning("SLA signal relay waiting: %s", error)
                self._client = None
                backoff = min(backoff * 2, 10.0)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=backoff)

    async def relay_once(self) -> int:
        """Sends every pending signal it can lock whose workflow was started; returns how many."""
        start_pending = exists().where(
            outbox.c.workflow_id == SlaSignal.workflow_id, outbox.c.started_at.is_(None)
        )
        async with self._sessions.begin() as session:
            rows = list(
                await session.scalars(
                    select(SlaSignal)
                    .where(SlaSignal.sent_at.is_(None), ~start_pending)
                    .order_by(SlaSignal.id)
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
            )
            if not rows:
                return 0
            if self._client is None:
                self._client = await self._connect()
            for row in rows:
                row.attempts += 1
                try:
                    await self._client.get_workflow_handle(row.workflow_id).signal(
                        EVENT_SIGNAL, row.payload
                    )
                except RPCError as error:
                    if error.status != RPCStatusCode.NOT_FOUND:
                        raise
                    # The workflow has ended (finished or cancelled ticket): nothing to tell it.
                    row.last_error = f"not delivered: {error.message}"
                row.sent_at = datetime.now(UTC)
            return len(rows)
