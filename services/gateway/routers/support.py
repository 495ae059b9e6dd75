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
from google.protobuf.timestamp_pb2 import Timestamp
from guichet.common.v1 import common_pb2
from guichet.support.v1 import support_pb2 as pb, support_pb2_grpc

from services.gateway.auth import CurrentCaller
from services.gateway.openapi import errors
from services.gateway.problems import Problem, ProblemException
from services.gateway.schemas_support import (
    Attachment,
    Calendar,
    CalendarBody,
    CalendarPage,
    Category,
    CategoryAudience,
    CategoryBody,
    CategoryList,
    CategoryUpdateBody,
    CategoryView,
    ConsultingBody,
    Contract,
    ContractBody,
    ContractPage,
    ContractWithPlan,
    KindBody,
    PartnerMessageBody,
    Plan,
    PlanBody,
    PlanPage,
    PriorityBody,
    Reply,
    ReplyBody,
    SlaReport,
    StatusBody,
    Ticket,
    TicketBody,
    TicketHistory,
    TicketKind,
    TicketMessage,
    TicketPage,
    TicketStatus,
)
from services.kit.grpcclient import create_channel

router = APIRouter(tags=["support"])
PREFIX = "/v1/support"

TicketId = Annotated[uuid.UUID, Path(description="The ticket's id.")]
CategoryId = Annotated[uuid.UUID, Path(description="The category's id.")]
OrganisationId = Annotated[uuid.UUID, Path(description="The organisation's id.")]


async def support_stub(request: Request) -> support_pb2_grpc.SupportServiceStub:
    """The channel to support, made on first use (deadlines from the gateway's settings).

    Async on purpose: a grpc.aio channel is made on the event loop, not in FastAPI's threadpool
    where sync dependencies run."""
    state = request.app.state
    stub: support_pb2_grpc.SupportServiceStub | None = getattr(state, "support", None)
    if stub is None:
        settings = state.settings
        channel = create_channel(
            settings.support_addr, default_timeout=settings.grpc_default_timeout
        )
        state.support_channel = channel
        stub = state.support = support_pb2_grpc.SupportServiceStub(channel)
    return stub


async def close_channel(state: object) -> None:
    channel = getattr(state, "support_channel", None)
    if channel is not None:
        await channel.close()


Support = Annotated[support_pb2_grpc.SupportServiceStub, Depends(support_stub)]


def page_request(
    page_size: Annotated[
        int | None, Query(ge=1, le=500, description="Items per page (default 50).")
    ] = None,
    page_token: Annotated[
        str | None, Query(max_length=1024, description="next_page_token of the previous page.")
    ] = None,
) -> common_pb2.PageRequest:
    return common_pb2.PageRequest(page_size=page_size or 0, page_token=page_token or "")


Page = Annotated[common_pb2.PageRequest, Depends(page_request)]


def _next(page: common_pb2.PageResponse) -> str | None:
    return page.next_page_token or None


def _stamp(moment: dt.datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC))
    return stamp


# --- calendars, plans, contracts (operators) --------------------------------------------------


@router.post(
    f"{PREFIX}/calendars",
    summary="Create a business-hours calendar (ops admin)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 409),
)
async def create_calendar(body: CalendarBody, caller: CurrentCaller, support: Support) -> Calendar:
    response = await support.CreateCalendar(
        pb.CreateCalendarRequest(
            name=body.name,
            time_zone=body.time_zone,
            weekly_hours=body.weekly_hours,
            country=body.country or "",
            subdivision=body.subdivision or "",
            closed_days=[d.isoformat() for d in body.closed_days],
        ),
        metadata=caller.metadata,
    )
    return Calendar.from_proto(response.calendar)


@router.get(
    f"{PREFIX}/calendars", summary="Business-hours calendars", responses=errors(400, 401, 403)
)
async def list_calendars(caller: CurrentCaller, support: Support, page: Page) -> CalendarPage:
    response = await support.ListCalendars(
        pb.ListCalendarsRequest(page=page), metadata=caller.metadata
    )
    return CalendarPage(
        items=[Calendar.from_proto(c) for c in response.calendars],
        next_page_token=_next(response.page),
    )


@router.post(
    f"{PREFIX}/plans",
    summary="Create a support plan with its SLA targets (ops admin)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 409),
)
async def create_plan(body: PlanBody, caller: CurrentCaller, support: Support) -> Plan:
    response = await support.CreatePlan(
        pb.CreatePlanRequest(
            code=body.code,
            name=body.name,
            calendar_id=str(body.calendar_id),
            warning_percent=body.warning_percent or 0,
            targets=[t.to_proto() for t in body.targets],
        ),
        metadata=caller.metadata,
    )
    return Plan.from_proto(response.plan)


