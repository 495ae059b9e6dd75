"""Groups' business gauges: process requests by status, and how the in-flight ones progress.

Read from groups' own tables (see `DatabaseCollector` for why): one aggregate over
`process_requests` grouped by status (an index-only scan of `ix_process_requests_provider_status`
when the table is vacuumed), refreshed in the background every few seconds. The outbox backlog is
every service's (`services.kit.runtime`). What an operator reads from them is in docs/runbook.md.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.groups.models import ProcessRequest, RequestStatus
from services.kit.metrics import (
    DatabaseCollector,
    Gauge,
    Samples,
    with_database_gauges,
)
from services.kit.runtime import ServiceSpec

SERVICE = "groups"
REQUESTS = Gauge(
    "guichet_groups_process_requests",
    "Process requests by status (pending, in_progress, failed, completed).",
    ("status",),
)
IN_FLIGHT_ACCOUNTS = Gauge(
    "guichet_groups_in_flight_program_accounts",
    "Program accounts of the pending and in-progress requests: total to walk, done, failed.",
    ("state",),
)
IN_FLIGHT_OLDEST = Gauge(
    "guichet_groups_in_flight_oldest_seconds",
    "Age of the oldest pending or in-progress request (0 when none).",
)
IN_FLIGHT_IDLE = Gauge(
    "guichet_groups_in_flight_idle_seconds",
    "Time since the least recently moved pending or in-progress request last changed (0 when "
    "none): grows while a run is stuck or no worker polls.",
)
GAUGES = (REQUESTS, IN_FLIGHT_ACCOUNTS, IN_FLIGHT_OLDEST, IN_FLIGHT_IDLE)
IN_FLIGHT = (RequestStatus.PENDING.value, RequestStatus.IN_PROGRESS.value)


async def read(session: AsyncSession) -> Samples:
    """One pass over process_requests by status; the in-flight sums come from the same rows."""
    r = ProcessRequest
    in_flight = r.status.in_(IN_FLIGHT)
    rows = (
        await session.execute(
            select(
                r.status,
                func.count(),
                func.coalesce(func.sum(case((in_flight, r.total), else_=0)), 0),
                func.coalesce(func.sum(case((in_flight, r.done), else_=0)), 0),
                func.coalesce(func.sum(case((in_flight, r.failed), else_=0)), 0),
                func.min(case((in_flight, r.created_at))),
                func.min(case((in_flight, r.updated_at))),
                func.now(),
            ).group_by(r.status)
        )
    ).all()
    counts = dict.fromkeys((s.value for s in RequestStatus), 0.0)
    total = done = failed = oldest = idle = 0.0
    for status, count, walk, moved, refused, created, updated, now in rows:
        counts[status] = float(count)
        total, done, failed = total + float(walk), done + float(moved), failed + float(refused)
        if created is not None:
            oldest = max(oldest, (now - created).total_seconds())
        if updated is not None:
            idle = max(idle, (now - updated).total_seconds())
    return {
        REQUESTS.name: [((status,), count) for status, count in counts.items()],
        IN_FLIGHT_ACCOUNTS.name: [(("total",), total), (("done",), done), (("failed",), failed)],
        IN_FLIGHT_OLDEST.name: [((), oldest)],
        IN_FLIGHT_IDLE.name: [((), idle)],
    }


def process_request_gauges(
    sessions: async_sessionmaker[AsyncSession], *, max_age: float = 5.0
) -> DatabaseCollector:
    """Built on the service's loop: the collector runs its query there."""
    return DatabaseCollector(
        SERVICE, sessions, GAUGES, read, loop=asyncio.get_running_loop(), max_age=max_age
    )


def with_gauges(spec: ServiceSpec) -> ServiceSpec:
    """Groups as declared, plus these gauges on its metrics port."""
    return with_database_gauges(spec, SERVICE, GAUGES, read)
