"""The RPCs of messages to support (the ticket opens after the commit, see `base`)."""

from __future__ import annotations

from guichet.partners.v1 import partners_pb2 as pb

from services.kit.auth import current_principal
from services.partners.domain import messages
from services.partners.servicer.base import Context, ServicerBase
from services.partners.servicer.convert import CATEGORY, _name_of, _page, message_to_proto


class MessageRpcs(ServicerBase):
    """Messages to support and the ticket they open."""

    async def SendSupportMessage(
        self, request: pb.SendSupportMessageRequest, context: Context
    ) -> pb.SendSupportMessageResponse:
        async with self._sessions.begin() as session:
            message = await messages.send_support_message(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                store_id=request.store_id,
                category=_name_of(CATEGORY, request.category),
                subject=request.subject,
                body=request.body,
                order_code=request.order_code,
                period=request.period,
                reply_to_email=request.reply_to_email,
            )
        self._started()
        message = await self._open_ticket_now(message.id)
        return pb.SendSupportMessageResponse(message=message_to_proto(message))

    async def ListSupportMessages(
        self, request: pb.ListSupportMessagesRequest, context: Context
    ) -> pb.ListSupportMessagesResponse:
        async with self._sessions.begin() as session:
            page = await messages.list_support_messages(
                session=session,
                actor=current_principal(),
                store_id=request.store_id,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListSupportMessagesResponse(
            messages=[message_to_proto(m) for m in page.items], page=_page(page.next_page_token)
        )

    async def GetSupportMessage(
        self, request: pb.GetSupportMessageRequest, context: Context
    ) -> pb.GetSupportMessageResponse:
        async with self._sessions.begin() as session:
            view = await messages.get_support_message(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                message_id=request.message_id,
            )
        return pb.GetSupportMessageResponse(message=message_to_proto(view.message, view.store_name))

    async def RecordSupportTicket(
        self, request: pb.RecordSupportTicketRequest, context: Context
    ) -> pb.RecordSupportTicketResponse:
        async with self._sessions.begin() as session:
            view = await messages.record_support_ticket(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                message_id=request.message_id,
                ticket_id=request.ticket_id,
                error=request.error,
                ticket_number=request.ticket_number,
            )
        return pb.RecordSupportTicketResponse(
            message=message_to_proto(view.message, view.store_name)
        )
