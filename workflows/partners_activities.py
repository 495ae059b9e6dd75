"""Activities of the partners workflows: each calls one internal partners RPC (or support).

Activities are methods of an object built with its channels (see `workflows.worker`); calls carry
the worker's service token and a deadline. Every partners step is idempotent, so Temporal's
retries are safe. A refusal that no retry can change (INVALID_ARGUMENT, NOT_FOUND, FAILED_
PRECONDITION, PERMISSION_DENIED from partners) becomes a non-retryable error.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC
from typing import Any, TypeVar

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from guichet.partners.v1 import partners_pb2 as pb, partners_pb2_grpc
from guichet.support.v1 import support_pb2, support_pb2_grpc
from temporalio import activity
from temporalio.exceptions import ApplicationError

from services.kit.support_tickets import open_support_ticket
from workflows.contracts.partners import SUPPORT_CATEGORY_CODES

T = TypeVar("T")

# Statuses no retry can change.
_FINAL = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.ALREADY_EXISTS,
    }
)


@dataclass
class EscalationState:
    """What the database says of an escalation after a step (lower-case names)."""

    status: str
    answer: str
    cancelled_by: str
    refunded: bool
    # The order's code (NAP-1001), what people quote; "" from a step recorded before.
    order_code: str = ""


@dataclass
class TicketClosing:
    """What became of the escalation's support ticket once the escalation ended."""

    # closed (now), already_closed (by an agent, or before), no_ticket (never escalated),
    # not_linked (a ticket opened before tickets carried their link: left to the agents).
    result: str
    ticket_id: str = ""


@dataclass
class EscalateInput:
    order_id: str
    # ISO 8601, computed by the workflow from its own clock.
    support_deadline: str


@dataclass
class ReactivateInput:
    product_id: str
    deactivation: int


def _state(escalation: pb.Escalation) -> EscalationState:
    status = pb.EscalationStatus.Name(escalation.status).removeprefix("ESCALATION_STATUS_")
    answer = pb.EscalationAnswer.Name(escalation.answer).removeprefix("ESCALATION_ANSWER_")
    return EscalationState(
        status=status.lower(),
        answer="" if answer == "UNSPECIFIED" else answer.lower(),
        cancelled_by=escalation.cancelled_by,
        refunded=escalation.refunded,
        order_code=escalation.order_code,
    )


async def _call(call: Awaitable[T]) -> T:
    """Maps a refused partners call to a non-retryable failure; the rest is retried."""
    try:
        return await call
    except grpc.aio.AioRpcError as error:
        if error.code() in _FINAL:
            raise ApplicationError(
                f"partners refused: {error.code().name}: {error.details()}",
                type=error.code().name,
                non_retryable=True,
            ) from None
        raise