@router.get(f"{PREFIX}/plans", summary="Support plans", responses=errors(400, 401, 403))
async def list_plans(caller: CurrentCaller, support: Support, page: Page) -> PlanPage:
    response = await support.ListPlans(pb.ListPlansRequest(page=page), metadata=caller.metadata)
    return PlanPage(
        items=[Plan.from_proto(p) for p in response.plans], next_page_token=_next(response.page)
    )


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


@router.get(f"{PREFIX}/contracts", summary="Every contract", responses=errors(400, 401, 403))
async def list_contracts(caller: CurrentCaller, support: Support, page: Page) -> ContractPage:
    response = await support.ListContracts(
        pb.ListContractsRequest(page=page), metadata=caller.metadata
    )
    return ContractPage(
        items=[Contract.from_proto(c) for c in response.contracts],
        next_page_token=_next(response.page),
    )


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


@router.post(
    f"{PREFIX}/categories",
    summary="Create a category with its answers (ops admin)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 409),
)
async def create_category(body: CategoryBody, caller: CurrentCaller, support: Support) -> Category:
    response = await support.CreateCategory(
        pb.CreateCategoryRequest(
            code=body.code,
            name=body.name,
            audience=body.audience.to_proto(),
            position=body.position,
            entries=[pb.FaqEntryInput(question=e.question, answer=e.answer) for e in body.entries],
        ),
        metadata=caller.metadata,
    )
    return Category.from_proto(response.category)


@router.put(
    f"{PREFIX}/categories/{{category_id}}",
    summary="Replace a category's name and answers (ops admin)",
    responses=errors(400, 401, 403, 404),
)
async def update_category(
    category_id: CategoryId, body: CategoryUpdateBody, caller: CurrentCaller, support: Support
) -> Category:
    response = await support.UpdateCategory(
        pb.UpdateCategoryRequest(
            category_id=str(category_id),
            name=body.name,
            position=body.position,
            entries=[pb.FaqEntryInput(question=e.question, answer=e.answer) for e in body.entries],
        ),
        metadata=caller.metadata,
    )
    return Category.from_proto(response.category)


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


@router.post(
    f"{PREFIX}/tickets",
    summary="Open a ticket (the extranet form: every field required)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 404, 409),
)
async def open_ticket(body: TicketBody, caller: CurrentCaller, support: Support) -> Ticket:
    response = await support.OpenTicket(body.to_proto(), metadata=caller.metadata)
    return Ticket.from_proto(response.ticket)


@router.post(
    f"{PREFIX}/partner-messages",
    summary='A delivery partner\'s "send us a message"',
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 404, 409),
)
async def send_partner_message(
    body: PartnerMessageBody,
    caller: CurrentCaller,
    support: Support,
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
) -> Ticket:
    response = await support.SendPartnerMessage(
        pb.SendPartnerMessageRequest(
            category_id=body.category_id or "",
            subject=body.subject or "",
            body=body.body or "",
            reply_to_email=body.reply_to_email or "",
            organisation_id=str(body.organisation_id) if body.organisation_id else "",
            view_id=str(body.view_id) if body.view_id else "",
            idempotency_key=idempotency_key or "",
        ),
        metadata=caller.metadata,
    )
    return Ticket.from_proto(response.ticket)


@router.get(
    f"{PREFIX}/tickets",
    summary="List and search tickets (a company's own; operators: all)",
    responses=errors(400, 401),
)
async def list_tickets(
    caller: CurrentCaller,
    support: Support,
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
) -> TicketPage:
    response = await support.ListTickets(
        pb.ListTicketsRequest(
            page=page,
            statuses=[s.to_proto() for s in status_ or []],
            query=q or "",
            organisation_id=str(organisation_id) if organisation_id else "",
            kind=kind.to_proto() if kind else 0,  # type: ignore[arg-type]
        ),
        metadata=caller.metadata,
    )
    return TicketPage(
        items=[Ticket.from_proto(t) for t in response.tickets],
        next_page_token=_next(response.page),
    )


@router.get(
    f"{PREFIX}/queue",
    summary="The agents' queue: unfinished tickets, nearest SLA deadline first",
    responses=errors(400, 401, 403),
)
async def list_queue(
    caller: CurrentCaller,
    support: Support,
    page: Page,
    status_: Annotated[
        list[TicketStatus] | None, Query(alias="status", max_length=5, description="Repeatable.")
    ] = None,
) -> TicketPage:
    response = await support.ListQueue(
        pb.ListQueueRequest(page=page, statuses=[s.to_proto() for s in status_ or []]),
        metadata=caller.metadata,
    )
    return TicketPage(
        items=[Ticket.from_proto(t) for t in response.tickets],
        next_page_token=_next(response.page),
    )


