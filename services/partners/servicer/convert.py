"""Domain values to proto messages and back: the enum tables, timestamps, resources.

The underscore helpers (`_name_of`, `_ts`, `_time`, `_micros`, `_page`) are the servicer
package's own, imported by its RPC modules and by nothing outside `services.partners.servicer`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from guichet.common.v1 import common_pb2
from guichet.partners.v1 import partners_pb2 as pb
from sqlalchemy import Row

from services.partners.domain import bank_details, escalations, orders, promotions
from services.partners.models import (
    BankDetailChange,
    CheckIn,
    ContentChange,
    CourierReport,
    Escalation,
    Order,
    OrderEvent,
    OrderItem,
    Payment,
    Product,
    Promotion,
    ProofDocument,
    Store,
    SupportMessage,
)

ORDER_STATUS: dict[str, pb.OrderStatus.ValueType] = {
    "accepted": pb.ORDER_STATUS_ACCEPTED,
    "collected": pb.ORDER_STATUS_COLLECTED,
    "delivered": pb.ORDER_STATUS_DELIVERED,
    "cancelled": pb.ORDER_STATUS_CANCELLED,
    "refunded": pb.ORDER_STATUS_REFUNDED,
}
FUNDER: dict[str, pb.RefundFunder.ValueType] = {
    "platform": pb.REFUND_FUNDER_PLATFORM,
    "partner": pb.REFUND_FUNDER_PARTNER,
}
ITEM_STATUS: dict[str, pb.OrderItemStatus.ValueType] = {
    "active": pb.ORDER_ITEM_STATUS_ACTIVE,
    "out_of_stock": pb.ORDER_ITEM_STATUS_OUT_OF_STOCK,
    "replaced": pb.ORDER_ITEM_STATUS_REPLACED,
}
PAYMENT_KIND: dict[str, pb.PaymentKind.ValueType] = {
    "payment": pb.PAYMENT_KIND_PAYMENT,
    "refund": pb.PAYMENT_KIND_REFUND,
}
ESCALATION_STATUS: dict[str, pb.EscalationStatus.ValueType] = {
    "awaiting_answer": pb.ESCALATION_STATUS_AWAITING_ANSWER,
    "accepted": pb.ESCALATION_STATUS_ACCEPTED,
    "item_replaced": pb.ESCALATION_STATUS_ITEM_REPLACED,
    "escalated": pb.ESCALATION_STATUS_ESCALATED,
    "cancelled": pb.ESCALATION_STATUS_CANCELLED,
}
ESCALATION_ANSWER: dict[str, pb.EscalationAnswer.ValueType] = {
    "accepted": pb.ESCALATION_ANSWER_ACCEPTED,
    "refused": pb.ESCALATION_ANSWER_REFUSED,
    "none": pb.ESCALATION_ANSWER_NONE,
}
COURIER_REASON: dict[str, pb.CourierReportReason.ValueType] = {
    "late": pb.COURIER_REPORT_REASON_LATE,
    "behaviour": pb.COURIER_REPORT_REASON_BEHAVIOUR,
    "damaged_order": pb.COURIER_REPORT_REASON_DAMAGED_ORDER,
    "other": pb.COURIER_REPORT_REASON_OTHER,
}
PROMOTION_KIND: dict[str, pb.PromotionKind.ValueType] = {
    "percent_off": pb.PROMOTION_KIND_PERCENT_OFF,
    "amount_off": pb.PROMOTION_KIND_AMOUNT_OFF,
    "free_delivery": pb.PROMOTION_KIND_FREE_DELIVERY,
}
PROMOTION_STATUS: dict[str, pb.PromotionStatus.ValueType] = {
    "draft": pb.PROMOTION_STATUS_DRAFT,
    "configured": pb.PROMOTION_STATUS_CONFIGURED,
    "active": pb.PROMOTION_STATUS_ACTIVE,
    "ended": pb.PROMOTION_STATUS_ENDED,
}
CATEGORY: dict[str, pb.SupportCategory.ValueType] = {
    "content_changes": pb.SUPPORT_CATEGORY_CONTENT_CHANGES,
    "bank_details": pb.SUPPORT_CATEGORY_BANK_DETAILS,
    "invoices_and_orders": pb.SUPPORT_CATEGORY_INVOICES_AND_ORDERS,
    "other": pb.SUPPORT_CATEGORY_OTHER,
}
MESSAGE_STATUS: dict[str, pb.SupportMessageStatus.ValueType] = {
    "pending_ticket": pb.SUPPORT_MESSAGE_STATUS_PENDING_TICKET,
    "ticket_opened": pb.SUPPORT_MESSAGE_STATUS_TICKET_OPENED,
}
CONTENT_STATUS: dict[str, pb.ContentChangeStatus.ValueType] = {
    "pending": pb.CONTENT_CHANGE_STATUS_PENDING,
    "applied": pb.CONTENT_CHANGE_STATUS_APPLIED,
    "rejected": pb.CONTENT_CHANGE_STATUS_REJECTED,
}
BANK_STATUS: dict[str, pb.BankDetailChangeStatus.ValueType] = {
    "awaiting_proof": pb.BANK_DETAIL_CHANGE_STATUS_AWAITING_PROOF,
    "proof_submitted": pb.BANK_DETAIL_CHANGE_STATUS_PROOF_SUBMITTED,
    "approved": pb.BANK_DETAIL_CHANGE_STATUS_APPROVED,
    "rejected": pb.BANK_DETAIL_CHANGE_STATUS_REJECTED,
}


_NAMES: dict[int, dict[int, str]] = {}


def _name_of(table: dict[str, Any], value: int) -> str:
    """The domain's name for a proto enum value: "" for UNSPECIFIED, a non-name when unknown
    (the domain then refuses it, naming the field)."""
    names = _NAMES.get(id(table))
    if names is None:
        names = _NAMES[id(table)] = {int(proto): name for name, proto in table.items()}
    found = names.get(value)
    if found is not None:
        return found
    return "" if value == 0 else f"#{value}"


def _ts(moment: datetime | None) -> Timestamp | None:
    """An aware datetime as a Timestamp (cheaper than Timestamp.FromDatetime: lists map many)."""
    if moment is None:
        return None
    seconds = math.floor(moment.timestamp())
    return Timestamp(seconds=seconds, nanos=moment.microsecond * 1000)


def _time(message: Any, name: str) -> datetime | None:
    """An optional Timestamp field as an aware datetime (None when unset); exact to the
    microsecond, and cheaper than Timestamp.ToDatetime (bulk imports convert many)."""
    if not message.HasField(name):
        return None
    value: Timestamp = getattr(message, name)
    moment = datetime.fromtimestamp(value.seconds, UTC)
    return moment.replace(microsecond=value.nanos // 1000) if value.nanos else moment


def _micros(message: Any, name: str) -> int | None:
    """An optional Timestamp field as microseconds since the epoch (for bulk imports)."""
    if not message.HasField(name):
        return None
    value: Timestamp = getattr(message, name)
    return int(value.seconds) * 1_000_000 + int(value.nanos) // 1000


def _page(token: str) -> common_pb2.PageResponse:
    return common_pb2.PageResponse(next_page_token=token)


def store_to_proto(store: Store) -> pb.Store:
    return pb.Store(
        id=str(store.id),
        name=store.name,
        operations_email=store.operations_email,
        phone=store.phone or "",
        timezone=store.timezone,
        currency=store.currency,
        iban_masked=bank_details.mask_iban(store.iban),
        bic=store.bic or "",
        account_holder=store.account_holder or "",
        create_time=_ts(store.created_at),
    )


def product_to_proto(product: Product, currency: str = "") -> pb.Product:
    return pb.Product(
        id=str(product.id),
        store_id=str(product.store_id),
        name=product.name,
        description=product.description,
        price_cents=product.price_cents,
        currency=currency,
        active=product.active,
        reactivate_time=_ts(product.reactivate_at),
        deactivation_reason=product.deactivation_reason or "",
        update_time=_ts(product.updated_at),
    )


def order_to_proto(order: Order | Row[Any]) -> pb.Order:
    """One line of the lists, from an ORM order or a row of `ORDER_LIST_COLUMNS`."""
    return pb.Order(
        id=str(order.id),
        store_id=str(order.store_id),
        code=order.code,
        status=ORDER_STATUS[order.status],
        create_time=_ts(order.created_at),
        close_time=_ts(order.closed_at),
        total_cents=order.total_cents,
        currency=order.currency,
        payment_made=order.paid_cents > 0,
        cancellation_reason=order.cancellation_reason or "",
        refund_reason=order.refund_reason or "",
        refund_funded_by=FUNDER.get(order.refund_funded_by or "", pb.REFUND_FUNDER_UNSPECIFIED),
        escalation_status=ESCALATION_STATUS.get(
            order.escalation_status or "", pb.ESCALATION_STATUS_UNSPECIFIED
        ),
    )


def item_to_proto(item: OrderItem) -> pb.OrderItem:
    return pb.OrderItem(
        id=str(item.id),
        product_id=str(item.product_id or ""),
        name=item.name,
        unit_price_cents=item.unit_price_cents,
        quantity=item.quantity,
        status=ITEM_STATUS[item.status],
        replaces_item_id=str(item.replaces_item_id or ""),
    )


def payment_to_proto(payment: Payment) -> pb.Payment:
    return pb.Payment(
        id=str(payment.id),
        kind=PAYMENT_KIND[payment.kind],
        amount_cents=payment.amount_cents,
        time=_ts(payment.created_at),
        reason=payment.reason or "",
        funded_by=FUNDER.get(payment.funded_by or "", pb.REFUND_FUNDER_UNSPECIFIED),
        reference=payment.reference or "",
    )


def event_to_proto(event: OrderEvent) -> pb.OrderEvent:
    return pb.OrderEvent(
        id=event.id,
        time=_ts(event.at),
        kind=event.kind,
        actor=event.actor,
        detail={key: str(value) for key, value in event.detail.items()},
    )


def escalation_to_proto(
    escalation: Escalation,
    *,
    order_code: str = "",
    product_name: str = "",
    ticket_id: str = "",
    ticket_number: int = 0,
) -> pb.Escalation:
    return pb.Escalation(
        order_id=str(escalation.order_id),
        store_id=str(escalation.store_id),
        order_code=order_code,
        status=ESCALATION_STATUS[escalation.status],
        answer=ESCALATION_ANSWER.get(escalation.answer or "", pb.ESCALATION_ANSWER_UNSPECIFIED),
        item_id=str(escalation.item_id),
        product_id=str(escalation.product_id),
        product_name=product_name,
        answer_deadline=_ts(escalation.answer_deadline),
        support_deadline=_ts(escalation.support_deadline),
        replacement_product_id=str(escalation.replacement_product_id or ""),
        replacement_quantity=escalation.replacement_quantity or 0,
        support_message_id=str(escalation.support_message_id or ""),
        ticket_id=ticket_id,
        cancelled_by=escalation.cancelled_by or "",
        refunded=escalation.refunded,
        create_time=_ts(escalation.created_at),
        ticket_number=ticket_number,
        ticket_close_time=_ts(escalation.ticket_closed_at) if escalation.ticket_closed_at else None,
    )


def escalation_view_to_proto(view: escalations.EscalationView) -> pb.Escalation:
    return escalation_to_proto(
        view.escalation,
        order_code=view.order_code,
        product_name=view.product_name,
        ticket_id=view.ticket_id,
        ticket_number=view.ticket_number,
    )


def courier_report_to_proto(report: CourierReport) -> pb.CourierReport:
    return pb.CourierReport(
        id=str(report.id),
        order_id=str(report.order_id),
        reason=COURIER_REASON[report.reason],
        comment=report.comment,
        create_time=_ts(report.created_at),
    )


def order_detail_to_proto(view: orders.OrderView) -> pb.OrderDetail:
    order = view.order
    escalation = None
    if view.escalation is not None:
        escalation = escalation_to_proto(
            view.escalation,
            order_code=order.code,
            product_name=view.product_names.get(view.escalation.product_id, ""),
            ticket_id=(view.support_message.ticket_id or "") if view.support_message else "",
            ticket_number=(view.support_message.ticket_number or 0) if view.support_message else 0,
        )
    return pb.OrderDetail(
        order=order_to_proto(order),
        customer_name=order.customer_name,
        customer_phone=order.customer_phone,
        courier_name=order.courier_name,
        courier_phone=order.courier_phone,
        items=[item_to_proto(i) for i in view.items],
        payments=[payment_to_proto(p) for p in view.payments],
        events=[event_to_proto(e) for e in view.events],
        escalation=escalation,
        courier_report=(
            courier_report_to_proto(view.courier_report) if view.courier_report else None
        ),
    )


def check_in_to_proto(row: CheckIn) -> pb.CheckIn:
    return pb.CheckIn(
        store_id=str(row.store_id),
        day=row.day.isoformat(),
        time=_ts(row.checked_in_at),
        user_id=row.user_id,
    )


def promotion_to_proto(promotion: Promotion, now: datetime) -> pb.Promotion:
    return pb.Promotion(
        id=str(promotion.id),
        store_id=str(promotion.store_id),
        name=promotion.name,
        kind=PROMOTION_KIND[promotion.kind],
        status=PROMOTION_STATUS[promotions.promotion_status(promotion, now)],
        percent_off=promotion.percent_off or 0,
        amount_off_cents=promotion.amount_off_cents or 0,
        min_order_cents=promotion.min_order_cents,
        product_ids=[str(p) for p in promotion.product_ids],
        start_time=_ts(promotion.starts_at),
        end_time=_ts(promotion.ends_at),
        create_time=_ts(promotion.created_at),
        activate_time=_ts(promotion.activated_at),
    )


def message_to_proto(message: SupportMessage, store_name: str = "") -> pb.SupportMessage:
    return pb.SupportMessage(
        id=str(message.id),
        store_id=str(message.store_id),
        category=CATEGORY[message.category],
        subject=message.subject,
        body=message.body,
        reply_to_email=message.reply_to_email,
        order_code=message.order_code or "",
        period=message.period or "",
        status=MESSAGE_STATUS[message.status],
        ticket_id=message.ticket_id or "",
        create_time=_ts(message.created_at),
        subject_kind=message.subject_kind,
        subject_id=message.subject_id,
        store_name=store_name,
        last_error=message.last_error or "",
        respond_by=_ts(message.respond_by) if message.respond_by else None,
        ticket_number=message.ticket_number or 0,
    )


def content_change_to_proto(change: ContentChange, message: SupportMessage) -> pb.ContentChange:
    return pb.ContentChange(
        id=str(change.id),
        store_id=str(change.store_id),
        product_id=str(change.product_id or ""),
        proposed_name=change.proposed_name or "",
        proposed_description=change.proposed_description or "",
        proposed_price_cents=change.proposed_price_cents or 0,
        note=change.note,
        status=CONTENT_STATUS[change.status],
        support_message_id=str(change.support_message_id),
        ticket_status=MESSAGE_STATUS[message.status],
        ticket_id=message.ticket_id or "",
        decision_note=change.decision_note or "",
        create_time=_ts(change.created_at),
        decide_time=_ts(change.decided_at),
    )


def proof_to_proto(document: ProofDocument) -> pb.ProofDocument:
    return pb.ProofDocument(
        filename=document.filename,
        content_type=document.content_type,
        size_bytes=document.size_bytes,
        sha256=document.sha256,
        upload_time=_ts(document.uploaded_at),
    )


def bank_change_to_proto(
    view: bank_details.BankChangeView, *, full_iban: bool
) -> pb.BankDetailChange:
    change: BankDetailChange = view.change
    return pb.BankDetailChange(
        id=str(change.id),
        store_id=str(change.store_id),
        iban=change.iban if full_iban else "",
        iban_masked=bank_details.mask_iban(change.iban),
        bic=change.bic,
        account_holder=change.account_holder,
        status=BANK_STATUS[change.status],
        proof=proof_to_proto(view.proof) if view.proof is not None else None,
        decision_reason=change.decision_reason or "",
        create_time=_ts(change.created_at),
        decide_time=_ts(change.decided_at),
    )
