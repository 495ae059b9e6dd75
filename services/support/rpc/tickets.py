"""Tickets, partner messages and attachments: the support servicer's methods for them."""

from __future__ import annotations

from guichet.support.v1 import support_pb2 as pb

from services.kit.auth import current_principal
from services.support.domain.attachments import add_attachment, get_attachment
from services.support.domain.partner_messages import TicketLinkInput, send_partner_message
from services.support.domain.ticket_changes import (
    change_priority,
    change_status,
    classify,
    close_linked_ticket,
    log_consulting_time,
    reply,
)
from services.support.domain.tickets import (
    TicketInput,
    get_ticket,
    list_queue,
    list_tickets,
    open_ticket,
)
from services.support.rpc.base import Context, ServicerBase
from services.support.rpc.protos import (
    KIND_IN,
    PRIORITY_IN,
    STATUS_IN,
    attachment_to_proto,
    clock_to_proto,
    consulting_to_proto,
    enum_in,
    event_to_proto,
    message_to_proto,
    page_response,
    pause_to_proto,
    time_in,
)


class TicketMethods(ServicerBase):
    """OpenTicket … GetAttachment."""

    async def OpenTicket(
        self, request: pb.OpenTicketRequest, context: Context
    ) -> pb.OpenTicketResponse:
        async with self._sessions.begin() as session:
            ticket = await open_ticket(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                form=TicketInput(
                    category_id=request.category_id,
                    title=request.title,
                    description=request.description,
                    screen_code=request.screen_code,
                    example_record=request.example_record,
                    priority=enum_in(PRIORITY_IN, request.priority),
                    kind=enum_in(KIND_IN, request.kind),
                    view_id=request.view_id,
                    organisation_id=request.organisation_id,
                    language=request.language,
                ),
                customer_address=self._customer_address,
            )
            answer = await self._ticket(session, ticket)
        self._committed()
        return pb.OpenTicketResponse(ticket=answer)

    async def SendPartnerMessage(
        self, request: pb.SendPartnerMessageRequest, context: Context
    ) -> pb.SendPartnerMessageResponse:
        async with self._sessions.begin() as session:
            ticket = await send_partner_message(
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
                respond_by=time_in(request.respond_by, request.HasField("respond_by")),
                link=TicketLinkInput(request.link.kind, request.link.id, request.link.label)
                if request.HasField("link")
                else None,
            )
            answer = await self._ticket(session, ticket)
        self._committed()
        return pb.SendPartnerMessageResponse(ticket=answer)

    async def ListTickets(
        self, request: pb.ListTicketsRequest, context: Context
    ) -> pb.ListTicketsResponse:
        async with self._sessions.begin() as session:
            page = await list_tickets(
                session=session,
                actor=current_principal(),
                statuses=[enum_in(STATUS_IN, s) for s in request.statuses],
                query=request.query,
                organisation_id=request.organisation_id,
                kind=enum_in(KIND_IN, request.kind),
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
            tickets = await self._tickets(session, page.items)
        return pb.ListTicketsResponse(tickets=tickets, page=page_response(page.next_page_token))

    async def ListQueue(
        self, request: pb.ListQueueRequest, context: Context
    ) -> pb.ListQueueResponse:
        async with self._sessions.begin() as session:
            page = await list_queue(
                session=session,
                actor=current_principal(),
                statuses=[enum_in(STATUS_IN, s) for s in request.statuses],
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
            tickets = await self._tickets(session, page.items)
        return pb.ListQueueResponse(tickets=tickets, page=page_response(page.next_page_token))

    async def GetTicket(
        self, request: pb.GetTicketRequest, context: Context
    ) -> pb.GetTicketResponse:
        async with self._sessions.begin() as session:
            history = await get_ticket(
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
            ticket, message = await reply(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                ticket_id=request.ticket_id,
                body=request.body,
                set_status=enum_in(STATUS_IN, request.set_status),
                customer_address=self._customer_address,
            )
            answer = await self._ticket(session, ticket)
        self._committed()
        return pb.ReplyToTicketResponse(ticket=answer, message=message_to_proto(message))

    async def ChangeTicketStatus(
        self, request: pb.ChangeTicketStatusRequest, context: Context
    ) -> pb.ChangeTicketStatusResponse:
        async with self._sessions.begin() as session:
            ticket = await change_status(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                ticket_id=request.ticket_id,
                status=enum_in(STATUS_IN, request.status),
                reason=request.reason,
            )
            answer = await self._ticket(session, ticket)
        self._committed()
        return pb.ChangeTicketStatusResponse(ticket=answer)

    async def CloseLinkedTicket(
        self, request: pb.CloseLinkedTicketRequest, context: Context
    ) -> pb.CloseLinkedTicketResponse:
        async with self._sessions.begin() as session:
            ticket, closed = await close_linked_ticket(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                ticket_id=request.ticket_id,
                status=enum_in(STATUS_IN, request.status),
                note=request.note,
            )
            answer = await self._ticket(session, ticket)
        self._committed()
        return pb.CloseLinkedTicketResponse(ticket=answer, closed=closed)

    async def ChangeTicketPriority(
        self, request: pb.ChangeTicketPriorityRequest, context: Context
    ) -> pb.ChangeTicketPriorityResponse:
        async with self._sessions.begin() as session:
            ticket = await change_priority(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                ticket_id=request.ticket_id,
                priority=enum_in(PRIORITY_IN, request.priority),
            )
            answer = await self._ticket(session, ticket)
        self._committed()
        return pb.ChangeTicketPriorityResponse(ticket=answer)

    async def ClassifyTicket(
        self, request: pb.ClassifyTicketRequest, context: Context
    ) -> pb.ClassifyTicketResponse:
        async with self._sessions.begin() as session:
            ticket = await classify(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                ticket_id=request.ticket_id,
                kind=enum_in(KIND_IN, request.kind),
            )
            answer = await self._ticket(session, ticket)
        return pb.ClassifyTicketResponse(ticket=answer)

    async def LogConsultingTime(
        self, request: pb.LogConsultingTimeRequest, context: Context
    ) -> pb.LogConsultingTimeResponse:
        async with self._sessions.begin() as session:
            ticket, entry = await log_consulting_time(
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
            attachment = await add_attachment(
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
            attachment = await get_attachment(
                session=session, actor=current_principal(), attachment_id=request.attachment_id
            )
        return pb.GetAttachmentResponse(
            attachment=attachment_to_proto(attachment), content=attachment.content
        )
