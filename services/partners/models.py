"""Partners' tables: stores, menu, orders and their events, payments, escalations, couriers,
check-ins, promotions, messages to support, content and bank-detail changes with their proofs.

Timestamps are set by the domain from its clock (not by the database), so that a row written and
the answer built from it agree, and tests can reason about time. Rules that must hold under
concurrency are constraints here: one check-in per store and day, one refund per order, one open
bank-detail change per store, one escalation per order.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.kit.db import new_metadata
from services.kit.outbox import outbox_table


class Base(DeclarativeBase):
    metadata = new_metadata()


class OrderStatus(StrEnum):
    ACCEPTED = "accepted"
    COLLECTED = "collected"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


HISTORY_STATUSES = (
    OrderStatus.COLLECTED,
    OrderStatus.DELIVERED,
    OrderStatus.CANCELLED,
    OrderStatus.REFUNDED,
)


class RefundFunder(StrEnum):
    PLATFORM = "platform"
    PARTNER = "partner"


class ItemStatus(StrEnum):
    ACTIVE = "active"
    OUT_OF_STOCK = "out_of_stock"
    REPLACED = "replaced"


class PaymentKind(StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"


class EscalationStatus(StrEnum):
    AWAITING_ANSWER = "awaiting_answer"
    ACCEPTED = "accepted"
    ITEM_REPLACED = "item_replaced"
    ESCALATED = "escalated"
    CANCELLED = "cancelled"


class EscalationAnswer(StrEnum):
    ACCEPTED = "accepted"
    REFUSED = "refused"
    NONE = "none"


class CourierReportReason(StrEnum):
    LATE = "late"
    BEHAVIOUR = "behaviour"
    DAMAGED_ORDER = "damaged_order"
    OTHER = "other"


class PromotionKind(StrEnum):
    PERCENT_OFF = "percent_off"
    AMOUNT_OFF = "amount_off"
    FREE_DELIVERY = "free_delivery"


class PromotionStatus(StrEnum):
    DRAFT = "draft"
    CONFIGURED = "configured"
    ACTIVE = "active"


class SupportCategory(StrEnum):
    CONTENT_CHANGES = "content_changes"
    BANK_DETAILS = "bank_details"
    INVOICES_AND_ORDERS = "invoices_and_orders"
    OTHER = "other"


class MessageStatus(StrEnum):
    PENDING_TICKET = "pending_ticket"
    TICKET_OPENED = "ticket_opened"


class ContentChangeStatus(StrEnum):
    PENDING = "pending"
    APPLIED = "applied"
    REJECTED = "rejected"


class BankChangeStatus(StrEnum):
    AWAITING_PROOF = "awaiting_proof"
    PROOF_SUBMITTED = "proof_submitted"
    APPROVED = "approved"
    REJECTED = "rejected"


def _one_of(column: str, values: type[StrEnum]) -> str:
    listed = ", ".join(f"'{member.value}'" for member in values)
    return f"{column} IN ({listed})"


TZ = DateTime(timezone=True)


class Store(Base):
    """A delivery partner's back office; `id` is its identity organisation's id."""

    __tablename__ = "stores"
    __table_args__ = (Index("ix_stores_name_id", "name", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    operations_email: Mapped[str] = mapped_column(String(320))
    phone: Mapped[str] = mapped_column(String(32), default="")
    timezone: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    # The bank details in force: written only by an approved change.
    iban: Mapped[str | None] = mapped_column(String(34))
    bic: Mapped[str | None] = mapped_column(String(11))
    account_holder: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(TZ)
    updated_at: Mapped[datetime] = mapped_column(TZ)


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("price_cents >= 0", name="price"),
        Index("ix_products_store_name", "store_id", "name", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stores.id"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    price_cents: Mapped[int] = mapped_column(BigInteger)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    reactivate_at: Mapped[datetime | None] = mapped_column(TZ)
    deactivation_reason: Mapped[str | None] = mapped_column(String(200))
    # Bumped by every deactivation: a reactivation timer only acts on its own deactivation.
    deactivation_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(TZ)
    updated_at: Mapped[datetime] = mapped_column(TZ)


class Order(Base):
    """One order of one store. The two indexes serve the partner's lists by keyset: in progress
    and history by status, and the whole history (a partial index without the accepted ones)."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("store_id", "code"),
        CheckConstraint(_one_of("status", OrderStatus), name="status"),
        CheckConstraint(
            f"refund_funded_by IS NULL OR {_one_of('refund_funded_by', RefundFunder)}",
            name="refund_funded_by",
        ),
        CheckConstraint("total_cents >= 0 AND paid_cents >= 0", name="amounts"),
        Index("ix_orders_store_status_created", "store_id", "status", "created_at", "id"),
        Index(
            "ix_orders_store_history",
            "store_id",
            "created_at",
            "id",
            postgresql_where=text("status <> 'accepted'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stores.id"))
    code: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16))
    customer_name: Mapped[str] = mapped_column(String(200), default="")
    customer_phone: Mapped[str] = mapped_column(String(32), default="")
    courier_name: Mapped[str] = mapped_column(String(200), default="")
    courier_phone: Mapped[str] = mapped_column(String(32), default="")
    currency: Mapped[str] = mapped_column(String(3))
    total_cents: Mapped[int] = mapped_column(BigInteger)
    # What the customer paid (payments, before refunds): "was a payment made" is paid_cents > 0.
    paid_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    cancellation_reason: Mapped[str | None] = mapped_column(String(200))
    refund_reason: Mapped[str | None] = mapped_column(String(200))
    refund_funded_by: Mapped[str | None] = mapped_column(String(16))
    # Kept in step with the escalation row, so that the lists show it without a join.
    escalation_status: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(TZ)
    closed_at: Mapped[datetime | None] = mapped_column(TZ)
    updated_at: Mapped[datetime] = mapped_column(TZ)


