"""The RPCs of the out-of-stock escalation: the partner's report and answer, operators' list
and cancellation, and the internal steps the OrderEscalation workflow calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from guichet.partners.v1 import partners_pb2 as pb

from services.kit.auth import current_principal
from services.kit.metrics import workflow_metrics
from services.partners.domain import escalations
from services.partners.models import EscalationStatus
from services.partners.servicer.base import Context, ServicerBase
from services.partners.servicer.convert import (
    ESCALATION_STATUS,
    _name_of,
    _page,
    _time,
    escalation_view_to_proto,
    order_detail_to_proto,
    order_to_proto,
)
from workflows.contracts import partners as contract


class EscalationRpcs(ServicerBase):
    """The out-of-stock escalation: the partner's report and answer, operators' list and"""

    async def ReportOutOfStock(
        self, request: pb.ReportOutOfStockRequest, context: Context
    ) -> pb.ReportOutOfStockResponse:
        async with self._sessions.begin() as session:
            view = await escalations.report_out_of_stock(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                store_id=request.store_id,
                order_id=request.order_id,
                item_id=request.item_id,
                note=request.note,
            )
        self._started()
        return pb.ReportOutOfStockResponse(order=order_detail_to_proto(view))

    async def AnswerOutOfStock(
        self, request: pb.AnswerOutOfStockRequest, context: Context
    ) -> pb.AnswerOutOfStockResponse:
        async with self._sessions.begin() as session:
            view = await escalations.answer_out_of_stock(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                store_id=request.store_id,
                order_id=request.order_id,
                customer_accepted=request.customer_accepted,
                replacement_product_id=request.replacement_product_id,
                replacement_quantity=request.replacement_quantity,
                note=request.note,
            )
        await self._signal(
            contract.escalation_workflow_id(str(view.order.id)), contract.PARTNER_ANSWERED_SIGNAL
        )
        return pb.AnswerOutOfStockResponse(order=order_detail_to_proto(view))

    async def ListEscalations(
        self, request: pb.ListEscalationsRequest, context: Context
    ) -> pb.ListEscalationsResponse:
        async with self._sessions.begin() as session:
            page = await escalations.list_escalations(
                session=session,
                actor=current_principal(),
                status=_name_of(ESCALATION_STATUS, request.status),
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListEscalationsResponse(
            escalations=[escalation_view_to_proto(v) for v in page.items],
            page=_page(page.next_page_token),
        )

    async def CancelEscalatedOrder(
        self, request: pb.CancelEscalatedOrderRequest, context: Context
    ) -> pb.CancelEscalatedOrderResponse:
        actor = current_principal()
        async with self._sessions.begin() as session:
            escalation, order = await escalations.cancel_escalated_order(
                session=session,
                settings=self._settings,
                actor=actor,
                now=self._clock(),
                order_id=request.order_id,
                note=request.note,
            )
            view = await escalations.escalation_view(session, escalation)
        if not actor.is_service:
            await self._signal(
                contract.escalation_workflow_id(str(order.id)), contract.SUPPORT_DECIDED_SIGNAL
            )
        return pb.CancelEscalatedOrderResponse(
            escalation=escalation_view_to_proto(view), order=order_to_proto(order)
        )

    async def _step(
        self,
        step: Callable[..., Any],
        order_id: str,
        **extra: Any,
    ) -> pb.Escalation:
        async with self._sessions.begin() as session:
            escalation = await step(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                order_id=order_id,
                **extra,
            )
            view = await escalations.escalation_view(session, escalation)
        self._started()
        return escalation_view_to_proto(view)

    async def DeactivateEscalatedProduct(
        self, request: pb.DeactivateEscalatedProductRequest, context: Context
    ) -> pb.DeactivateEscalatedProductResponse:
        escalation = await self._step(escalations.deactivate_escalated_product, request.order_id)
        return pb.DeactivateEscalatedProductResponse(escalation=escalation)

    async def SettleOutOfStockAnswer(
        self, request: pb.SettleOutOfStockAnswerRequest, context: Context
    ) -> pb.SettleOutOfStockAnswerResponse:
        escalation = await self._step(escalations.settle_out_of_stock_answer, request.order_id)
        return pb.SettleOutOfStockAnswerResponse(escalation=escalation)

    async def ReplaceEscalatedItem(
        self, request: pb.ReplaceEscalatedItemRequest, context: Context
    ) -> pb.ReplaceEscalatedItemResponse:
        escalation = await self._step(escalations.replace_escalated_item, request.order_id)
        return pb.ReplaceEscalatedItemResponse(escalation=escalation)

    async def EscalateToSupport(
        self, request: pb.EscalateToSupportRequest, context: Context
    ) -> pb.EscalateToSupportResponse:
        now = self._clock()
        async with self._sessions.begin() as session:
            escalation = await escalations.escalate_to_support(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=now,
                order_id=request.order_id,
                support_deadline=_time(request, "support_deadline"),
            )
            view = await escalations.escalation_view(session, escalation)
        self._started()
        if escalation.status == EscalationStatus.ESCALATED and escalation.updated_at == now:
            # docs/slo.md: an escalation reaches support within minutes of the partner's answer
            # deadline (at once when the customer refused before it). Counted once: a retried
            # call finds it escalated earlier.
            late = (now - escalation.answer_deadline).total_seconds()
            workflow_metrics().step_done("OrderEscalation", "escalated", late)
        return pb.EscalateToSupportResponse(escalation=escalation_view_to_proto(view))

    async def GetEscalationOutcome(
        self, request: pb.GetEscalationOutcomeRequest, context: Context
    ) -> pb.GetEscalationOutcomeResponse:
        async with self._sessions.begin() as session:
            view, ended, note = await escalations.escalation_outcome(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                order_id=request.order_id,
            )
        return pb.GetEscalationOutcomeResponse(
            escalation=escalation_view_to_proto(view), ended=ended, note=note
        )

    async def RecordEscalationTicketClosed(
        self, request: pb.RecordEscalationTicketClosedRequest, context: Context
    ) -> pb.RecordEscalationTicketClosedResponse:
        escalation = await self._step(
            escalations.record_escalation_ticket_closed,
            request.order_id,
            ticket_id=request.ticket_id,
        )
        return pb.RecordEscalationTicketClosedResponse(escalation=escalation)
