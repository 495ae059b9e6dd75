"""The JSON shapes of a store's orders, out-of-stock reports, couriers and escalations, and
their proto conversions."""

from __future__ import annotations

import datetime as dt
import uuid

from guichet.partners.v1 import partners_pb2 as pb
from pydantic import BaseModel, Field

from services.gateway.fields import StrictBool, StrictInt, text
from services.gateway.portals.partners.schemas import (
    NOTE_CAP,
    CourierReportReason,
    EscalationAnswer,
    EscalationStatus,
    OrderItemStatus,
    OrderStatus,
    PaymentKind,
    RefundFunder,
    _none,
    _Request,
    _time,
)

# --- orders ------------------------------------------------------------------------------------


class Order(BaseModel):
    """One line of the lists: what the history shows without opening the order."""

    id: uuid.UUID = Field(examples=["3fce0b90-766e-5a5b-9a2e-5063bf9306a2"])
    code: str = Field(examples=["PORT-000123"])
    status: OrderStatus | None
    created_at: dt.datetime | None = Field(examples=["2026-03-14T09:26:53Z"])
    closed_at: dt.datetime | None = Field(examples=["2026-03-14T20:41:00Z"])
    total_cents: int = Field(examples=[3480])
    currency: str = Field(examples=["EUR"])
    payment_made: bool = Field(examples=[True])
    cancellation_reason: str | None = Field(examples=[None])
    refund_reason: str | None = Field(examples=[None])
    refund_funded_by: RefundFunder | None
    escalation_status: EscalationStatus | None

    @classmethod
    def from_proto(cls, order: pb.Order) -> Order:
        return cls(
            id=uuid.UUID(order.id),
            code=order.code,
            status=OrderStatus.from_proto(order.status),
            created_at=_time(order, "create_time"),
            closed_at=_time(order, "close_time"),
            total_cents=order.total_cents,
            currency=order.currency,
            payment_made=order.payment_made,
            cancellation_reason=_none(order.cancellation_reason),
            refund_reason=_none(order.refund_reason),
            refund_funded_by=RefundFunder.from_proto(order.refund_funded_by),
            escalation_status=EscalationStatus.from_proto(order.escalation_status),
        )


class OrderPage(BaseModel):
    items: list[Order]
    next_page_token: str | None = Field(examples=["eyJsIjoicGFnZSIsImsiOlsiMjAyNi0wMy0xNCJdfQ"])


class OrderItem(BaseModel):
    id: uuid.UUID
    product_id: uuid.UUID | None
    name: str
    unit_price_cents: int
    quantity: int
    status: OrderItemStatus | None
    replaces_item_id: uuid.UUID | None

    @classmethod
    def from_proto(cls, item: pb.OrderItem) -> OrderItem:
        return cls(
            id=uuid.UUID(item.id),
            product_id=uuid.UUID(item.product_id) if item.product_id else None,
            name=item.name,
            unit_price_cents=item.unit_price_cents,
            quantity=item.quantity,
            status=OrderItemStatus.from_proto(item.status),
            replaces_item_id=uuid.UUID(item.replaces_item_id) if item.replaces_item_id else None,
        )


class Payment(BaseModel):
    id: uuid.UUID
    kind: PaymentKind | None
    amount_cents: int
    at: dt.datetime | None
    reason: str | None
    funded_by: RefundFunder | None

    @classmethod
    def from_proto(cls, payment: pb.Payment) -> Payment:
        return cls(
            id=uuid.UUID(payment.id),
            kind=PaymentKind.from_proto(payment.kind),
            amount_cents=payment.amount_cents,
            at=_time(payment, "time"),
            reason=_none(payment.reason),
            funded_by=RefundFunder.from_proto(payment.funded_by),
        )


class OrderEvent(BaseModel):
    """One step in the life of the order (every escalation step is one)."""

    at: dt.datetime | None
    kind: str = Field(examples=["out_of_stock.reported"])
    actor: str
    detail: dict[str, str]

    @classmethod
    def from_proto(cls, event: pb.OrderEvent) -> OrderEvent:
        return cls(
            at=_time(event, "time"), kind=event.kind, actor=event.actor, detail=dict(event.detail)
        )


