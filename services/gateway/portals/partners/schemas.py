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

from services.gateway.fields import LINES_NOT_BLANK, Email, text

TEXT_CAP = 5_000
NOTE_CAP = 2_000
# Integers must fit the proto fields they travel in (what they mean is partners' rule).
I32_MIN, I32_MAX = -(2**31), 2**31 - 1
I64_MIN, I64_MAX = -(2**63), 2**63 - 1
# partners' own limits (services/partners/domain/common.py; tests/gateway/test_limits.py).
MAX_PRICE_CENTS = 100_000_000
PHONE_PATTERN = r"^\s*\+?[0-9 ().-]{6,32}\s*$"
# As partners reads them: spaces anywhere, any case (it removes the first, upper-cases the rest).
IBAN_PATTERN = r"^\s*[A-Za-z]\s*[A-Za-z](\s*[0-9]){2}(\s*[A-Za-z0-9]){11,30}\s*$"
BIC_PATTERN = r"^\s*([A-Za-z]\s*){6}([A-Za-z0-9]\s*){2}(([A-Za-z0-9]\s*){3})?$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"
ORDER_CODE_PATTERN = r"^\s*[A-Za-z0-9][A-Za-z0-9_-]{0,39}\s*$"
PERIOD_PATTERN = r"^\s*\d{4}-(0[1-9]|1[0-2])\s*$"

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
    operations_email: Email = Field(examples=["operations@napoli.example"])
    phone: str | None = Field(
        default=None, max_length=40, pattern=PHONE_PATTERN, examples=["+33 4 91 12 34 56"]
    )
    timezone: str | None = Field(
        default=None,
        max_length=64,
        examples=["Europe/Paris"],
        description="An IANA time zone (422 `time_zone` when it names none).",
    )
    currency: str | None = Field(default=None, pattern=CURRENCY_PATTERN, examples=["EUR"])


class StoreSettingsBody(_Request):
    operations_email: Email = Field(examples=["operations@napoli.example"])
    phone: str | None = Field(
        default=None, max_length=40, pattern=PHONE_PATTERN, examples=["+33 4 91 00 00 00"]
    )
    timezone: str | None = Field(
        default=None,
        max_length=64,
        description="The store's IANA time zone (its check-in day); absent: unchanged.",
        examples=["Europe/Paris"],
    )


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
    subject: str = text(200, "Commande non payée")
    body: str = text(
        TEXT_CAP,
        "La commande PORT-000123 livrée le 12 n'apparaît pas sur le relevé.",
        pattern=LINES_NOT_BLANK,
    )
    order_code: str | None = Field(
        default=None,
        max_length=42,
        pattern=ORDER_CODE_PATTERN,
        examples=["PORT-000123"],
        description="One of the store's orders; invoices_and_orders needs it or a period "
        "(422 otherwise).",
    )
    period: str | None = Field(
        default=None,
        max_length=9,
        pattern=PERIOD_PATTERN,
        examples=["2026-10"],
        description="A month, YYYY-MM, not in the future (422 `in_the_future`).",
    )
    reply_to_email: Email | None = Field(default=None, examples=["compta@pizzeria-napoli.fr"])


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
    iban: str = Field(
        max_length=64,
        pattern=IBAN_PATTERN,
        examples=["FR76 3000 6000 0112 3456 7890 189"],
        description="Spaces and case as you like; its check digits must hold (422 "
        "`iban_checksum` otherwise).",
    )
    bic: str = Field(max_length=16, pattern=BIC_PATTERN, examples=["AGRIFRPP"])
    account_holder: str = text(200, "SARL Pizzeria Napoli")


class RejectBody(_Request):
    reason: str = text(
        NOTE_CAP, "Le RIB joint n'est pas au nom de la société.", pattern=LINES_NOT_BLANK
    )
