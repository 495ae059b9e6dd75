"""The support gRPC servicer (thin: request → transaction → domain → proto) and its SPEC.

Each method opens one transaction, calls one domain function and maps the result. Workflow starts,
SLA signals and mails are recorded inside that transaction; after the commit the relays are woken
so that they leave at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeAlias

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from guichet.common.v1 import common_pb2
from guichet.identity.v1 import identity_pb2
from guichet.support.v1 import support_pb2 as pb, support_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.kit.auth import current_principal
from services.kit.errors import Unavailable
from services.kit.identity_client import IdentityLink, connect_identity
from services.kit.outbox import OutboxRelay
from services.kit.runtime import ServiceContext, ServiceSpec, Wiring
from services.kit.temporal import connect_temporal
from services.support import domain
from services.support.models import (
    Attachment,
    Audience,
    Channel,
    Clock,
    ConsultingEntry,
    Contract,
    EventKind,
    Kind,
    Message,
    Priority,
    Side,
    SlaClock,
    SlaEvent,
    SlaPause,
    Status,
    Ticket,
    outbox as outbox_table,
)
from services.support.settings import SupportSettings
from services.support.signals import SignalRelay
from workflows.business_time import CalendarSpec

Context: TypeAlias = Any  # grpc.aio.ServicerContext (grpc ships no type stubs)
Clock_ = Callable[[], datetime]

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["SupportService"].full_name

_STATUS = {
    Status.OPEN: pb.TICKET_STATUS_OPEN,
    Status.IN_PROGRESS: pb.TICKET_STATUS_IN_PROGRESS,
    Status.WAITING_ON_CUSTOMER: pb.TICKET_STATUS_WAITING_ON_CUSTOMER,
    Status.FINISHED: pb.TICKET_STATUS_FINISHED,
    Status.CANCELLED: pb.TICKET_STATUS_CANCELLED,
}
_PRIORITY = {
    Priority.LOW: pb.TICKET_PRIORITY_LOW,
    Priority.NORMAL: pb.TICKET_PRIORITY_NORMAL,
    Priority.HIGH: pb.TICKET_PRIORITY_HIGH,
    Priority.URGENT: pb.TICKET_PRIORITY_URGENT,
}
_KIND = {Kind.SUPPORT: pb.TICKET_KIND_SUPPORT, Kind.CONSULTING: pb.TICKET_KIND_CONSULTING}
_CHANNEL = {
    Channel.EXTRANET: pb.TICKET_CHANNEL_EXTRANET,
    Channel.PARTNER_MESSAGE: pb.TICKET_CHANNEL_PARTNER_MESSAGE,
}
_AUDIENCE = {
    Audience.CUSTOMER: pb.CATEGORY_AUDIENCE_CUSTOMER,
    Audience.PARTNER: pb.CATEGORY_AUDIENCE_PARTNER,
}
_SIDE = {Side.CUSTOMER: pb.AUTHOR_SIDE_CUSTOMER, Side.AGENT: pb.AUTHOR_SIDE_AGENT}
_CLOCK = {
    Clock.FIRST_RESPONSE: pb.SLA_CLOCK_FIRST_RESPONSE,
    Clock.NEXT_RESPONSE: pb.SLA_CLOCK_NEXT_RESPONSE,
    Clock.RESOLUTION: pb.SLA_CLOCK_RESOLUTION,
}
_EVENT = {
    EventKind.WARNING: pb.SLA_EVENT_KIND_WARNING,
    EventKind.BREACH: pb.SLA_EVENT_KIND_BREACH,
    EventKind.PAUSE: pb.SLA_EVENT_KIND_PAUSE,
    EventKind.RESUME: pb.SLA_EVENT_KIND_RESUME,
    EventKind.RECOMPUTE: pb.SLA_EVENT_KIND_RECOMPUTE,
}

log = logging.getLogger(__name__)
_USER_ACTIVE = identity_pb2.USER_STATUS_ACTIVE

_ORG_KIND = {
    identity_pb2.ORGANISATION_KIND_ERP_CUSTOMER: "erp_customer",
    identity_pb2.ORGANISATION_KIND_DELIVERY_PARTNER: "delivery_partner",
}


def _reverse(mapping: Mapping[Any, Any]) -> dict[int, str]:
    return {int(value): str(key.value) for key, value in mapping.items()}


_STATUS_IN = _reverse(_STATUS)
_PRIORITY_IN = _reverse(_PRIORITY)
_KIND_IN = _reverse(_KIND)
_AUDIENCE_IN = _reverse(_AUDIENCE)
_CLOCK_IN = _reverse(_CLOCK)
_EVENT_IN = _reverse(_EVENT)


def enum_in(mapping: dict[int, str], value: int) -> str:
    """The domain's name for a proto value: "" when unspecified, a non-name when unknown."""
    if value == 0:
        return ""
    return mapping.get(value, f"#{value}")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _optional_ts(moment: datetime | None) -> Timestamp | None:
    return None if moment is None else _ts(moment)