class OrderItem(Base):
    __tablename__ = "order_items"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity"),
        CheckConstraint(_one_of("status", ItemStatus), name="status"),
        Index("ix_order_items_order", "order_id", "position"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    product_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("products.id"))
    name: Mapped[str] = mapped_column(String(200))
    unit_price_cents: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    replaces_item_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class OrderEvent(Base):
    """Every step in the life of an order, escalation steps included; append-only."""

    __tablename__ = "order_events"
    __table_args__ = (Index("ix_order_events_order", "order_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(TZ)
    kind: Mapped[str] = mapped_column(String(64))
    # "user:<id>" or "service:<client id>".
    actor: Mapped[str] = mapped_column(String(100))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint(_one_of("kind", PaymentKind), name="kind"),
        CheckConstraint("amount_cents > 0", name="amount"),
        CheckConstraint(
            f"funded_by IS NULL OR {_one_of('funded_by', RefundFunder)}", name="funded_by"
        ),
        Index("ix_payments_order", "order_id", "created_at"),
        # An order is refunded once, in full: two concurrent refunds cannot both be written.
        Index(
            "uq_payments_one_refund",
            "order_id",
            unique=True,
            postgresql_where=text("kind = 'refund'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(String(200))
    funded_by: Mapped[str | None] = mapped_column(String(16))
    reference: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(TZ)


class Escalation(Base):
    """The out-of-stock escalation of an order (workflow `order-escalation/<order_id>`)."""

    __tablename__ = "escalations"
    __table_args__ = (
        CheckConstraint(_one_of("status", EscalationStatus), name="status"),
        CheckConstraint(f"answer IS NULL OR {_one_of('answer', EscalationAnswer)}", name="answer"),
        Index("ix_escalations_status_created", "status", "created_at", "order_id"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True
    )
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stores.id"))
    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("order_items.id"))
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id"))
    status: Mapped[str] = mapped_column(String(16))
    answer: Mapped[str | None] = mapped_column(String(16))
    answer_deadline: Mapped[datetime] = mapped_column(TZ)
    support_deadline: Mapped[datetime | None] = mapped_column(TZ)
    replacement_product_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("products.id"))
    replacement_quantity: Mapped[int | None] = mapped_column(Integer)
    support_message_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # "support" or "deadline".
    cancelled_by: Mapped[str | None] = mapped_column(String(16))
    refunded: Mapped[bool] = mapped_column(Boolean, default=False)
    # When the workflow closed the escalation's support ticket with the outcome.
    ticket_closed_at: Mapped[datetime | None] = mapped_column(TZ)
    created_at: Mapped[datetime] = mapped_column(TZ)
    updated_at: Mapped[datetime] = mapped_column(TZ)


class CourierReport(Base):
    __tablename__ = "courier_reports"
    __table_args__ = (CheckConstraint(_one_of("reason", CourierReportReason), name="reason"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    # One report per order.
    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), unique=True
    )
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stores.id"))
    reason: Mapped[str] = mapped_column(String(24))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(TZ)


class CheckIn(Base):
    """The daily check-in; the unique (store, day) makes a double check-in lose in the database."""

    __tablename__ = "check_ins"
    __table_args__ = (UniqueConstraint("store_id", "day"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stores.id"))
    day: Mapped[date] = mapped_column(Date)
    checked_in_at: Mapped[datetime] = mapped_column(TZ)
    user_id: Mapped[str] = mapped_column(String(64))


class Promotion(Base):
    __tablename__ = "promotions"
    __table_args__ = (
        CheckConstraint(_one_of("kind", PromotionKind), name="kind"),
        CheckConstraint(_one_of("status", PromotionStatus), name="status"),
        Index("ix_promotions_store_created", "store_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stores.id"))
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    percent_off: Mapped[int | None] = mapped_column(Integer)
    amount_off_cents: Mapped[int | None] = mapped_column(BigInteger)
    min_order_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    product_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid), default=list)
    starts_at: Mapped[datetime | None] = mapped_column(TZ)
    ends_at: Mapped[datetime | None] = mapped_column(TZ)
    created_at: Mapped[datetime] = mapped_column(TZ)
    updated_at: Mapped[datetime] = mapped_column(TZ)
    activated_at: Mapped[datetime | None] = mapped_column(TZ)


class SupportMessage(Base):
    """A message to support; the ticket is opened in the support service (see docs)."""

    __tablename__ = "support_messages"
    __table_args__ = (
        CheckConstraint(_one_of("category", SupportCategory), name="category"),
        CheckConstraint(_one_of("status", MessageStatus), name="status"),
        Index("ix_support_messages_store_created", "store_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stores.id"))
    category: Mapped[str] = mapped_column(String(24))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    reply_to_email: Mapped[str] = mapped_column(String(320))
    order_code: Mapped[str | None] = mapped_column(String(40))
    period: Mapped[str | None] = mapped_column(String(7))
    # What it is about: content_change, promotion, escalation, or "" for a free message.
    subject_kind: Mapped[str] = mapped_column(String(24), default="")
    subject_id: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16))
    ticket_id: Mapped[str | None] = mapped_column(String(64))
    # The ticket's number in support (#1042), as people quote it.
    ticket_number: Mapped[int | None] = mapped_column(BigInteger)
    # An escalation's support deadline: the ticket's SLA (every target due then).
    respond_by: Mapped[datetime | None] = mapped_column(TZ)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ)
    opened_at: Mapped[datetime | None] = mapped_column(TZ)


