"""The JSON shapes of `/v1/partners/...` (and the partners operator routes), and their
translation to and from partners' messages.

Request models check shape only (types, UUIDs, size caps, no unknown fields); what a value means
(is this product on the menu, is this IBAN valid, is the deadline past) is the partners service's
rule and comes back as a problem naming the field. Enums travel as lower-case strings, timestamps
as ISO 8601, amounts as integers in minor units of the store's currency, proto3's empty strings
as null.
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp
from guichet.partners.v1 import partners_pb2 as pb
from pydantic import BaseModel, ConfigDict, Field

TEXT_CAP = 5_000
NOTE_CAP = 2_000
# Integers must fit the proto fields they travel in (what they mean is partners' rule).
I32_MIN, I32_MAX = -(2**31), 2**31 - 1
I64_MIN, I64_MAX = -(2**63), 2**63 - 1

E = TypeVar("E", bound="_ProtoEnum")


class _Request(BaseModel):
    """Unknown fields are refused: a typo must not be silently dropped."""

    model_config = ConfigDict(extra="forbid")


def _time(message: Any, name: str) -> dt.datetime | None:
    """An optional Timestamp as an aware datetime; cheaper than ToDatetime (lists map many)."""
    if not message.HasField(name):
        return None
    value: Timestamp = getattr(message, name)
    moment = dt.datetime.fromtimestamp(value.seconds, dt.UTC)
    return moment.replace(microsecond=value.nanos // 1000) if value.nanos else moment


def _none(value: str) -> str | None:
    return value or None


class _ProtoEnum(StrEnum):
    """A lower-case name for each value of a proto enum `<PREFIX>_<NAME>`."""

    @classmethod
    def _prefix(cls) -> str:
        raise NotImplementedError

    def to_proto(self) -> Any:
        return getattr(pb, f"{self._prefix()}_{self.name}")

    @classmethod
    def from_proto(cls: type[E], value: int) -> E | None:
        """The member for a proto value (None for UNSPECIFIED), from a table built once."""
        table = _FROM_PROTO.get(cls)
        if table is None:
            table = _FROM_PROTO[cls] = {int(member.to_proto()): member for member in cls}
        found: E | None = table.get(value)
        return found


_FROM_PROTO: dict[type[_ProtoEnum], dict[int, Any]] = {}


class OrderStatus(_ProtoEnum):
    ACCEPTED = "accepted"
    COLLECTED = "collected"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"

    @classmethod
    def _prefix(cls) -> str:
        return "ORDER_STATUS"


class HistoryStatus(_ProtoEnum):
    """The statuses of the history (an order in progress is not in it)."""

    COLLECTED = "collected"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"

    @classmethod
    def _prefix(cls) -> str:
        return "ORDER_STATUS"


class RefundFunder(_ProtoEnum):
    PLATFORM = "platform"
    PARTNER = "partner"

    @classmethod
    def _prefix(cls) -> str:
        return "REFUND_FUNDER"


class OrderItemStatus(_ProtoEnum):
    ACTIVE = "active"
    OUT_OF_STOCK = "out_of_stock"
    REPLACED = "replaced"

    @classmethod
    def _prefix(cls) -> str:
        return "ORDER_ITEM_STATUS"


class PaymentKind(_ProtoEnum):
    PAYMENT = "payment"
    REFUND = "refund"

    @classmethod
    def _prefix(cls) -> str:
        return "PAYMENT_KIND"


class EscalationStatus(_ProtoEnum):
    AWAITING_ANSWER = "awaiting_answer"
    ACCEPTED = "accepted"
    ITEM_REPLACED = "item_replaced"
    ESCALATED = "escalated"
    CANCELLED = "cancelled"

    @classmethod
    def _prefix(cls) -> str:
        return "ESCALATION_STATUS"


class EscalationAnswer(_ProtoEnum):
    ACCEPTED = "accepted"
    REFUSED = "refused"
    NONE = "none"

    @classmethod
    def _prefix(cls) -> str:
        return "ESCALATION_ANSWER"


class CourierReportReason(_ProtoEnum):
    LATE = "late"
    BEHAVIOUR = "behaviour"
    DAMAGED_ORDER = "damaged_order"
    OTHER = "other"

    @classmethod
    def _prefix(cls) -> str:
        return "COURIER_REPORT_REASON"


class PromotionKind(_ProtoEnum):
    PERCENT_OFF = "percent_off"
    AMOUNT_OFF = "amount_off"
    FREE_DELIVERY = "free_delivery"

    @classmethod
    def _prefix(cls) -> str:
        return "PROMOTION_KIND"


class PromotionStatus(_ProtoEnum):
    DRAFT = "draft"
    CONFIGURED = "configured"
    ACTIVE = "active"
    ENDED = "ended"

    @classmethod
    def _prefix(cls) -> str:
        return "PROMOTION_STATUS"


class SupportCategory(_ProtoEnum):
    CONTENT_CHANGES = "content_changes"
    BANK_DETAILS = "bank_details"
    INVOICES_AND_ORDERS = "invoices_and_orders"
    OTHER = "other"

    @classmethod
    def _prefix(cls) -> str:
        return "SUPPORT_CATEGORY"


class MessageCategory(_ProtoEnum):
    """What "send us a message" takes (content and bank details have their own requests)."""

    INVOICES_AND_ORDERS = "invoices_and_orders"
    OTHER = "other"

    @classmethod
    def _prefix(cls) -> str:
        return "SUPPORT_CATEGORY"


class SupportMessageStatus(_ProtoEnum):
    PENDING_TICKET = "pending_ticket"
    TICKET_OPENED = "ticket_opened"

    @classmethod
    def _prefix(cls) -> str:
        return "SUPPORT_MESSAGE_STATUS"


class ContentChangeStatus(_ProtoEnum):
    PENDING = "pending"
    APPLIED = "applied"
    REJECTED = "rejected"

    @classmethod
    def _prefix(cls) -> str:
        return "CONTENT_CHANGE_STATUS"


class BankDetailChangeStatus(_ProtoEnum):
    AWAITING_PROOF = "awaiting_proof"
    PROOF_SUBMITTED = "proof_submitted"
    APPROVED = "approved"
    REJECTED = "rejected"

    @classmethod
    def _prefix(cls) -> str:
        return "BANK_DETAIL_CHANGE_STATUS"


# --- stores ------------------------------------------------------------------------------------


class Store(BaseModel):
    id: uuid.UUID = Field(examples=["0d10acdd-b848-5302-b51e-f4c1344b18a7"])
    name: str = Field(examples=["Pizzeria Napoli"])
    operations_email: str = Field(
        description="Where support's answers go by default.", examples=["operations@napoli.example"]
    )
    phone: str | None = Field(examples=["+33 4 91 12 34 56"])
    timezone: str = Field(examples=["Europe/Paris"])
    currency: str = Field(examples=["EUR"])
    iban_masked: str | None = Field(
        description="The bank details in force, masked.",
        examples=["FR76 •••• •••• •••• •••• •••• 189"],
    )
    bic: str | None = Field(examples=["AGRIFRPP"])
    account_holder: str | None = Field(examples=["SARL Pizzeria Napoli"])
    created_at: dt.datetime | None = Field(examples=["2026-03-14T09:26:53Z"])

    @classmethod
    def from_proto(cls, store: pb.Store) -> Store:
        return cls(
            id=uuid.UUID(store.id),
            name=store.name,
            operations_email=store.operations_email,
            phone=_none(store.phone),
            timezone=store.timezone,
            currency=store.currency,
            iban_masked=_none(store.iban_masked),
            bic=_none(store.bic),
            account_holder=_none(store.account_holder),
            created_at=_time(store, "create_time"),
        )


class RegisterStoreBody(_Request):
    store_id: uuid.UUID = Field(
        description="A delivery_partner organisation's id.",
        examples=["0d9e8f7a-6b5c-4d3e-8f1a-2b3c4d5e6f70"],
    )
    operations_email: str = Field(max_length=320, examples=["operations@napoli.example"])
    phone: str | None = Field(default=None, max_length=32, examples=["+33 4 91 12 34 56"])
    timezone: str | None = Field(default=None, max_length=64, examples=["Europe/Paris"])
    currency: str | None = Field(default=None, max_length=3, examples=["EUR"])


class StoreSettingsBody(_Request):
    operations_email: str = Field(max_length=320, examples=["operations@napoli.example"])
    phone: str | None = Field(default=None, max_length=32, examples=["+33 4 91 00 00 00"])


# --- menu --------------------------------------------------------------------------------------


class Product(BaseModel):
    id: uuid.UUID = Field(examples=["c76ba440-dfb3-55f1-8daa-cc0f4783dd4e"])
    name: str = Field(examples=["Margherita"])
    description: str = Field(examples=["Tomate, mozzarella fior di latte, basilic."])
    price_cents: int = Field(examples=[1090])
    currency: str | None = Field(examples=["EUR"])
    active: bool = Field(examples=[False])
    reactivate_at: dt.datetime | None = Field(
        description="When it comes back by itself.", examples=["2026-03-15T10:00:00Z"]
    )
    deactivation_reason: str | None = Field(examples=["rupture de stock"])
    updated_at: dt.datetime | None = Field(examples=["2026-03-15T14:02:11Z"])

    @classmethod
    def from_proto(cls, product: pb.Product) -> Product:
        return cls(
            id=uuid.UUID(product.id),
            name=product.name,
            description=product.description,
            price_cents=product.price_cents,
            currency=_none(product.currency),
            active=product.active,
            reactivate_at=_time(product, "reactivate_time"),
            deactivation_reason=_none(product.deactivation_reason),
            updated_at=_time(product, "update_time"),
        )


class ProductPage(BaseModel):
    items: list[Product]
    next_page_token: str | None = Field(examples=["eyJsIjoicGFnZSIsImsiOlsiMjAyNi0wMy0xNCJdfQ"])


class ProductBody(_Request):
    name: str = Field(max_length=200, examples=["Margherita"])
    description: str = Field(
        default="", max_length=TEXT_CAP, examples=["Tomate, mozzarella fior di latte, basilic."]
    )
    price_cents: int = Field(ge=0, le=2**63 - 1, examples=[1090])


class PriceBody(_Request):
    price_cents: int = Field(
        examples=[1190], description="Minor units of the store's currency.", ge=I64_MIN, le=I64_MAX
    )


class DeactivateBody(_Request):
    reactivate_at: dt.datetime | None = Field(
        default=None,
        description="Bring it back by itself at this time (within 90 days).",
        examples=["2026-03-15T11:00:00+01:00"],
    )
    reason: str | None = Field(default=None, max_length=200, examples=["rupture de stock"])


class ContentChangeBody(_Request):
    product_id: uuid.UUID | None = Field(
        default=None,
        description="Empty: a new product.",
        examples=["5f4e3d2c-1b0a-4f9e-8d7c-6b5a4f3e2d1c"],
    )
    proposed_name: str | None = Field(
        default=None, max_length=200, examples=["Pizza Quatre Fromages"]
    )
    proposed_description: str | None = Field(
        default=None,
        max_length=TEXT_CAP,
        examples=["Mozzarella, gorgonzola, chèvre et comté sur base crème."],
    )
    proposed_price_cents: int | None = Field(
        default=None, description="New products only.", ge=I64_MIN, le=I64_MAX, examples=[1290]
    )
    note: str | None = Field(
        default=None, max_length=NOTE_CAP, examples=["Le chèvre remplace l'emmental."]
    )
    reply_to_email: str | None = Field(
        default=None, max_length=320, examples=["carte@pizzeria-napoli.fr"]
    )


class ContentChange(BaseModel):
    id: uuid.UUID = Field(examples=["d32398af-1523-5c4c-ac07-35a87c62e9f4"])
    product_id: uuid.UUID | None = Field(examples=["291d4f2e-f105-5aa7-b3f3-d9a6d4730202"])
    proposed_name: str | None = Field(examples=["Pizza Quatre Fromages"])
    proposed_description: str | None = Field(
        examples=["Mozzarella, gorgonzola, chèvre et comté sur base crème."]
    )
    proposed_price_cents: int | None = Field(examples=[1290])
    note: str | None = Field(examples=["Le chèvre remplace l'emmental."])
    status: ContentChangeStatus | None
    ticket_status: SupportMessageStatus | None
    ticket_id: str | None = Field(examples=["9f1d790a-2c37-561c-837b-58a5c16823bb"])
    decision_note: str | None = Field(examples=[None])
    created_at: dt.datetime | None = Field(examples=["2026-03-14T09:26:53Z"])
    decided_at: dt.datetime | None = Field(examples=[None])

    @classmethod
    def from_proto(cls, change: pb.ContentChange) -> ContentChange:
        return cls(
            id=uuid.UUID(change.id),
            product_id=uuid.UUID(change.product_id) if change.product_id else None,
            proposed_name=_none(change.proposed_name),
            proposed_description=_none(change.proposed_description),
            proposed_price_cents=change.proposed_price_cents or None,
            note=_none(change.note),
            status=ContentChangeStatus.from_proto(change.status),
            ticket_status=SupportMessageStatus.from_proto(change.ticket_status),
            ticket_id=_none(change.ticket_id),
            decision_note=_none(change.decision_note),
            created_at=_time(change, "create_time"),
            decided_at=_time(change, "decide_time"),
        )


class ContentChangePage(BaseModel):
    items: list[ContentChange]
    next_page_token: str | None = Field(examples=["eyJsIjoicGFnZSIsImsiOlsiMjAyNi0wMy0xNCJdfQ"])


class ContentDecision(BaseModel):
    content_change: ContentChange
    product: Product | None


class NoteBody(_Request):
    note: str | None = Field(
        default=None, max_length=NOTE_CAP, examples=["Client prévenu par téléphone à 19 h 40."]
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
    ticket_id: str | None
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
    customer_accepted: bool = Field(examples=[True])
    replacement_product_id: uuid.UUID | None = Field(
        default=None,
        description="Required when the customer accepted the alternative.",
        examples=["5f4e3d2c-1b0a-4f9e-8d7c-6b5a4f3e2d1c"],
    )
    replacement_quantity: int | None = Field(
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
    reason: str = Field(max_length=200, examples=["Pizza livrée froide"])
    funded_by: RefundFunder = Field(examples=["partner"])


# --- check-ins ---------------------------------------------------------------------------------


class CheckIn(BaseModel):
    day: dt.date = Field(examples=["2026-03-14"])
    at: dt.datetime | None = Field(examples=["2026-03-14T10:02:00Z"])
    user_id: str = Field(examples=["6f1c2a4e-8b3d-4c5e-9f70-1a2b3c4d5e6f"])

    @classmethod
    def from_proto(cls, row: pb.CheckIn) -> CheckIn:
        return cls(day=dt.date.fromisoformat(row.day), at=_time(row, "time"), user_id=row.user_id)


class CheckInPage(BaseModel):
    items: list[CheckIn]
    next_page_token: str | None = Field(examples=["eyJsIjoicGFnZSIsImsiOlsiMjAyNi0wMy0xNCJdfQ"])


class MissingCheckIn(BaseModel):
    store: Store
    day: dt.date
    last_check_in_at: dt.datetime | None

    @classmethod
    def from_proto(cls, row: pb.StoreCheckInStatus) -> MissingCheckIn:
        return cls(
            store=Store.from_proto(row.store),
            day=dt.date.fromisoformat(row.day),
            last_check_in_at=_time(row, "last_check_in_time"),
        )


class MissingCheckInPage(BaseModel):
    items: list[MissingCheckIn]
    next_page_token: str | None = Field(examples=["eyJsIjoicGFnZSIsImsiOlsiMjAyNi0wMy0xNCJdfQ"])


# --- promotions --------------------------------------------------------------------------------


class Promotion(BaseModel):
    id: uuid.UUID = Field(examples=["175ffe0d-510f-5602-803a-159dc176dbb6"])
    name: str = Field(examples=["-20 % sur les pizzas"])
    kind: PromotionKind | None
    status: PromotionStatus | None
    percent_off: int | None = Field(examples=[20])
    amount_off_cents: int | None = Field(examples=[None])
    min_order_cents: int = Field(examples=[2500])
    product_ids: list[uuid.UUID] = Field(description="Empty: the whole menu.")
    starts_at: dt.datetime | None = Field(examples=["2026-03-31T22:00:00Z"])
    ends_at: dt.datetime | None = Field(examples=["2026-04-30T21:59:00Z"])
    created_at: dt.datetime | None = Field(examples=["2026-03-14T09:26:53Z"])
    activated_at: dt.datetime | None = Field(examples=["2026-03-20T08:00:00Z"])

    @classmethod
    def from_proto(cls, promotion: pb.Promotion) -> Promotion:
        return cls(
            id=uuid.UUID(promotion.id),
            name=promotion.name,
            kind=PromotionKind.from_proto(promotion.kind),
            status=PromotionStatus.from_proto(promotion.status),
            percent_off=promotion.percent_off or None,
            amount_off_cents=promotion.amount_off_cents or None,
            min_order_cents=promotion.min_order_cents,
            product_ids=[uuid.UUID(p) for p in promotion.product_ids],
            starts_at=_time(promotion, "start_time"),
            ends_at=_time(promotion, "end_time"),
            created_at=_time(promotion, "create_time"),
            activated_at=_time(promotion, "activate_time"),
        )


class PromotionPage(BaseModel):
    items: list[Promotion]
    next_page_token: str | None = Field(examples=["eyJsIjoicGFnZSIsImsiOlsiMjAyNi0wMy0xNCJdfQ"])


class PromotionBody(_Request):
    """Step 1: a draft."""

    name: str = Field(max_length=120, examples=["-20 % sur les pizzas"])
    kind: PromotionKind = Field(examples=["percent_off"])


class PromotionConfigBody(_Request):
    """Step 2: the discount, the products and the period."""

    percent_off: int | None = Field(
        default=None, description="percent_off: 1 to 90.", ge=I32_MIN, le=I32_MAX, examples=[20]
    )
    amount_off_cents: int | None = Field(
        default=None, description="amount_off only.", ge=I64_MIN, le=I64_MAX, examples=[None]
    )
    min_order_cents: int | None = Field(default=None, ge=I64_MIN, le=I64_MAX, examples=[2500])
    product_ids: list[uuid.UUID] = Field(
        default_factory=list, max_length=200, examples=[["5f4e3d2c-1b0a-4f9e-8d7c-6b5a4f3e2d1c"]]
    )
    starts_at: dt.datetime = Field(examples=["2026-04-01T00:00:00+02:00"])
    ends_at: dt.datetime = Field(examples=["2026-04-30T23:59:00+02:00"])


class ProblemBody(_Request):
    description: str = Field(
        max_length=TEXT_CAP,
        examples=["La remise de 20 % ne s'applique pas aux pizzas ajoutées au panier."],
    )
    reply_to_email: str | None = Field(
        default=None, max_length=320, examples=["gerant@pizzeria-napoli.fr"]
    )


# --- messages to support -----------------------------------------------------------------------


class SupportMessage(BaseModel):
    id: uuid.UUID = Field(examples=["5aac17c6-d6fe-55f4-a076-2bc358e94193"])
    category: SupportCategory | None
    subject: str = Field(examples=["Commande non payée"])
    body: str = Field(
        examples=["La commande PORT-000123 livrée le 12 n'apparaît pas sur le relevé."]
    )
    reply_to_email: str = Field(examples=["compta@pizzeria-napoli.fr"])
    order_code: str | None = Field(examples=["PORT-000123"])
    period: str | None = Field(examples=[None])
    status: SupportMessageStatus | None
    ticket_id: str | None = Field(
        description="The support ticket, once opened.",
        examples=["9f1d790a-2c37-561c-837b-58a5c16823bb"],
    )
    created_at: dt.datetime | None = Field(examples=["2026-03-14T09:26:53Z"])

    @classmethod
    def from_proto(cls, message: pb.SupportMessage) -> SupportMessage:
        return cls(
            id=uuid.UUID(message.id),
            category=SupportCategory.from_proto(message.category),
            subject=message.subject,
            body=message.body,
            reply_to_email=message.reply_to_email,
            order_code=_none(message.order_code),
            period=_none(message.period),
            status=SupportMessageStatus.from_proto(message.status),
            ticket_id=_none(message.ticket_id),
            created_at=_time(message, "create_time"),
        )


class SupportMessagePage(BaseModel):
    items: list[SupportMessage]
    next_page_token: str | None = Field(examples=["eyJsIjoicGFnZSIsImsiOlsiMjAyNi0wMy0xNCJdfQ"])


class SupportMessageBody(_Request):
    category: MessageCategory = Field(examples=["invoices_and_orders"])
    subject: str = Field(max_length=200, examples=["Commande non payée"])
    body: str = Field(
        max_length=TEXT_CAP,
        examples=["La commande PORT-000123 livrée le 12 n'apparaît pas sur le relevé."],
    )
    order_code: str | None = Field(default=None, max_length=40, examples=["PORT-000123"])
    period: str | None = Field(default=None, max_length=7, examples=["2026-10"])
    reply_to_email: str | None = Field(
        default=None, max_length=320, examples=["compta@pizzeria-napoli.fr"]
    )


# --- bank details ------------------------------------------------------------------------------


class ProofDocument(BaseModel):
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    uploaded_at: dt.datetime | None

    @classmethod
    def from_proto(cls, document: pb.ProofDocument) -> ProofDocument:
        return cls(
            filename=document.filename,
            content_type=document.content_type,
            size_bytes=document.size_bytes,
            sha256=document.sha256,
            uploaded_at=_time(document, "upload_time"),
        )


class BankDetailChange(BaseModel):
    id: uuid.UUID = Field(examples=["8d31a534-6bee-5f37-b206-57aa0594359d"])
    store_id: uuid.UUID = Field(examples=["60287f46-8ee9-5d68-b0a5-1fdbbac603ee"])
    iban: str | None = Field(description="In full for operators only.", examples=[None])
    iban_masked: str = Field(examples=["FR76 •••• •••• •••• •••• •••• 189"])
    bic: str = Field(examples=["AGRIFRPP"])
    account_holder: str = Field(examples=["SARL Pizzeria Napoli"])
    status: BankDetailChangeStatus | None
    proof: ProofDocument | None
    decision_reason: str | None = Field(examples=[None])
    created_at: dt.datetime | None = Field(examples=["2026-03-14T09:26:53Z"])
    decided_at: dt.datetime | None = Field(examples=["2026-03-16T10:15:00Z"])

    @classmethod
    def from_proto(cls, change: pb.BankDetailChange) -> BankDetailChange:
        return cls(
            id=uuid.UUID(change.id),
            store_id=uuid.UUID(change.store_id),
            iban=_none(change.iban),
            iban_masked=change.iban_masked,
            bic=change.bic,
            account_holder=change.account_holder,
            status=BankDetailChangeStatus.from_proto(change.status),
            proof=ProofDocument.from_proto(change.proof) if change.HasField("proof") else None,
            decision_reason=_none(change.decision_reason),
            created_at=_time(change, "create_time"),
            decided_at=_time(change, "decide_time"),
        )


class BankDetailChangePage(BaseModel):
    items: list[BankDetailChange]
    next_page_token: str | None = Field(examples=["eyJsIjoicGFnZSIsImsiOlsiMjAyNi0wMy0xNCJdfQ"])


class BankDetailBody(_Request):
    iban: str = Field(max_length=64, examples=["FR76 3000 6000 0112 3456 7890 189"])
    bic: str = Field(max_length=16, examples=["AGRIFRPP"])
    account_holder: str = Field(max_length=200, examples=["SARL Pizzeria Napoli"])


class RejectBody(_Request):
    reason: str = Field(
        max_length=NOTE_CAP, examples=["Le RIB joint n'est pas au nom de la société."]
    )