def _time_in(stamp: Timestamp, present: bool) -> datetime | None:
    return stamp.ToDatetime(tzinfo=UTC) if present else None


def calendar_to_proto(view: domain.CalendarView) -> pb.Calendar:
    c = view.calendar
    return pb.Calendar(
        id=str(c.id),
        name=c.name,
        time_zone=c.time_zone,
        weekly_hours=list(c.weekly_hours),
        country=c.country,
        subdivision=c.subdivision,
        closed_days=view.closed_days,
        create_time=_ts(c.created_at),
    )


def plan_to_proto(view: domain.PlanView) -> pb.Plan:
    p = view.plan
    return pb.Plan(
        id=str(p.id),
        code=p.code,
        name=p.name,
        calendar_id=str(p.calendar_id),
        warning_percent=p.warning_percent,
        targets=[
            pb.SlaTarget(
                priority=_PRIORITY[Priority(t.priority)],
                first_response_minutes=t.first_response_minutes,
                next_response_minutes=t.next_response_minutes,
                resolution_minutes=t.resolution_minutes,
            )
            for t in view.targets
        ],
        create_time=_ts(p.created_at),
    )


def contract_to_proto(c: Contract) -> pb.Contract:
    return pb.Contract(
        organisation_id=str(c.organisation_id),
        organisation_name=c.organisation_name,
        organisation_kind=c.organisation_kind,
        plan_id=str(c.plan_id),
        operations_email=c.operations_email or "",
        update_time=_ts(c.updated_at),
    )


def category_to_proto(view: domain.CategoryView) -> pb.Category:
    c = view.category
    return pb.Category(
        id=str(c.id),
        code=c.code,
        name=c.name,
        audience=_AUDIENCE[Audience(c.audience)],
        position=c.position,
        entries=[
            pb.FaqEntry(id=str(e.id), question=e.question, answer=e.answer) for e in view.entries
        ],
    )


def ticket_to_proto(t: Ticket, *, category: str = "", organisation: str = "") -> pb.Ticket:
    return pb.Ticket(
        id=str(t.id),
        number=t.number,
        organisation_id=str(t.organisation_id),
        organisation_name=organisation,
        channel=_CHANNEL[Channel(t.channel)],
        category_id=str(t.category_id),
        category_name=category,
        title=t.title,
        description=t.description,
        screen_code=t.screen_code,
        example_record=t.example_record,
        priority=_PRIORITY[Priority(t.priority)],
        status=_STATUS[Status(t.status)],
        kind=_KIND[Kind(t.kind)],
        plan_id=str(t.plan_id),
        opened_by_id=t.opened_by_id,
        opened_by_name=t.opened_by_name,
        reply_to_email=t.reply_to_email or "",
        consulting_minutes=t.consulting_minutes,
        create_time=_ts(t.created_at),
        update_time=_ts(t.updated_at),
        first_response_time=_optional_ts(t.first_response_at),
        close_time=_optional_ts(t.closed_at),
        next_due_time=_optional_ts(t.next_due_at),
        at_risk=t.at_risk,
        breached=t.breached,
    )