class ContentChange(Base):
    __tablename__ = "content_changes"
    __table_args__ = (
        CheckConstraint(_one_of("status", ContentChangeStatus), name="status"),
        Index("ix_content_changes_store_created", "store_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stores.id"))
    product_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("products.id"))
    proposed_name: Mapped[str | None] = mapped_column(String(200))
    proposed_description: Mapped[str | None] = mapped_column(Text)
    proposed_price_cents: Mapped[int | None] = mapped_column(BigInteger)
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16))
    support_message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("support_messages.id"))
    decision_note: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime | None] = mapped_column(TZ)
    created_at: Mapped[datetime] = mapped_column(TZ)


class BankDetailChange(Base):
    __tablename__ = "bank_detail_changes"
    __table_args__ = (
        CheckConstraint(_one_of("status", BankChangeStatus), name="status"),
        Index("ix_bank_detail_changes_store_created", "store_id", "created_at", "id"),
        Index("ix_bank_detail_changes_status_created", "status", "created_at", "id"),
        # One open change per store: a second request waits until the first is decided.
        Index(
            "uq_bank_detail_changes_one_open",
            "store_id",
            unique=True,
            postgresql_where=text("status IN ('awaiting_proof', 'proof_submitted')"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stores.id"))
    iban: Mapped[str] = mapped_column(String(34))
    bic: Mapped[str] = mapped_column(String(11))
    account_holder: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    requested_by: Mapped[str] = mapped_column(String(100))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime | None] = mapped_column(TZ)
    created_at: Mapped[datetime] = mapped_column(TZ)
    updated_at: Mapped[datetime] = mapped_column(TZ)


class ProofDocument(Base):
    """The bank's proof for one change (a new upload replaces it); the bytes live here, apart
    from the change so that listing changes never reads documents."""

    __tablename__ = "proof_documents"

    change_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("bank_detail_changes.id", ondelete="CASCADE"), primary_key=True
    )
    store_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("stores.id"))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_by: Mapped[str] = mapped_column(String(100))
    uploaded_at: Mapped[datetime] = mapped_column(TZ)


outbox = outbox_table(Base.metadata)
