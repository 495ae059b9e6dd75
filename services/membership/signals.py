"""Delivers changes to the renewal workflows: a signal outbox.

A changed renewal date or an ended membership writes a `renewal_signals` row in the same
transaction as the change (`_signal_renewal` in `domain/banner.py`). This relay sends each row
with signal-with-start (`membership_changed(version)` to `renewal/<membership_id>`, starting
the workflow if it is not running) and marks it sent. A crash between the signal and the mark
sends it again: harmless, since the workflow keeps the highest version it heard and re-reads the
membership itself. While Temporal is away, rows wait and the relay backs off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from services.membership.domain.renewals import pending_signals
from workflows.contracts.membership import CHANGED_SIGNAL, RENEWAL_WORKFLOW, renewal_workflow_id

log = logging.getLogger(__name__)


class RenewalSignalRelay:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        connect: Callable[[], Awaitable[Client]],
        *,
        task_queue: str,
        poll_interval: float = 1.0,
        batch_size: int = 100,
    ) -> None:
        self._sessions = sessions
        self._connect = connect
        self._client: Client | None = None
        self._task_queue = task_queue
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
            except Exception as error:
                log.warning("renewal signal relay waiting: %s", error)
                self._client = None
                backoff = min(backoff * 2, 10.0)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=backoff)

    async def relay_once(self) -> int:
        async with self._sessions.begin() as session:
            rows = await pending_signals(session, limit=self._batch_size)
            if not rows:
                return 0
            if self._client is None:
                self._client = await self._connect()
            for row in rows:
                await self._client.start_workflow(
                    RENEWAL_WORKFLOW,
                    {"membership_id": str(row.membership_id)},
                    id=renewal_workflow_id(row.membership_id),
                    task_queue=self._task_queue,
                    start_signal=CHANGED_SIGNAL,
                    start_signal_args=[row.version],
                )
                row.sent_at = datetime.now(UTC)
                row.attempts += 1
            return len(rows)