def message_to_proto(m: Message) -> pb.TicketMessage:
    return pb.TicketMessage(
        id=str(m.id),
        author_id=m.author_id,
        author_name=m.author_name,
        side=_SIDE[Side(m.side)],
        body=m.body,
        create_time=_ts(m.created_at),
    )


def attachment_to_proto(a: Attachment) -> pb.Attachment:
    return pb.Attachment(
        id=str(a.id),
        filename=a.filename,
        content_type=a.content_type,
        size_bytes=a.size_bytes,
        sha256=a.sha256,
        uploaded_by_id=a.uploaded_by_id,
        create_time=_ts(a.created_at),
    )


def clock_to_proto(c: SlaClock) -> pb.SlaClockState:
    return pb.SlaClockState(
        clock=_CLOCK[Clock(c.clock)],
        cycle=c.cycle,
        target_minutes=c.target_seconds // 60,
        start_time=_ts(c.started_at),
        warning_time=_optional_ts(c.warning_at),
        due_time=_optional_ts(c.due_at),
        stop_time=_optional_ts(c.stopped_at),
        stopped=c.stopped_at is not None,
        met=bool(c.met),
        elapsed_seconds=c.elapsed_seconds or 0,
    )


def event_to_proto(e: SlaEvent) -> pb.SlaEvent:
    return pb.SlaEvent(
        id=str(e.id),
        kind=_EVENT[EventKind(e.kind)],
        clock=_CLOCK[Clock(e.clock)] if e.clock else pb.SLA_CLOCK_UNSPECIFIED,
        cycle=e.cycle or 0,
        time=_ts(e.at),
        due_time=_optional_ts(e.due_at),
        detail={key: str(value) for key, value in e.detail.items()},
    )


def pause_to_proto(p: SlaPause) -> pb.SlaPause:
    return pb.SlaPause(start_time=_ts(p.started_at), end_time=_optional_ts(p.ended_at))


def consulting_to_proto(e: ConsultingEntry) -> pb.ConsultingEntry:
    return pb.ConsultingEntry(
        id=str(e.id),
        minutes=e.minutes,
        note=e.note,
        agent_id=e.agent_id,
        create_time=_ts(e.created_at),
    )


def _page(token: str) -> common_pb2.PageResponse:
    return common_pb2.PageResponse(next_page_token=token)


