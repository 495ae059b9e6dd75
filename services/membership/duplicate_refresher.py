"""Keeps the stored duplicate reports up to date (services.membership.domain.candidates).

A background task of the membership process: woken by the servicer after a write that changed
client records (and every `poll_interval` anyway, for the writes of another replica), it
recomputes the report of each association with changes, one REPEATABLE READ transaction each.
Failures are logged and retried with a growing pause; the review meanwhile shows the last
report and says it is being updated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.membership.domain import candidates

log = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class DuplicateRefresher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        poll_interval: float = 5.0,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._sessions = sessions
        self._poll_interval = poll_interval
        self._clock = clock
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        pause = self._poll_interval
        while True:
            self._wake.clear()
            try:
                await self.refresh_all()
                pause = self._poll_interval
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("duplicate reports not refreshed: %s", error)
                pause = min(pause * 2, 60.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=pause)

    async def refresh_all(self) -> int:
        """Recomputes every association with changes; answers how many it recomputed."""
        async with self._sessions.begin() as session:
            waiting = await candidates.changed_associations(session)
        done = 0
        for association_id in waiting:
            if await self.refresh(association_id):
                done += 1
        return done

    async def refresh(self, association_id: uuid.UUID) -> bool:
        async with self._sessions() as session, session.begin():
            await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            refreshed = await candidates.refresh(
                session,
                association_id,
                self._clock(),
            )
        if refreshed is not None:
            log.info(
                "duplicate report refreshed",
                extra={
                    "association_id": str(association_id),
                    "records": refreshed.records,
                    "groups": refreshed.groups,
                    "elapsed_ms": refreshed.elapsed_ms,
                },
            )
        return refreshed is not None
