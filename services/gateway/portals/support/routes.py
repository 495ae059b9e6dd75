"""Support: `/v1/support/...` — categories and answers, tickets, the agents' queue, partners'
messages, plans and contracts, reports.

Every route forwards the caller's token; the support service decides (a customer sees their own
organisation's tickets and gets 404 for anyone else's; the queue, reports and set-up are for
operator staff). Attachments travel as the raw request body, their type in Content-Type.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from guichet.support.v1 import support_pb2 as pb, support_pb2_grpc

from services.gateway.auth import CurrentCaller
from services.gateway.fields import DateTime
from services.gateway.openapi import errors
from services.gateway.portals.support.schemas import (
    Calendar,
    CalendarBody,
    CalendarPage,
    CalendarUpdate,
    CalendarUpdateBody,
    Category,
    CategoryAudience,
    CategoryBody,
    CategoryList,
    CategoryUpdateBody,
    CategoryView,
    Contract,
    ContractBody,
    ContractPage,
    ContractWithPlan,
    HolidayCategories,
    Plan,
    PlanBody,
    PlanPage,
    TicketKind,
    TicketStatus,
)
from services.gateway.portals.support.ticket_schemas import (
    Attachment,
    ConsultingBody,
    KindBody,
    PartnerMessageBody,
    PriorityBody,
    Reply,
    ReplyBody,
    SlaReport,
    StatusBody,
    Ticket,
    TicketBody,
    TicketHistory,
    TicketMessage,
    TicketPage,
)
from services.gateway.problems import Problem
from services.gateway.rpc import (
    Operations,
    Page,
    one,
    operation_id,
    page_of,
    service_stub,
)
from services.gateway.uploads import (
    ATTACHMENT_TYPES,
    Filename,
    download_response,
    upload_media_type,
    upload_request_body,
)
from services.kit.i18n import negotiate

router = APIRouter(tags=["support"], generate_unique_id_function=operation_id)
support_stub = service_stub("support", support_pb2_grpc.SupportServiceStub)
Support = Annotated[support_pb2_grpc.SupportServiceStub, Depends(support_stub)]
ops = Operations(router, pb.DESCRIPTOR.services_by_name["SupportService"], Support)
PREFIX = "/v1/support"

TicketId = Annotated[uuid.UUID, Path(description="The ticket's id.")]
CategoryId = Annotated[uuid.UUID, Path(description="The category's id.")]
OrganisationId = Annotated[uuid.UUID, Path(description="The organisation's id.")]


def _stamp(moment: dt.datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC))
    return stamp


# --- calendars, plans, contracts (operators) --------------------------------------------------


@ops.post(
    f"{PREFIX}/calendars",
    rpc="CreateCalendar",
    answer=one(Calendar, "calendar"),
    summary="Create a business-hours calendar (ops admin)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 409),
)
def create_calendar(body: CalendarBody) -> pb.CreateCalendarRequest:
    return pb.CreateCalendarRequest(
        name=body.name,
        time_zone=body.time_zone,
        weekly_hours=body.weekly_hours,
        country=body.country or "",
        subdivision=body.subdivision or "",
        closed_days=[d.isoformat() for d in body.closed_days],
        holiday_categories=body.holiday_categories,
    )


@ops.put(
    f"{PREFIX}/calendars/{{calendar_id}}",
    rpc="UpdateCalendar",
    answer=one(CalendarUpdate),
    summary="Replace a calendar's zone, hours, holidays and closed days (ops admin)",
    responses=errors(400, 401, 403, 404),
)
def update_calendar(
    calendar_id: Annotated[uuid.UUID, Path(description="The calendar.")],
    body: CalendarUpdateBody,
) -> pb.UpdateCalendarRequest:
    """The unfinished tickets of the plans counting in this calendar follow at once: their
    deadlines are recomputed (and their SLA workflows told)."""
    return pb.UpdateCalendarRequest(
        calendar_id=str(calendar_id),
        time_zone=body.time_zone,
        weekly_hours=body.weekly_hours,
        country=body.country or "",
        subdivision=body.subdivision or "",
        closed_days=[d.isoformat() for d in body.closed_days],
        holiday_categories=body.holiday_categories,
    )


@ops.get(
    f"{PREFIX}/holiday-categories",
    rpc="ListHolidayCategories",
    answer=one(HolidayCategories),
    summary="The holiday categories a country has in the holidays library",
    responses=errors(400, 401, 403),
)
def list_holiday_categories(
    country: Annotated[str, Query(max_length=8, description="ISO 3166 alpha-2, e.g. BR.")],
) -> pb.ListHolidayCategoriesRequest:
    return pb.ListHolidayCategoriesRequest(country=country)


@ops.get(
    f"{PREFIX}/calendars",
    rpc="ListCalendars",
    answer=page_of(CalendarPage, Calendar, "calendars"),
    summary="Business-hours calendars",
    responses=errors(400, 401, 403),
)
def list_calendars(page: Page) -> pb.ListCalendarsRequest:
    return pb.ListCalendarsRequest(page=page)


@ops.post(
    f"{PREFIX}/plans",
    rpc="CreatePlan",
    answer=one(Plan, "plan"),
    summary="Create a support plan with its SLA targets (ops admin)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 409),
)
def create_plan(body: PlanBody) -> pb.CreatePlanRequest:
    return pb.CreatePlanRequest(
        code=body.code,
        name=body.name,
        calendar_id=str(body.calendar_id),
        warning_percent=body.warning_percent or 0,
        targets=[t.to_proto() for t in body.targets],
    )


@ops.get(
    f"{PREFIX}/plans",
    rpc="ListPlans",
    answer=page_of(PlanPage, Plan, "plans"),
    summary="Support plans",
    responses=errors(400, 401, 403),
)
def list_plans(page: Page) -> pb.ListPlansRequest:
    return pb.ListPlansRequest(page=page)


@router.put(
    f"{PREFIX}/contracts/{{organisation_id}}",
    summary="Put an organisation on a plan (ops admin); open tickets follow the new plan",
    responses=errors(400, 401, 403, 404, 409),
)
async def set_contract(
    organisation_id: OrganisationId, body: ContractBody, caller: CurrentCaller, support: Support
) -> Contract:
    response = await support.SetContract(
        pb.SetContractRequest(
            organisation_id=str(organisation_id),
            plan_id=str(body.plan_id),
            operations_email=body.operations_email or "",
        ),
        metadata=caller.metadata,
    )
    return Contract.from_proto(response.contract, moved=response.tickets_moved)


@router.get(
    f"{PREFIX}/contracts/{{organisation_id}}",
    summary="An organisation's contract and plan",
    responses=errors(401, 404),
)
async def get_contract(
    organisation_id: OrganisationId, caller: CurrentCaller, support: Support
) -> ContractWithPlan:
    response = await support.GetContract(
        pb.GetContractRequest(organisation_id=str(organisation_id)), metadata=caller.metadata
    )
    return ContractWithPlan(
        contract=Contract.from_proto(response.contract), plan=Plan.from_proto(response.plan)
    )


@ops.get(
    f"{PREFIX}/contracts",
    rpc="ListContracts",
    answer=page_of(ContractPage, Contract, "contracts"),
    summary="Every contract",
    responses=errors(400, 401, 403),
)
def list_contracts(page: Page) -> pb.ListContractsRequest:
    return pb.ListContractsRequest(page=page)


# --- categories and answers ---------------------------------------------------------------------


@router.get(
    f"{PREFIX}/categories",
    summary="Categories with their questions and answers",
    responses=errors(400, 401),
)
async def list_categories(
    caller: CurrentCaller,
    support: Support,
    audience: Annotated[CategoryAudience | None, Query(description="One portal only.")] = None,
) -> CategoryList:
    response = await support.ListCategories(
        pb.ListCategoriesRequest(audience=audience.to_proto() if audience else 0),  # type: ignore[arg-type]
        metadata=caller.metadata,
    )
    return CategoryList(items=[Category.from_proto(c) for c in response.categories])


@ops.post(
    f"{PREFIX}/categories",
    rpc="CreateCategory",
    answer=one(Category, "category"),
    summary="Create a category with its answers (ops admin)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 409),
)
def create_category(body: CategoryBody) -> pb.CreateCategoryRequest:
    return pb.CreateCategoryRequest(
        code=body.code,
        name=body.name,
        audience=body.audience.to_proto(),
        position=body.position,
        entries=[e.to_proto() for e in body.entries],
        translations=[t.to_proto() for t in body.translations],
    )


@ops.put(
    f"{PREFIX}/categories/{{category_id}}",
    rpc="UpdateCategory",
    answer=one(Category, "category"),
    summary="Replace a category's name and answers, with their translations (ops admin)",
    responses=errors(400, 401, 403, 404),
)
def update_category(category_id: CategoryId, body: CategoryUpdateBody) -> pb.UpdateCategoryRequest:
    return pb.UpdateCategoryRequest(
        category_id=str(category_id),
        name=body.name,
        position=body.position,
        entries=[e.to_proto() for e in body.entries],
        translations=[t.to_proto() for t in body.translations],
    )


@router.get(
    f"{PREFIX}/categories/{{category_id}}",
    summary="Read a category's answers before opening a ticket (records the view)",
    responses=errors(401, 404),
)
async def view_category(
    category_id: CategoryId, caller: CurrentCaller, support: Support
) -> CategoryView:
    response = await support.ViewCategory(
        pb.ViewCategoryRequest(category_id=str(category_id)), metadata=caller.metadata
    )
    return CategoryView(
        category=Category.from_proto(response.category), view_id=uuid.UUID(response.view_id)
    )


@router.post(
    f"{PREFIX}/views/{{view_id}}/deflection",
    summary='"This answered my question": count the view as a deflection',
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(401, 404, 409),
)
async def record_deflection(
    view_id: Annotated[uuid.UUID, Path(description="view_id from the category page.")],
    caller: CurrentCaller,
    support: Support,
) -> Response:
    await support.RecordDeflection(
        pb.RecordDeflectionRequest(view_id=str(view_id)), metadata=caller.metadata
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- tickets ---------------------------------------------------------------------------------


@ops.post(
    f"{PREFIX}/tickets",
    rpc="OpenTicket",
    answer=one(Ticket, "ticket"),
    summary="Open a ticket (the extranet form: every field required)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 404, 409),
)
def open_ticket(
    body: TicketBody,
    accept_language: Annotated[
        str | None,
        Header(
            alias="Accept-Language",
            max_length=500,
            description="The customer's languages (RFC 9110). The first supported one (fr, en, "
            "pt-BR; pt and pt-PT read as pt-BR) is recorded with the ticket, and the mails "
            "about it to the customer (receipt, answers) are written in it; none: French.",
            examples=["pt-BR,pt;q=0.9,en;q=0.5"],
        ),
    ] = None,
) -> Message:
    request = body.to_proto()
    request.language = negotiate(accept_language)
    return request


@ops.post(
    f"{PREFIX}/partner-messages",
    rpc="SendPartnerMessage",
    answer=one(Ticket, "ticket"),
    summary='A delivery partner\'s "send us a message"',
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 404, 409),
)
def send_partner_message(
    body: PartnerMessageBody,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=100,
            description="Any string of the client's (e.g. a UUID): a retry with the same key "
            "answers the ticket the first call opened instead of opening a second one.",
            examples=["3f0c2d9e-5b7a-4c1e-9a53-6f2b8d41c7a0"],
        ),
    ] = None,
) -> pb.SendPartnerMessageRequest:
    return pb.SendPartnerMessageRequest(
        category_id=str(body.category_id),
        subject=body.subject or "",
        body=body.body or "",
        reply_to_email=body.reply_to_email or "",
        organisation_id=str(body.organisation_id) if body.organisation_id else "",
        view_id=str(body.view_id) if body.view_id else "",
        idempotency_key=idempotency_key or "",
    )


@ops.get(
    f"{PREFIX}/tickets",
    rpc="ListTickets",
    answer=page_of(TicketPage, Ticket, "tickets"),
    summary="List and search tickets (a company's own; operators: all)",
    responses=errors(400, 401),
)
def list_tickets(
    page: Page,
    status_: Annotated[
        list[TicketStatus] | None,
        Query(alias="status", max_length=5, description="Repeatable; default every status."),
    ] = None,
    q: Annotated[
        str | None, Query(max_length=200, description="Words, or a ticket number (#1042).")
    ] = None,
    organisation_id: Annotated[uuid.UUID | None, Query()] = None,
    kind: Annotated[TicketKind | None, Query()] = None,
) -> pb.ListTicketsRequest:
    return pb.ListTicketsRequest(
        page=page,
        statuses=[s.to_proto() for s in status_ or []],
        query=q or "",
        organisation_id=str(organisation_id) if organisation_id else "",
        kind=kind.to_proto() if kind else 0,  # type: ignore[arg-type]
    )


@ops.get(
    f"{PREFIX}/queue",
    rpc="ListQueue",
    answer=page_of(TicketPage, Ticket, "tickets"),
    summary="The agents' queue: unfinished tickets, nearest SLA deadline first",
    responses=errors(400, 401, 403),
)
def list_queue(
    page: Page,
    status_: Annotated[
        list[TicketStatus] | None, Query(alias="status", max_length=5, description="Repeatable.")
    ] = None,
) -> pb.ListQueueRequest:
    return pb.ListQueueRequest(page=page, statuses=[s.to_proto() for s in status_ or []])


@ops.get(
    f"{PREFIX}/tickets/{{ticket_id}}",
    rpc="GetTicket",
    answer=one(TicketHistory),
    summary="A ticket with its history (messages, attachments, SLA clocks, events, pauses)",
    responses=errors(401, 404),
)
def get_ticket(ticket_id: TicketId) -> pb.GetTicketRequest:
    return pb.GetTicketRequest(ticket_id=str(ticket_id))


@router.post(
    f"{PREFIX}/tickets/{{ticket_id}}/messages",
    summary="Reply in the ticket",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 404, 409),
)
async def reply(
    ticket_id: TicketId, body: ReplyBody, caller: CurrentCaller, support: Support
) -> Reply:
    response = await support.ReplyToTicket(
        pb.ReplyToTicketRequest(
            ticket_id=str(ticket_id),
            body=body.body,
            set_status=body.set_status.to_proto() if body.set_status else 0,  # type: ignore[arg-type]
        ),
        metadata=caller.metadata,
    )
    return Reply(
        ticket=Ticket.from_proto(response.ticket),
        message=TicketMessage.from_proto(response.message),
    )


@ops.post(
    f"{PREFIX}/tickets/{{ticket_id}}/status",
    rpc="ChangeTicketStatus",
    answer=one(Ticket, "ticket"),
    summary="Change the status (agents; customers may cancel)",
    responses=errors(400, 401, 403, 404, 409),
)
def change_ticket_status(ticket_id: TicketId, body: StatusBody) -> pb.ChangeTicketStatusRequest:
    return pb.ChangeTicketStatusRequest(
        ticket_id=str(ticket_id), status=body.status.to_proto(), reason=body.reason or ""
    )


@ops.post(
    f"{PREFIX}/tickets/{{ticket_id}}/priority",
    rpc="ChangeTicketPriority",
    answer=one(Ticket, "ticket"),
    summary="Change the priority (agents); the SLA deadlines follow",
    responses=errors(400, 401, 403, 404, 409),
)
def change_ticket_priority(
    ticket_id: TicketId, body: PriorityBody
) -> pb.ChangeTicketPriorityRequest:
    return pb.ChangeTicketPriorityRequest(
        ticket_id=str(ticket_id), priority=body.priority.to_proto()
    )


@ops.post(
    f"{PREFIX}/tickets/{{ticket_id}}/kind",
    rpc="ClassifyTicket",
    answer=one(Ticket, "ticket"),
    summary="Classify as support or consulting (agents)",
    responses=errors(400, 401, 403, 404, 409),
)
def classify(ticket_id: TicketId, body: KindBody) -> pb.ClassifyTicketRequest:
    return pb.ClassifyTicketRequest(ticket_id=str(ticket_id), kind=body.kind.to_proto())


@ops.post(
    f"{PREFIX}/tickets/{{ticket_id}}/consulting-time",
    rpc="LogConsultingTime",
    answer=one(Ticket, "ticket"),
    summary="Log billable consulting time (agents)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 404, 409),
)
def log_consulting_time(ticket_id: TicketId, body: ConsultingBody) -> pb.LogConsultingTimeRequest:
    return pb.LogConsultingTimeRequest(
        ticket_id=str(ticket_id), minutes=body.minutes, note=body.note or ""
    )


# The upload route: the gateway lets its body past MAX_BODY_BYTES, up to MAX_UPLOAD_BYTES, and
# support's own checks (ATTACHMENT_MAX_BYTES, the types) decide.
ATTACHMENT_UPLOAD = ("POST", f"{PREFIX}/tickets/{{ticket_id}}/attachments")


@router.post(
    ATTACHMENT_UPLOAD[1],
    summary="Attach a file: the raw body, its type in Content-Type",
    status_code=status.HTTP_201_CREATED,
    responses={
        **errors(400, 401, 404, 409),
        413: {
            "model": Problem,
            "description": "Larger than the gateway's upload limit (MAX_UPLOAD_BYTES, 3,900,000 "
            "bytes by default). Below it, a file over support's own limit is a 400 on `content`.",
        },
    },
    openapi_extra=upload_request_body(
        ATTACHMENT_TYPES, "The file, in one of the types support accepts."
    ),
)
async def add_attachment(
    ticket_id: TicketId,
    request: Request,
    caller: CurrentCaller,
    support: Support,
    filename: Filename,
) -> Attachment:
    content_type = upload_media_type(request, filename)
    response = await support.AddAttachment(
        pb.AddAttachmentRequest(
            ticket_id=str(ticket_id),
            filename=filename,
            content_type=content_type,
            content=await request.body(),
        ),
        metadata=caller.metadata,
    )
    return Attachment.from_proto(response.attachment)


@router.get(
    f"{PREFIX}/attachments/{{attachment_id}}",
    summary="Download an attachment",
    responses={
        **errors(401, 404),
        **download_response(
            ATTACHMENT_TYPES, "The file, under the type it was sent with (Content-Disposition)."
        ),
    },
    response_class=Response,
)
async def get_attachment(
    attachment_id: Annotated[uuid.UUID, Path()], caller: CurrentCaller, support: Support
) -> Response:
    response = await support.GetAttachment(
        pb.GetAttachmentRequest(attachment_id=str(attachment_id)), metadata=caller.metadata
    )
    attachment = response.attachment
    return Response(
        content=response.content,
        media_type=attachment.content_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(attachment.filename)}"
        },
    )


# --- reports --------------------------------------------------------------------------------


@ops.get(
    f"{PREFIX}/reports/sla",
    rpc="GetSlaReport",
    answer=one(SlaReport),
    fields={"period_start": "start", "period_end": "end"},
    summary="Per plan and period: % within SLA, breaches, deflections, consulting time",
    responses=errors(400, 401, 403, 404),
)
def sla_report(
    start: Annotated[DateTime, Query(description="Tickets opened from (inclusive).")],
    end: Annotated[
        DateTime, Query(description="… until (exclusive); after start (422 otherwise).")
    ],
    plan_id: Annotated[uuid.UUID | None, Query()] = None,
) -> pb.GetSlaReportRequest:
    return pb.GetSlaReportRequest(
        plan_id=str(plan_id) if plan_id else "",
        period_start=_stamp(start),
        period_end=_stamp(end),
    )