@router.get(
    f"{PREFIX}/tickets/{{ticket_id}}",
    summary="A ticket with its history (messages, attachments, SLA clocks, events, pauses)",
    responses=errors(401, 404),
)
async def get_ticket(ticket_id: TicketId, caller: CurrentCaller, support: Support) -> TicketHistory:
    response = await support.GetTicket(
        pb.GetTicketRequest(ticket_id=str(ticket_id)), metadata=caller.metadata
    )
    return TicketHistory.from_proto(response)


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


@router.post(
    f"{PREFIX}/tickets/{{ticket_id}}/status",
    summary="Change the status (agents; customers may cancel)",
    responses=errors(400, 401, 403, 404, 409),
)
async def change_status(
    ticket_id: TicketId, body: StatusBody, caller: CurrentCaller, support: Support
) -> Ticket:
    response = await support.ChangeTicketStatus(
        pb.ChangeTicketStatusRequest(
            ticket_id=str(ticket_id), status=body.status.to_proto(), reason=body.reason or ""
        ),
        metadata=caller.metadata,
    )
    return Ticket.from_proto(response.ticket)


@router.post(
    f"{PREFIX}/tickets/{{ticket_id}}/priority",
    summary="Change the priority (agents); the SLA deadlines follow",
    responses=errors(400, 401, 403, 404, 409),
)
async def change_priority(
    ticket_id: TicketId, body: PriorityBody, caller: CurrentCaller, support: Support
) -> Ticket:
    response = await support.ChangeTicketPriority(
        pb.ChangeTicketPriorityRequest(ticket_id=str(ticket_id), priority=body.priority.to_proto()),
        metadata=caller.metadata,
    )
    return Ticket.from_proto(response.ticket)


@router.post(
    f"{PREFIX}/tickets/{{ticket_id}}/kind",
    summary="Classify as support or consulting (agents)",
    responses=errors(400, 401, 403, 404, 409),
)
async def classify(
    ticket_id: TicketId, body: KindBody, caller: CurrentCaller, support: Support
) -> Ticket:
    response = await support.ClassifyTicket(
        pb.ClassifyTicketRequest(ticket_id=str(ticket_id), kind=body.kind.to_proto()),
        metadata=caller.metadata,
    )
    return Ticket.from_proto(response.ticket)


@router.post(
    f"{PREFIX}/tickets/{{ticket_id}}/consulting-time",
    summary="Log billable consulting time (agents)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 404, 409),
)
async def log_consulting_time(
    ticket_id: TicketId, body: ConsultingBody, caller: CurrentCaller, support: Support
) -> Ticket:
    response = await support.LogConsultingTime(
        pb.LogConsultingTimeRequest(
            ticket_id=str(ticket_id), minutes=body.minutes, note=body.note or ""
        ),
        metadata=caller.metadata,
    )
    return Ticket.from_proto(response.ticket)


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
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def add_attachment(
    ticket_id: TicketId,
    request: Request,
    caller: CurrentCaller,
    support: Support,
    filename: Annotated[str, Query(min_length=1, max_length=200, examples=["capture.png"])],
) -> Attachment:
    content_type = request.headers.get("content-type", "")
    if not content_type:
        raise ProblemException(
            400,
            "invalid_argument",
            "1 field is invalid: content_type",
            errors=[("content_type", "send the file's type in Content-Type")],
        )
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
        200: {"content": {"application/octet-stream": {}}, "description": "The file."},
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


@router.get(
    f"{PREFIX}/reports/sla",
    summary="Per plan and period: % within SLA, breaches, deflections, consulting time",
    responses=errors(400, 401, 403, 404),
)
async def sla_report(
    caller: CurrentCaller,
    support: Support,
    start: Annotated[dt.datetime, Query(description="Tickets opened from (inclusive).")],
    end: Annotated[dt.datetime, Query(description="… until (exclusive).")],
    plan_id: Annotated[uuid.UUID | None, Query()] = None,
) -> SlaReport:
    response = await support.GetSlaReport(
        pb.GetSlaReportRequest(
            plan_id=str(plan_id) if plan_id else "",
            period_start=_stamp(start),
            period_end=_stamp(end),
        ),
        metadata=caller.metadata,
    )
    return SlaReport.from_proto(response)