class PartnersActivities:
    def __init__(
        self,
        partners: partners_pb2_grpc.PartnersServiceStub,
        support: support_pb2_grpc.SupportServiceStub,
        *,
        support_timeout: float = 10.0,
    ) -> None:
        self._partners: Any = partners
        self._support = support
        self._support_timeout = support_timeout

    # --- the escalation ------------------------------------------------------------------------

    @activity.defn(name="partners.escalation.deactivate_product")
    async def deactivate_product(self, order_id: str) -> EscalationState:
        response = await _call(
            self._partners.DeactivateEscalatedProduct(
                pb.DeactivateEscalatedProductRequest(order_id=order_id)
            )
        )
        return _state(response.escalation)

    @activity.defn(name="partners.escalation.settle_answer")
    async def settle_answer(self, order_id: str) -> EscalationState:
        response = await _call(
            self._partners.SettleOutOfStockAnswer(
                pb.SettleOutOfStockAnswerRequest(order_id=order_id)
            )
        )
        return _state(response.escalation)

    @activity.defn(name="partners.escalation.replace_item")
    async def replace_item(self, order_id: str) -> EscalationState:
        response = await _call(
            self._partners.ReplaceEscalatedItem(pb.ReplaceEscalatedItemRequest(order_id=order_id))
        )
        return _state(response.escalation)

    @activity.defn(name="partners.escalation.escalate")
    async def escalate(self, request: EscalateInput) -> EscalationState:
        deadline = Timestamp()
        deadline.FromJsonString(request.support_deadline)
        response = await _call(
            self._partners.EscalateToSupport(
                pb.EscalateToSupportRequest(order_id=request.order_id, support_deadline=deadline)
            )
        )
        return _state(response.escalation)

    @activity.defn(name="partners.escalation.cancel")
    async def cancel(self, order_id: str) -> EscalationState:
        """At support's deadline (idempotent: support may have cancelled already)."""
        response = await _call(
            self._partners.CancelEscalatedOrder(pb.CancelEscalatedOrderRequest(order_id=order_id))
        )
        return _state(response.escalation)

    @activity.defn(name="partners.escalation.close_ticket")
    async def close_ticket(self, order_id: str) -> TicketClosing:
        """The escalation ended: its support ticket is closed with the outcome (a note), and
        the closing recorded on the order. Opens the ticket first if support had not taken the
        message yet (same idempotency key: never a second ticket). Idempotent."""
        outcome = await _call(
            self._partners.GetEscalationOutcome(pb.GetEscalationOutcomeRequest(order_id=order_id))
        )
        escalation = outcome.escalation
        if not outcome.ended:
            raise ApplicationError("the escalation has not ended", type="EscalationRunning")
        if not escalation.support_message_id:
            return TicketClosing("no_ticket")
        ticket_id = escalation.ticket_id or await self._ensure_ticket(escalation.support_message_id)
        try:
            closed = await self._support.CloseLinkedTicket(
                support_pb2.CloseLinkedTicketRequest(
                    ticket_id=ticket_id,
                    status=support_pb2.TICKET_STATUS_FINISHED,
                    note=outcome.note,
                ),
                timeout=self._support_timeout,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.FAILED_PRECONDITION:
                # A ticket opened before tickets carried their link (an escalation that was
                # running when this step arrived): support will not let a service close it, and
                # an agent closes it as before. Nothing to retry.
                activity.logger.warning("escalation ticket left to the agents: %s", error.details())
                return TicketClosing("not_linked", ticket_id)
            if error.code() in _FINAL:
                raise ApplicationError(
                    f"support refused to close the ticket: {error.details()}",
                    type=error.code().name,
                    non_retryable=True,
                ) from None
            raise
        await _call(
            self._partners.RecordEscalationTicketClosed(
                pb.RecordEscalationTicketClosedRequest(order_id=order_id, ticket_id=ticket_id)
            )
        )
        return TicketClosing("closed" if closed.closed else "already_closed", ticket_id)

    # --- product reactivation ------------------------------------------------------------------

    @activity.defn(name="partners.reactivate_product")
    async def reactivate_product(self, request: ReactivateInput) -> bool:
        response = await _call(
            self._partners.ReactivateScheduledProduct(
                pb.ReactivateScheduledProductRequest(
                    product_id=request.product_id, deactivation=request.deactivation
                )
            )
        )
        return bool(response.reactivated)

    # --- tickets in support --------------------------------------------------------------------

    @activity.defn(name="partners.open_support_ticket")
    async def open_support_ticket(self, message_id: str) -> str:
        """Opens the message's ticket in support (with the worker's service token) unless it has
        one; records the ticket, or why support did not take it (then retried).

        The message id goes as support's idempotency key: if support opened the ticket but its
        answer was lost (or the partner's request opened it meanwhile), the retry gets that
        same ticket back."""
        return await self._ensure_ticket(message_id)

    async def _ensure_ticket(self, message_id: str) -> str:
        found = await _call(
            self._partners.GetSupportMessage(pb.GetSupportMessageRequest(message_id=message_id))
        )
        message = found.message
        if message.status == pb.SUPPORT_MESSAGE_STATUS_TICKET_OPENED:
            return str(message.ticket_id)
        respond_by, link = None, None
        if message.subject_kind == "escalation":
            # The escalation's deadline is the ticket's SLA; the order is what it is about.
            if message.HasField("respond_by"):
                respond_by = message.respond_by.ToDatetime(tzinfo=UTC)
            link = support_pb2.TicketLink(
                kind="order", id=message.subject_id, label=message.order_code
            )
        try:
            category = pb.SupportCategory.Name(message.category)
            ticket = await open_support_ticket(
                self._support,
                category_code=SUPPORT_CATEGORY_CODES[
                    category.removeprefix("SUPPORT_CATEGORY_").lower()
                ],
                store_id=message.store_id,
                subject=message.subject,
                body=message.body,
                reply_to_email=message.reply_to_email,
                idempotency_key=message.id,
                seconds=self._support_timeout,
                respond_by=respond_by,
                link=link,
            )
        except (grpc.aio.AioRpcError, LookupError) as error:
            if isinstance(error, grpc.aio.AioRpcError):
                detail = (error.details() or "").strip()
                reason = f"support answered {error.code().name}: {detail}"
                final = error.code() == grpc.StatusCode.INVALID_ARGUMENT
            else:
                reason, final = str(error), False
            reason += " (with the worker's token)"
            await _call(
                self._partners.RecordSupportTicket(
                    pb.RecordSupportTicketRequest(message_id=message_id, error=reason)
                )
            )
            raise ApplicationError(reason, type="SupportRefused", non_retryable=final) from None
        await _call(
            self._partners.RecordSupportTicket(
                pb.RecordSupportTicketRequest(
                    message_id=message_id, ticket_id=ticket.id, ticket_number=ticket.number
                )
            )
        )
        return str(ticket.id)

    def all(self) -> list[Any]:
        """Every activity of this object, for the worker's list."""
        return [
            self.deactivate_product,
            self.settle_answer,
            self.replace_item,
            self.escalate,
            self.cancel,
            self.close_ticket,
            self.reactivate_product,
            self.open_support_ticket,
        ]
