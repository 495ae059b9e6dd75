"""Reports for the team: "% within SLA" per plan and target, FAQ deflection per category,
billable consulting time per organisation.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import NotFound, Validator
from services.support.domain.common import parse_uuid, require_agent
from services.support.models import (
    Category,
    Clock,
    ConsultingEntry,
    Contract,
    EventKind,
    FaqView,
    Plan,
    SlaClock,
    SlaEvent,
    Status,
    Ticket,
)
from services.support.settings import SupportSettings


@dataclass(frozen=True)
class TargetFigures:
    clock: str
    measured: int
    within: int
    breached: int

    @property
    def within_percent(self) -> float:
        return 100.0 if self.measured == 0 else round(100.0 * self.within / self.measured, 2)


@dataclass(frozen=True)
class PlanFigures:
    plan: Plan
    tickets_opened: int
    targets: list[TargetFigures]
    breaches: int
    warnings: int


@dataclass(frozen=True)
class DeflectionFigures:
    category: Category
    views: int
    deflections: int
    tickets: int


@dataclass(frozen=True)
class ConsultingFigures:
    organisation_id: uuid.UUID
    organisation_name: str
    plan_id: uuid.UUID
    tickets: int
    minutes: int


@dataclass(frozen=True)
class SlaReport:
    plans: list[PlanFigures]
    deflections: list[DeflectionFigures]
    consulting: list[ConsultingFigures]


async def sla_report(
    *,
    session: AsyncSession,
    settings: SupportSettings,
    actor: Principal | None,
    now: datetime,
    plan_id: str,
    period_start: datetime | None,
    period_end: datetime | None,
) -> SlaReport:
    """Tickets opened in [start, end): per plan and target, the clocks with an outcome and how
    many kept their promise (cancelled tickets are not measured); views and deflections per
    category in the period; consulting minutes logged in the period, per organisation."""
    require_agent(actor)
    v = Validator()
    plan_filter = parse_uuid(v, "plan_id", plan_id, required=False)
    v.check(period_start is not None, "period_start", "is required")
    v.check(period_end is not None, "period_end", "is required")
    if period_start is not None and period_end is not None:
        v.check(
            period_end > period_start,
            "period_end",
            "must be after period_start",
            code="end_before_start",
        )
    v.raise_if_any()
    assert period_start is not None and period_end is not None
    plans_query = select(Plan).order_by(Plan.code)
    if plan_filter is not None:
        plans_query = plans_query.where(Plan.id == plan_filter)
    plans = list(await session.scalars(plans_query))
    if plan_filter is not None and not plans:
        raise NotFound("plan not found")
    in_period = and_(Ticket.created_at >= period_start, Ticket.created_at < period_end)
    figures: list[PlanFigures] = []
    for plan in plans:
        opened = await session.scalar(
            select(func.count()).select_from(Ticket).where(Ticket.plan_id == plan.id, in_period)
        )
        stopped_late = and_(SlaClock.stopped_at.is_not(None), SlaClock.met.is_(False))
        rows = await session.execute(
            select(
                SlaClock.clock,
                func.count().filter(or_(SlaClock.stopped_at.is_not(None), SlaClock.breached)),
                func.count().filter(SlaClock.stopped_at.is_not(None), SlaClock.met.is_(True)),
                func.count().filter(or_(SlaClock.breached, stopped_late)),
            )
            .join(Ticket, Ticket.id == SlaClock.ticket_id)
            .where(Ticket.plan_id == plan.id, in_period, Ticket.status != Status.CANCELLED.value)
            .group_by(SlaClock.clock)
        )
        by_clock = {row[0]: row for row in rows}
        targets = [
            TargetFigures(
                clock=clock.value,
                measured=int(by_clock[clock.value][1]) if clock.value in by_clock else 0,
                within=int(by_clock[clock.value][2]) if clock.value in by_clock else 0,
                breached=int(by_clock[clock.value][3]) if clock.value in by_clock else 0,
            )
            for clock in Clock
        ]
        counts = await session.execute(
            select(
                func.count().filter(SlaEvent.kind == EventKind.BREACH.value),
                func.count().filter(SlaEvent.kind == EventKind.WARNING.value),
            )
            .select_from(SlaEvent)
            .join(Ticket, Ticket.id == SlaEvent.ticket_id)
            .where(Ticket.plan_id == plan.id, in_period)
        )
        breaches, warnings = counts.one()
        figures.append(PlanFigures(plan, int(opened or 0), targets, int(breaches), int(warnings)))
    window = timedelta(seconds=settings.deflection_window_seconds)
    deflected = and_(
        FaqView.ticket_id.is_(None),
        or_(FaqView.deflected_at.is_not(None), FaqView.viewed_at <= now - window),
    )
    view_rows = await session.execute(
        select(
            Category,
            func.count(FaqView.id),
            func.count(FaqView.id).filter(deflected),
            func.count(FaqView.id).filter(FaqView.ticket_id.is_not(None)),
        )
        .outerjoin(
            FaqView,
            and_(
                FaqView.category_id == Category.id,
                FaqView.viewed_at >= period_start,
                FaqView.viewed_at < period_end,
            ),
        )
        .group_by(Category.id)
        .order_by(Category.audience, Category.position, Category.name)
    )
    deflections = [
        DeflectionFigures(row[0], int(row[1]), int(row[2]), int(row[3])) for row in view_rows
    ]
    consulting_query = (
        select(
            Ticket.organisation_id,
            func.coalesce(func.max(Contract.organisation_name), ""),
            Ticket.plan_id,
            func.count(func.distinct(Ticket.id)),
            func.sum(ConsultingEntry.minutes),
        )
        .join(Ticket, Ticket.id == ConsultingEntry.ticket_id)
        .outerjoin(Contract, Contract.organisation_id == Ticket.organisation_id)
        .where(ConsultingEntry.created_at >= period_start, ConsultingEntry.created_at < period_end)
        .group_by(Ticket.organisation_id, Ticket.plan_id)
        .order_by(func.sum(ConsultingEntry.minutes).desc(), Ticket.organisation_id)
    )
    if plan_filter is not None:
        consulting_query = consulting_query.where(Ticket.plan_id == plan_filter)
    consulting = [
        ConsultingFigures(row[0], str(row[1]), row[2], int(row[3]), int(row[4] or 0))
        for row in await session.execute(consulting_query)
    ]
    return SlaReport(figures, deflections, consulting)