class Escalation(BaseModel):
    order_id: uuid.UUID
    store_id: uuid.UUID
    order_code: str | None
    status: EscalationStatus | None
    answer: EscalationAnswer | None
    item_id: uuid.UUID
    product_id: uuid.UUID
    product_name: str | None
    answer_deadline: dt.datetime | None
    support_deadline: dt.datetime | None
    replacement_product_id: uuid.UUID | None
    replacement_quantity: int | None
    ticket_id: str | None = Field(
        description="The support ticket the escalation opened.",
        examples=["f169a4b2-abdd-5975-9daa-f82864acd779"],
    )
    ticket_number: int | None = Field(
        description="Its number, as people quote it (#1042).", examples=[1042]
    )
    ticket_closed_at: dt.datetime | None = Field(
        description="When the escalation closed its ticket with the outcome.",
        examples=["2026-03-14T19:51:00Z"],
    )
    cancelled_by: str | None
    refunded: bool
    created_at: dt.datetime | None

    @classmethod
    def from_proto(cls, escalation: pb.Escalation) -> Escalation:
        replacement = escalation.replacement_product_id
        return cls(
            order_id=uuid.UUID(escalation.order_id),
            store_id=uuid.UUID(escalation.store_id),
            order_code=_none(escalation.order_code),
            status=EscalationStatus.from_proto(escalation.status),
            answer=EscalationAnswer.from_proto(escalation.answer),
            item_id=uuid.UUID(escalation.item_id),
            product_id=uuid.UUID(escalation.product_id),
            product_name=_none(escalation.product_name),
            answer_deadline=_time(escalation, "answer_deadline"),
            support_deadline=_time(escalation, "support_deadline"),
            replacement_product_id=uuid.UUID(replacement) if replacement else None,
            replacement_quantity=escalation.replacement_quantity or None,
            ticket_id=_none(escalation.ticket_id),
            ticket_number=escalation.ticket_number or None,
            ticket_closed_at=_time(escalation, "ticket_close_time"),
            cancelled_by=_none(escalation.cancelled_by),
            refunded=escalation.refunded,
            created_at=_time(escalation, "create_time"),
        )


class EscalationPage(BaseModel):
    items: list[Escalation]
    next_page_token: str | None = Field(examples=["eyJsIjoicGFnZSIsImsiOlsiMjAyNi0wMy0xNCJdfQ"])


class CourierReport(BaseModel):
    id: uuid.UUID = Field(examples=["ffff0f1a-68e1-5a3a-b21d-92ecd9619b67"])
    order_id: uuid.UUID = Field(examples=["4676b3a8-9208-5fc4-93a2-e12a8ee23bdc"])
    reason: CourierReportReason | None
    comment: str | None = Field(examples=["Arrivé 40 minutes après l'appel."])
    created_at: dt.datetime | None = Field(examples=["2026-03-14T09:26:53Z"])

    @classmethod
    def from_proto(cls, report: pb.CourierReport) -> CourierReport:
        return cls(
            id=uuid.UUID(report.id),
            order_id=uuid.UUID(report.order_id),
            reason=CourierReportReason.from_proto(report.reason),
            comment=_none(report.comment),
            created_at=_time(report, "create_time"),
        )


class OrderDetail(BaseModel):
    order: Order
    customer_name: str | None = Field(examples=["Camille Lefèvre"])
    customer_phone: str | None = Field(examples=["+33 6 98 76 54 32"])
    courier_name: str | None = Field(examples=["Rui Costa"])
    courier_phone: str | None = Field(examples=["+33 7 11 22 33 44"])
    items: list[OrderItem]
    payments: list[Payment]
    events: list[OrderEvent]
    escalation: Escalation | None
    courier_report: CourierReport | None

    @classmethod
    def from_proto(cls, detail: pb.OrderDetail) -> OrderDetail:
        return cls(
            order=Order.from_proto(detail.order),
            customer_name=_none(detail.customer_name),
            customer_phone=_none(detail.customer_phone),
            courier_name=_none(detail.courier_name),
            courier_phone=_none(detail.courier_phone),
            items=[OrderItem.from_proto(i) for i in detail.items],
            payments=[Payment.from_proto(p) for p in detail.payments],
            events=[OrderEvent.from_proto(e) for e in detail.events],
            escalation=(
                Escalation.from_proto(detail.escalation) if detail.HasField("escalation") else None
            ),
            courier_report=(
                CourierReport.from_proto(detail.courier_report)
                if detail.HasField("courier_report")
                else None
            ),
        )


class OutOfStockBody(_Request):
    item_id: uuid.UUID = Field(
        description="The order item whose product ran out.",
        examples=["2e1d0c9b-8a7f-4e6d-9c5b-4a3f2e1d0c9b"],
    )
    note: str | None = Field(
        default=None, max_length=NOTE_CAP, examples=["Plus de burrata avant demain midi."]
    )


class AnswerBody(_Request):
    customer_accepted: StrictBool = Field(examples=[True])
    replacement_product_id: uuid.UUID | None = Field(
        default=None,
        description="Required when the customer accepted the alternative (422 otherwise).",
        examples=["5f4e3d2c-1b0a-4f9e-8d7c-6b5a4f3e2d1c"],
    )
    replacement_quantity: StrictInt | None = Field(
        default=None,
        ge=1,
        le=99,
        description="Default: the quantity of the item replaced.",
        examples=[1],
    )
    note: str | None = Field(
        default=None, max_length=NOTE_CAP, examples=["Mme Lefèvre accepte une Regina à la place."]
    )


class CourierReportBody(_Request):
    reason: CourierReportReason = Field(examples=["late"])
    comment: str | None = Field(
        default=None, max_length=NOTE_CAP, examples=["Arrivé 40 minutes après l'appel."]
    )


class CourierContactBody(_Request):
    message: str | None = Field(default=None, max_length=500, examples=["La commande est prête"])


class CourierContact(BaseModel):
    courier_name: str = Field(examples=["Rui Costa"])
    courier_phone: str = Field(examples=["+33 7 11 22 33 44"])


class CancelResult(BaseModel):
    escalation: Escalation
    order: Order


class RefundBody(_Request):
    reason: str = text(200, "Pizza livrée froide")
    funded_by: RefundFunder = Field(examples=["partner"])
