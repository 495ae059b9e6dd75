"""SLA events reported by the workflow and the SLA report: the support servicer's methods."""

from __future__ import annotations

from datetime import UTC

from guichet.support.v1 import support_pb2 as pb

from services.kit.auth import current_principal
from services.kit.metrics import workflow_metrics
from services.support.domain.reports import sla_report
from services.support.domain.sla import record_sla_event
from services.support.models import Clock
from services.support.rpc.base import Context, ServicerBase
from services.support.rpc.protos import CLOCK, CLOCK_IN, EVENT_IN, enum_in, event_to_proto, time_in


class SlaMethods(ServicerBase):
    """RecordSlaEvent and GetSlaReport."""

    async def RecordSlaEvent(
        self, request: pb.RecordSlaEventRequest, context: Context
    ) -> pb.RecordSlaEventResponse:
        now = self._clock()
        async with self._sessions.begin() as session:
            recorded, event = await record_sla_event(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=now,
                ticket_id=request.ticket_id,
                kind=enum_in(EVENT_IN, request.kind),
                clock=enum_in(CLOCK_IN, request.clock),
                cycle=request.cycle,
                due_at=time_in(request.due_time, request.HasField("due_time")),
            )
        self._committed()
        if recorded and request.HasField("due_time"):
            # docs/slo.md: warnings and breaches are recorded within a minute of their due time.
            late = (now - request.due_time.ToDatetime(tzinfo=UTC)).total_seconds()
            workflow_metrics().step_done("TicketSla", enum_in(EVENT_IN, request.kind), late)
        return pb.RecordSlaEventResponse(
            recorded=recorded, event=event_to_proto(event) if event is not None else None
        )

    async def GetSlaReport(
        self, request: pb.GetSlaReportRequest, context: Context
    ) -> pb.GetSlaReportResponse:
        async with self._sessions.begin() as session:
            report = await sla_report(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                plan_id=request.plan_id,
                period_start=time_in(request.period_start, request.HasField("period_start")),
                period_end=time_in(request.period_end, request.HasField("period_end")),
            )
        return pb.GetSlaReportResponse(
            plans=[
                pb.PlanReport(
                    plan_id=str(p.plan.id),
                    plan_code=p.plan.code,
                    plan_name=p.plan.name,
                    tickets_opened=p.tickets_opened,
                    targets=[
                        pb.TargetReport(
                            clock=CLOCK[Clock(t.clock)],
                            measured=t.measured,
                            within=t.within,
                            breached=t.breached,
                            within_percent=t.within_percent,
                        )
                        for t in p.targets
                    ],
                    breaches=p.breaches,
                    warnings=p.warnings,
                )
                for p in report.plans
            ],
            deflections=[
                pb.CategoryDeflection(
                    category_id=str(d.category.id),
                    category_name=d.category.name,
                    views=d.views,
                    deflections=d.deflections,
                    tickets=d.tickets,
                )
                for d in report.deflections
            ],
            consulting=[
                pb.ConsultingTime(
                    organisation_id=str(c.organisation_id),
                    organisation_name=c.organisation_name,
                    plan_id=str(c.plan_id),
                    tickets=c.tickets,
                    minutes=c.minutes,
                )
                for c in report.consulting
            ],
        )
