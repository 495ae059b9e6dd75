"""Support's business gauges: open tickets by SLA state and priority, and the SLA signal backlog.

Read at scrape time from support's own tables (see `DatabaseCollector` for why). The SLA state of
an open ticket (open, in progress or waiting on the customer) is the first that holds of:
`paused` (waiting on the customer: its clocks stand still), `breached` (a target of the ticket
was missed), `warned` (a running clock passed its warning threshold), `within`. The columns are
the ones the domain keeps for the queue (`tickets.at_risk`, `tickets.breached`), and only open
tickets are read (`ix_tickets_queue` leads with the status). The signal backlog counts the
events not yet delivered to the TicketSla workflows (the partial index `ix_sla_signals_pending`).
"""

from __future__ import annotations

import asyncio

from sqlalchemy import case, extract, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.kit.metrics import (
    DatabaseCollector,
    Gauge,
    Samples,
    with_database_gauges,
)
from services.kit.runtime import ServiceSpec
from services.support.models import Priority, SlaSignal, Status, Ticket

SERVICE = "support"
STATES = ("within", "warned", "breached", "paused")
OPEN = (Status.OPEN.value, Status.IN_PROGRESS.value, Status.WAITING_ON_CUSTOMER.value)
TICKETS = Gauge(
    "guichet_support_open_tickets",
    "Open tickets by SLA state (within, warned, breached, paused) and priority.",
    ("sla_state", "priority"),
)
SIGNALS_PENDING = Gauge(
    "guichet_support_sla_signals_pending",
    "Ticket events recorded for the TicketSla workflows and not delivered yet.",
)
SIGNALS_OLDEST = Gauge(
    "guichet_support_sla_signals_oldest_pending_seconds",
    "Age of the oldest undelivered ticket event (0 when none).",
)
GAUGES = (TICKETS, SIGNALS_PENDING, SIGNALS_OLDEST)


async def read(session: AsyncSession) -> Samples:
    """Open tickets grouped by state and priority, then the signal backlog."""
    t = Ticket
    state = case(
        (t.status == Status.WAITING_ON_CUSTOMER.value, "paused"),
        (t.breached, "breached"),
        (t.at_risk, "warned"),
        else_="within",
    ).label("state")
    rows = (
        await session.execute(
            select(state, t.priority, func.count())
            .where(t.status.in_(OPEN))
            .group_by(state, t.priority)
        )
    ).all()
    counts = {(s, p.value): 0.0 for s in STATES for p in Priority}
    for sla_state, priority, count in rows:
        counts[(sla_state, priority)] = float(count)
    signals = (
        await session.execute(
            select(
                func.count(),
                func.coalesce(extract("epoch", func.now() - func.min(SlaSignal.created_at)), 0),
            ).where(SlaSignal.sent_at.is_(None))
        )
    ).one()
    return {
        TICKETS.name: [(labels, count) for labels, count in counts.items()],
        SIGNALS_PENDING.name: [((), float(signals[0]))],
        SIGNALS_OLDEST.name: [((), max(float(signals[1]), 0.0))],
    }


def sla_gauges(
    sessions: async_sessionmaker[AsyncSession], *, max_age: float = 5.0
) -> DatabaseCollector:
    """Built on the service's loop: the collector runs its query there."""
    return DatabaseCollector(
        SERVICE, sessions, GAUGES, read, loop=asyncio.get_running_loop(), max_age=max_age
    )


def with_gauges(spec: ServiceSpec) -> ServiceSpec:
    """Support as declared, plus these gauges on its metrics port."""
    return with_database_gauges(spec, SERVICE, GAUGES, read)
