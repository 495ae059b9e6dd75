"""Partners' business gauges: the out-of-stock escalations still open, and how overdue the most
late one is (the "escalation not moving" alert, docs/runbook.md).

Read from partners' own `escalations` table (see `services.kit.metrics.DatabaseCollector` for
why from the rows), refreshed in the background: one aggregate over the open ones, found by
`ix_escalations_status_created`.
"""

from __future__ import annotations

from sqlalchemy import case, extract, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.metrics import Gauge, Samples, with_database_gauges
from services.kit.runtime import ServiceSpec
from services.partners.models import Escalation, EscalationStatus

SERVICE = "partners"
OPEN_STATUSES = (
    EscalationStatus.AWAITING_ANSWER.value,
    EscalationStatus.ACCEPTED.value,
    EscalationStatus.ESCALATED.value,
)
OPEN = Gauge(
    "guichet_partners_escalations_open",
    "Out-of-stock escalations not settled yet, by status (awaiting_answer, accepted, escalated).",
    ("status",),
)
OVERDUE = Gauge(
    "guichet_partners_escalations_overdue_seconds",
    "How far past its deadline the most overdue open escalation is (the answer deadline while "
    "awaiting the answer, support's deadline once escalated, its last change once accepted); 0 "
    "when none is overdue.",
)
GAUGES = (OPEN, OVERDUE)


async def read(session: AsyncSession) -> Samples:
    e = Escalation
    due = case(
        (e.status == EscalationStatus.AWAITING_ANSWER.value, e.answer_deadline),
        (e.status == EscalationStatus.ESCALATED.value, e.support_deadline),
        else_=e.updated_at,
    )
    rows = (
        await session.execute(
            select(
                e.status,
                func.count(),
                func.coalesce(func.max(extract("epoch", func.now() - due)), 0),
            )
            .where(e.status.in_(OPEN_STATUSES))
            .group_by(e.status)
        )
    ).all()
    counts = {status: 0.0 for status in OPEN_STATUSES}
    overdue = 0.0
    for status, count, late in rows:
        counts[status] = float(count)
        overdue = max(overdue, float(late))
    return {
        OPEN.name: [((status,), count) for status, count in counts.items()],
        OVERDUE.name: [((), overdue)],
    }


def with_gauges(spec: ServiceSpec) -> ServiceSpec:
    """Partners as declared, plus these gauges on its metrics port."""
    return with_database_gauges(spec, SERVICE, GAUGES, read)