class SupportServicer(support_pb2_grpc.SupportServiceServicer):
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        settings: SupportSettings,
        lookup: domain.OrganisationLookup,
        customer_address: domain.CustomerAddress | None = None,
        relays: list[OutboxRelay],
        signals: SignalRelay | None,
        clock: Clock_ = utcnow,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._lookup = lookup
        self._customer_address = customer_address
        self._relays = relays
        self._signals = signals
        self._clock = clock

    def _committed(self) -> None:
        """After a commit that may have recorded starts, signals or mail: send them now."""
        for relay in self._relays:
            relay.wake()
        if self._signals is not None:
            self._signals.wake()

    async def _tickets(self, session: AsyncSession, tickets: list[Ticket]) -> list[pb.Ticket]:
        categories = await domain.category_names(session, {t.category_id for t in tickets})
        organisations = await domain.organisation_names(
            session, {t.organisation_id for t in tickets}
        )
        return [
            ticket_to_proto(
                t,
                category=categories.get(t.category_id, ""),
                organisation=organisations.get(t.organisation_id, ""),
            )
            for t in tickets
        ]

    async def _ticket(self, session: AsyncSession, ticket: Ticket) -> pb.Ticket:
        return (await self._tickets(session, [ticket]))[0]

    # --- calendars, plans, contracts ------------------------------------------------------------

    async def CreateCalendar(
        self, request: pb.CreateCalendarRequest, context: Context
    ) -> pb.CreateCalendarResponse:
        async with self._sessions.begin() as session:
            view = await domain.create_calendar(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                name=request.name,
                spec=CalendarSpec(
                    time_zone=request.time_zone,
                    weekly=list(request.weekly_hours),
                    country=request.country,
                    subdivision=request.subdivision,
                    closed_days=list(request.closed_days),
                ),
            )
        return pb.CreateCalendarResponse(calendar=calendar_to_proto(view))

    async def ListCalendars(
        self, request: pb.ListCalendarsRequest, context: Context
    ) -> pb.ListCalendarsResponse:
        async with self._sessions.begin() as session:
            page = await domain.list_calendars(
                session=session,
                actor=current_principal(),
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListCalendarsResponse(
            calendars=[calendar_to_proto(c) for c in page.items], page=_page(page.next_page_token)
        )

    async def CreatePlan(
        self, request: pb.CreatePlanRequest, context: Context
    ) -> pb.CreatePlanResponse:
        async with self._sessions.begin() as session:
            view = await domain.create_plan(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                code=request.code,
                name=request.name,
                calendar_id=request.calendar_id,
                warning_percent=request.warning_percent,
                targets=[
                    domain.TargetInput(
                        priority=enum_in(_PRIORITY_IN, t.priority),
                        first_response_minutes=t.first_response_minutes,
                        next_response_minutes=t.next_response_minutes,
                        resolution_minutes=t.resolution_minutes,
                    )
                    for t in request.targets
                ],
            )
        return pb.CreatePlanResponse(plan=plan_to_proto(view))

    async def ListPlans(
        self, request: pb.ListPlansRequest, context: Context
    ) -> pb.ListPlansResponse:
        async with self._sessions.begin() as session:
            page = await domain.list_plans(
                session=session,
                actor=current_principal(),
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListPlansResponse(
            plans=[plan_to_proto(p) for p in page.items], page=_page(page.next_page_token)
        )

    async def SetContract(
        self, request: pb.SetContractRequest, context: Context
    ) -> pb.SetContractResponse:
        async with self._sessions.begin() as session:
            contract, moved = await domain.set_contract(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                lookup=self._lookup,
                organisation_id=request.organisation_id,
                plan_id=request.plan_id,
                operations_email=request.operations_email,
            )
        self._committed()
        return pb.SetContractResponse(contract=contract_to_proto(contract), tickets_moved=moved)

    async def GetContract(
        self, request: pb.GetContractRequest, context: Context
    ) -> pb.GetContractResponse:
        async with self._sessions.begin() as session:
            contract, plan = await domain.get_contract(
                session=session, actor=current_principal(), organisation_id=request.organisation_id
            )
        return pb.GetContractResponse(
            contract=contract_to_proto(contract), plan=plan_to_proto(plan)
        )

    async def ListContracts(
        self, request: pb.ListContractsRequest, context: Context
    ) -> pb.ListContractsResponse:
        async with self._sessions.begin() as session:
            page = await domain.list_contracts(
                session=session,
                actor=current_principal(),
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListContractsResponse(
            contracts=[contract_to_proto(c) for c in page.items], page=_page(page.next_page_token)
        )

    # --- categories -----------------------------------------------------------------------------

    async def CreateCategory(
        self, request: pb.CreateCategoryRequest, context: Context
    ) -> pb.CreateCategoryResponse:
        async with self._sessions.begin() as session:
            view = await domain.create_category(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                code=request.code,
                name=request.name,
                audience=enum_in(_AUDIENCE_IN, request.audience),
                position=request.position,
                entries=[domain.FaqInput(e.question, e.answer) for e in request.entries],
            )
        return pb.CreateCategoryResponse(category=category_to_proto(view))

    async def UpdateCategory(
        self, request: pb.UpdateCategoryRequest, context: Context
    ) -> pb.UpdateCategoryResponse:
        async with self._sessions.begin() as session:
            view = await domain.update_category(
                session=session,
                actor=current_principal(),
                category_id=request.category_id,
                name=request.name,
                position=request.position,
                entries=[domain.FaqInput(e.question, e.answer) for e in request.entries],
            )
        return pb.UpdateCategoryResponse(category=category_to_proto(view))

    async def ListCategories(
        self, request: pb.ListCategoriesRequest, context: Context
    ) -> pb.ListCategoriesResponse:
        async with self._sessions.begin() as session:
            views = await domain.list_categories(
                session=session,
                actor=current_principal(),
                audience=enum_in(_AUDIENCE_IN, request.audience),
            )
        return pb.ListCategoriesResponse(categories=[category_to_proto(v) for v in views])

    async def ViewCategory(
        self, request: pb.ViewCategoryRequest, context: Context
    ) -> pb.ViewCategoryResponse:
        async with self._sessions.begin() as session:
            view, seen = await domain.view_category(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                category_id=request.category_id,
            )
        return pb.ViewCategoryResponse(category=category_to_proto(view), view_id=str(seen.id))

    async def RecordDeflection(
        self, request: pb.RecordDeflectionRequest, context: Context
    ) -> pb.RecordDeflectionResponse:
        async with self._sessions.begin() as session:
            await domain.record_deflection(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                view_id=request.view_id,
            )
        return pb.RecordDeflectionResponse()

    # --- tickets --------------------------------------------------------------------------------

    async def OpenTicket(
        self, request: pb.OpenTicketRequest, context: Context
    ) -> pb.OpenTicketResponse:
        async with self._sessions.begin() as session:
            ticket = await domain.open_ticket(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                form=domain.TicketInput(
                    category_id=request.category_id,
                    title=request.title,
                    description=request.description,
                    screen_code=request.screen_code,
                    example_record=request.example_record,
                    priority=enum_in(_PRIORITY_IN, request.priority),
                    kind=enum_in(_KIND_IN, request.kind),
                    view_id=request.view_id,
                    organisation_id=request.organisation_id,
                ),
            )
            answer = await self._ticket(session, ticket)
        self._committed()
        return pb.OpenTicketResponse(ticket=answer)

    async def SendPartnerMessage(
        self, request: pb.SendPartnerMessageRequest, context: Context
    ) -> pb.SendPartnerMessageResponse:
        async with self._sessions.begin() as session:
            ticket = await domain.send_partner_message(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                category_id=request.category_id,
                subject=request.subject,
                body=request.body,
                reply_to_email=request.reply_to_email,
                organisation_id=request.organisation_id,
                view_id=request.view_id,
                idempotency_key=request.idempotency_key,
            )
            answer = await self._ticket(session, ticket)
        self._committed()
        return pb.SendPartnerMessageResponse(ticket=answer)

    async def ListTickets(
        self, request: pb.ListTicketsRequest, context: Context
    ) -> pb.ListTicketsResponse:
        async with self._sessions.begin() as session:
            page = await domain.list_tickets(
                session=session,
                actor=current_principal(),
                statuses=[enum_in(_STATUS_IN, s) for s in request.statuses],
                query=request.query,
                organisation_id=request.organisation_id,
                kind=enum_in(_KIND_IN, request.kind),
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
            tickets = await self._tickets(session, page.items)
        return pb.ListTicketsResponse(tickets=tickets, page=_page(page.next_page_token))

    async def ListQueue(
        self, request: pb.ListQueueRequest, context: Context
    ) -> pb.ListQueueResponse:
        async with self._sessions.begin() as session:
            page = await domain.list_queue(
                session=session,
                actor=current_principal(),
                statuses=[enum_in(_STATUS_IN, s) for s in request.statuses],
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
            tickets = await self._tickets(session, page.items)
        return pb.ListQueueResponse(tickets=tickets, page=_page(page.next_page_token))

    async def GetTicket(
        self, request: pb.GetTicketRequest, context: Context
    ) -> pb.GetTicketResponse:
        async with self._sessions.begin() as session:
            history = await domain.get_ticket(
                session=session, actor=current_principal(), ticket_id=request.ticket_id
            )
            ticket = await self._ticket(session, history.ticket)
        return pb.GetTicketResponse(
            ticket=ticket,
            messages=[message_to_proto(m) for m in history.messages],
            attachments=[attachment_to_proto(a) for a in history.attachments],
            clocks=[clock_to_proto(c) for c in history.clocks],
            events=[event_to_proto(e) for e in history.events],
            pauses=[pause_to_proto(p) for p in history.pauses],
            consulting=[consulting_to_proto(e) for e in history.consulting],
        )

    async def ReplyToTicket(
        self, request: pb.ReplyToTicketRequest, context: Context
    ) -> pb.ReplyToTicketResponse:
        async with self._sessions.begin() as session:
            ticket, message = await domain.reply(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                ticket_id=request.ticket_id,
                body=request.body,
                set_status=enum_in(_STATUS_IN, request.set_status),
                customer_address=self._customer_address,
            )
            answer = await self._ticket(session, ticket)
        self._committed()
        return pb.ReplyToTicketResponse(ticket=answer, message=message_to_proto(message))

    async def ChangeTicketStatus(
        self, request: pb.ChangeTicketStatusRequest, context: Context
    ) -> pb.ChangeTicketStatusResponse:
        async with self._sessions.begin() as session:
            ticket = await domain.change_status(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                ticket_id=request.ticket_id,
                status=enum_in(_STATUS_IN, request.status),
                reason=request.reason,
            )
            answer = await self._ticket(session, ticket)
        self._committed()
        return pb.ChangeTicketStatusResponse(ticket=answer)

    async def ChangeTicketPriority(
        self, request: pb.ChangeTicketPriorityRequest, context: Context
    ) -> pb.ChangeTicketPriorityResponse:
        async with self._sessions.begin() as session:
            ticket = await domain.change_priority(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                ticket_id=request.ticket_id,
                priority=enum_in(_PRIORITY_IN, request.priority),
            )
            answer = await self._ticket(session, ticket)
        self._committed()
        return pb.ChangeTicketPriorityResponse(ticket=answer)

    async def ClassifyTicket(
        self, request: pb.ClassifyTicketRequest, context: Context
    ) -> pb.ClassifyTicketResponse:
        async with self._sessions.begin() as session:
            ticket = await domain.classify(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                ticket_id=request.ticket_id,
                kind=enum_in(_KIND_IN, request.kind),
            )
            answer = await self._ticket(session, ticket)
        return pb.ClassifyTicketResponse(ticket=answer)

    async def LogConsultingTime(
        self, request: pb.LogConsultingTimeRequest, context: Context
    ) -> pb.LogConsultingTimeResponse:
        async with self._sessions.begin() as session:
            ticket, entry = await domain.log_consulting_time(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                ticket_id=request.ticket_id,
                minutes=request.minutes,
                note=request.note,
            )
            answer = await self._ticket(session, ticket)
        return pb.LogConsultingTimeResponse(ticket=answer, entry=consulting_to_proto(entry))

    async def AddAttachment(
        self, request: pb.AddAttachmentRequest, context: Context
    ) -> pb.AddAttachmentResponse:
        async with self._sessions.begin() as session:
            attachment = await domain.add_attachment(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                ticket_id=request.ticket_id,
                filename=request.filename,
                content_type=request.content_type,
                content=request.content,
            )
        return pb.AddAttachmentResponse(attachment=attachment_to_proto(attachment))

    async def GetAttachment(
        self, request: pb.GetAttachmentRequest, context: Context
    ) -> pb.GetAttachmentResponse:
        async with self._sessions.begin() as session:
            attachment = await domain.get_attachment(
                session=session, actor=current_principal(), attachment_id=request.attachment_id
            )
        return pb.GetAttachmentResponse(
            attachment=attachment_to_proto(attachment), content=attachment.content
        )

    # --- SLA and reports --------------------------------------------------------------------------

    async def RecordSlaEvent(
        self, request: pb.RecordSlaEventRequest, context: Context
    ) -> pb.RecordSlaEventResponse:
        async with self._sessions.begin() as session:
            recorded, event = await domain.record_sla_event(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                ticket_id=request.ticket_id,
                kind=enum_in(_EVENT_IN, request.kind),
                clock=enum_in(_CLOCK_IN, request.clock),
                cycle=request.cycle,
                due_at=_time_in(request.due_time, request.HasField("due_time")),
            )
        self._committed()
        return pb.RecordSlaEventResponse(
            recorded=recorded, event=event_to_proto(event) if event is not None else None
        )

    async def GetSlaReport(
        self, request: pb.GetSlaReportRequest, context: Context
    ) -> pb.GetSlaReportResponse:
        async with self._sessions.begin() as session:
            report = await domain.sla_report(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                plan_id=request.plan_id,
                period_start=_time_in(request.period_start, request.HasField("period_start")),
                period_end=_time_in(request.period_end, request.HasField("period_end")),
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
                            clock=_CLOCK[Clock(t.clock)],
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


def identity_lookup(link: IdentityLink) -> domain.OrganisationLookup:
    """Reads an organisation from identity with the caller's own token (an ops admin)."""

    async def lookup(organisation_id: str) -> domain.OrganisationInfo | None:
        try:
            response = await link.stub.GetOrganisation(
                identity_pb2.GetOrganisationRequest(organisation_id=organisation_id)
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise Unavailable("identity did not answer; try again shortly") from None
        organisation = response.organisation
        return domain.OrganisationInfo(
            id=organisation.id,
            name=organisation.name,
            kind=_ORG_KIND.get(organisation.kind, f"kind#{organisation.kind}"),
        )

    return lookup


def identity_address(link: IdentityLink) -> domain.CustomerAddress:
    """A customer's address from identity, asked with support's own service token: the caller
    is the agent replying, who may not read the customer's account."""

    async def address(user_id: str) -> str | None:
        if link.tokens is None:
            log.warning("no service credentials: agent replies are not mailed to customers")
            return None
        try:
            response = await link.stub.GetUser(
                identity_pb2.GetUserRequest(user_id=user_id),
                metadata=(("authorization", f"Bearer {await link.tokens.token()}"),),
            )
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                return None  # the account is gone: nobody to write to
            raise Unavailable("identity did not answer; try again shortly") from None
        user = response.user
        if not user.email or not user.email_verified or user.status != _USER_ACTIVE:
            return None
        return str(user.email)

    return address


async def build(context: ServiceContext, *, clock: Clock_ = utcnow) -> Wiring:
    """Connects identity (JWKS, organisation look-ups), starts the SLA signal relay, wires."""
    settings = context.settings
    if not isinstance(settings, SupportSettings):
        raise TypeError("support needs SupportSettings")
    link = connect_identity(settings)
    context.exit_stack.push_async_callback(link.close)
    signals = SignalRelay(
        context.sessions,
        lambda: connect_temporal(settings),
        poll_interval=settings.signal_poll_interval,
    )
    relays = [context.relay] if context.relay is not None else []
    extra = [
        OutboxRelay(context.sessions, outbox_table, lambda: connect_temporal(settings))
        for _ in range(settings.outbox_relays - 1 if relays else 0)
    ]
    relays += extra
    tasks = [asyncio.create_task(signals.run(), name="support-sla-signals")] + [
        asyncio.create_task(relay.run(), name=f"support-outbox-{index}")
        for index, relay in enumerate(extra, start=1)
    ]

    async def stop_relays() -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    context.exit_stack.push_async_callback(stop_relays)
    context.extras["signals"] = signals
    servicer = SupportServicer(
        sessions=context.sessions,
        settings=settings,
        lookup=identity_lookup(link),
        customer_address=identity_address(link),
        relays=relays,
        signals=signals,
        clock=clock,
    )

    def register(server: grpc.aio.Server) -> None:
        support_pb2_grpc.add_SupportServiceServicer_to_server(servicer, server)

    return Wiring(register=register, service_names=[SERVICE_NAME], verifier=link.verifier)


SPEC = ServiceSpec(
    name="support",
    settings_class=SupportSettings,
    migrations_dir=Path(__file__).parent / "migrations",
    build=build,
    outbox=outbox_table,
)
