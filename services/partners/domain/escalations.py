"""The out-of-stock escalation: a partner reports an item missing, the customer's answer, the
steps the OrderEscalation workflow calls, support's decision, cancelling the order.

The escalation's outbox row is written in the same transaction as the report; the workflow
drives the deadlines and calls the internal steps here, each idempotent.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Validator,
)
from services.kit.outbox import enqueue
from services.kit.paging import (
    Page,
    keyset_after as _after,
    page_token as encode_page_token,
    parse_page as _parse_page,
)
from services.kit.temporal import ORDER, ORDER_CODE, TENANT
from services.partners.domain.common import (
    MAX_QUANTITY,
    NOTE_MAX,
    _cut,
    _event,
    _require,
    _require_operator,
    _store_by_id,
    _store_for,
    _text,
    _timestamp,
    _uuid,
    actor_label,
    is_internal,
    is_operator,
    require_internal,
)
from services.partners.domain.menu import _deactivate
from services.partners.domain.messages import _new_message
from services.partners.domain.orders import (
    OrderView,
    _end_escalation,
    _order_by_id,
    _order_of,
    _order_view,
    _refund,
)
from services.partners.models import (
    Escalation,
    EscalationAnswer,
    EscalationStatus,
    ItemStatus,
    Order,
    OrderEvent,
    OrderItem,
    OrderStatus,
    Product,
    RefundFunder,
    SupportCategory,
    SupportMessage,
    outbox,
)
from services.partners.settings import PartnersSettings
from workflows.contracts import partners as contract


async def _has_event(session: AsyncSession, order_id: uuid.UUID, kind: str) -> bool:
    found = await session.scalar(
        select(literal(1)).where(OrderEvent.order_id == order_id, OrderEvent.kind == kind).limit(1)
    )
    return found is not None


async def report_out_of_stock(
    *,
    session: AsyncSession,
    settings: PartnersSettings,
    actor: Principal | None,
    now: datetime,
    store_id: str,
    order_id: str,
    item_id: str,
    note: str,
) -> OrderView:
    """A product of an accepted order ran out: record it and start the escalation workflow in
    the same transaction (outbox)."""
    v = Validator()
    clean_note = _text(v, "note", note, NOTE_MAX, required=False, lines=True)
    parsed_item = _uuid(v, "item_id", item_id)
    v.raise_if_any()
    store = await _store_for(session, actor, store_id, manage=True)
    actor = _require(actor)
    order = await _order_of(session, store, order_id, lock=True)
    if order.status != OrderStatus.ACCEPTED:
        raise FailedPrecondition(
            "only an order in progress can be escalated", reason="order_not_in_progress"
        )
    if await session.get(Escalation, order.id) is not None:
        raise FailedPrecondition(
            "this order already had an out-of-stock escalation; contact support",
            reason="escalation_exists",
        )
    item = await session.scalar(
        select(OrderItem).where(OrderItem.id == parsed_item, OrderItem.order_id == order.id)
    )
    if item is None:
        raise InvalidArgument([("item_id", "is not an item of this order")])
    if item.status != ItemStatus.ACTIVE or item.product_id is None:
        raise InvalidArgument([("item_id", "is not an active item of the menu")])
    deadline = now + timedelta(seconds=settings.escalation_answer_timeout_seconds)
    escalation = Escalation(
        order_id=order.id,
        store_id=store.id,
        item_id=item.id,
        product_id=item.product_id,
        status=EscalationStatus.AWAITING_ANSWER.value,
        answer_deadline=deadline,
        refunded=False,
        created_at=now,
        updated_at=now,
    )
    session.add(escalation)
    item.status = ItemStatus.OUT_OF_STOCK.value
    order.escalation_status = EscalationStatus.AWAITING_ANSWER.value
    order.updated_at = now
    _event(
        session,
        order,
        now=now,
        kind="out_of_stock.reported",
        actor=actor_label(actor),
        item_id=item.id,
        product=item.name,
        note=clean_note or None,
    )
    await enqueue(
        session,
        outbox,
        workflow=contract.ESCALATION_WORKFLOW,
        workflow_id=contract.escalation_workflow_id(str(order.id)),
        argument={
            "order_id": str(order.id),
            "store_id": str(store.id),
            "answer_deadline": deadline.isoformat(),
            "support_timeout_seconds": settings.escalation_support_timeout_seconds,
            "order_code": order.code,
        },
        task_queue=settings.temporal_task_queue,
        search_attributes={
            ORDER.name: str(order.id),
            ORDER_CODE.name: order.code,
            TENANT.name: str(store.id),
        },
    )
    return await _order_view(session, order)


async def answer_out_of_stock(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    store_id: str,
    order_id: str,
    customer_accepted: bool,
    replacement_product_id: str,
    replacement_quantity: int,
    note: str,
) -> OrderView:
    """The customer's answer, before the deadline: an accepted alternative, or a refusal.

    Recorded here (the database is the truth); the workflow is woken after the commit and acts on
    what it reads back.
    """
    v = Validator()
    clean_note = _text(v, "note", note, NOTE_MAX, required=False, lines=True)
    parsed_replacement: uuid.UUID | None = None
    if customer_accepted:
        if not replacement_product_id.strip():
            v.add(
                "replacement_product_id",
                "is required when the customer accepted",
                "replacement_required",
            )
        parsed_replacement = _uuid(
            v, "replacement_product_id", replacement_product_id, required=False
        )
        v.check(
            0 <= replacement_quantity <= MAX_QUANTITY,
            "replacement_quantity",
            f"must be between 1 and {MAX_QUANTITY}",
        )
    v.raise_if_any()
    store = await _store_for(session, actor, store_id, manage=True)
    actor = _require(actor)
    order = await _order_of(session, store, order_id, lock=True)
    escalation = await session.get(Escalation, order.id, with_for_update=True)
    if escalation is None:
        raise FailedPrecondition("no product of this order ran out", reason="no_escalation")
    if escalation.status != EscalationStatus.AWAITING_ANSWER or escalation.answer is not None:
        raise FailedPrecondition(
            "the customer's answer is no longer expected on this order",
            reason="not_awaiting_answer",
        )
    if now >= escalation.answer_deadline:
        raise FailedPrecondition(
            "the deadline to answer has passed; support takes it from here",
            reason="answer_deadline_passed",
        )
    label = actor_label(actor)
    if customer_accepted:
        product = await session.scalar(
            select(Product).where(Product.id == parsed_replacement, Product.store_id == store.id)
        )
        if product is None:
            raise InvalidArgument(
                [("replacement_product_id", "is not on this store's menu", "unknown_product")]
            )
        if product.id == escalation.product_id:
            raise InvalidArgument(
                [("replacement_product_id", "is the product that ran out", "same_product")]
            )
        if not product.active:
            raise InvalidArgument(
                [("replacement_product_id", "is not available (deactivated)", "inactive_product")]
            )
        item = await session.get(OrderItem, escalation.item_id)
        assert item is not None
        escalation.answer = EscalationAnswer.ACCEPTED.value
        escalation.replacement_product_id = product.id
        escalation.replacement_quantity = replacement_quantity or item.quantity
        _end_escalation(order, escalation, now=now, status=EscalationStatus.ACCEPTED)
        _event(
            session,
            order,
            now=now,
            kind="alternative.accepted",
            actor=label,
            product=product.name,
            quantity=escalation.replacement_quantity,
            note=clean_note or None,
        )
    else:
        escalation.answer = EscalationAnswer.REFUSED.value
        escalation.updated_at = now
        _event(session, order, now=now, kind="alternative.refused", actor=label, note=clean_note)
    return await _order_view(session, order)


async def _escalation_for_step(
    session: AsyncSession, settings: PartnersSettings, actor: Principal | None, order_id: str
) -> tuple[Principal, Order, Escalation]:
    actor = require_internal(actor, settings)
    order = await _order_by_id(session, order_id)
    escalation = await session.get(Escalation, order.id, with_for_update=True)
    if escalation is None:
        raise NotFound("no escalation on this order")
    return actor, order, escalation


async def deactivate_escalated_product(
    *,
    session: AsyncSession,
    settings: PartnersSettings,
    actor: Principal | None,
    now: datetime,
    order_id: str,
) -> Escalation:
    """Step 1: the product that ran out comes off the menu, and the partner is asked to call
    the customer with an alternative before the deadline. Idempotent."""
    actor, order, escalation = await _escalation_for_step(session, settings, actor, order_id)
    label = actor_label(actor)
    if not await _has_event(session, order.id, "product.deactivated"):
        product = await session.get(Product, escalation.product_id, with_for_update=True)
        assert product is not None
        if product.active:
            _deactivate(product, now=now, reason=f"out of stock (order {order.code})")
        _event(
            session, order, now=now, kind="product.deactivated", actor=label, product=product.name
        )
    if escalation.status == EscalationStatus.AWAITING_ANSWER and not await _has_event(
        session, order.id, "customer_call.requested"
    ):
        _event(
            session,
            order,
            now=now,
            kind="customer_call.requested",
            actor=label,
            deadline=escalation.answer_deadline.isoformat(),
        )
    return escalation


async def settle_out_of_stock_answer(
    *,
    session: AsyncSession,
    settings: PartnersSettings,
    actor: Principal | None,
    now: datetime,
    order_id: str,
) -> Escalation:
    """The answer wait ended (a signal, or the deadline): what the database holds decides.

    Without an answer, the escalation is marked unanswered, and a late answer is refused from
    then on; with one recorded (its signal may have been lost), the workflow follows it.
    """
    actor, order, escalation = await _escalation_for_step(session, settings, actor, order_id)
    if escalation.status == EscalationStatus.AWAITING_ANSWER and escalation.answer is None:
        escalation.answer = EscalationAnswer.NONE.value
        escalation.updated_at = now
        _event(
            session,
            order,
            now=now,
            kind="customer_answer.missing",
            actor=actor_label(actor),
            deadline=escalation.answer_deadline.isoformat(),
        )
    return escalation


async def replace_escalated_item(
    *,
    session: AsyncSession,
    settings: PartnersSettings,
    actor: Principal | None,
    now: datetime,
    order_id: str,
) -> Escalation:
    """Accepted: the alternative replaces the item (the order's total follows). Idempotent."""
    actor, order, escalation = await _escalation_for_step(session, settings, actor, order_id)
    if escalation.status != EscalationStatus.ACCEPTED:
        return escalation
    item = await session.get(OrderItem, escalation.item_id, with_for_update=True)
    product = await session.get(Product, escalation.replacement_product_id)
    assert item is not None and product is not None
    position = await session.scalar(
        select(func.max(OrderItem.position)).where(OrderItem.order_id == order.id)
    )
    item.status = ItemStatus.REPLACED.value
    replacement = OrderItem(
        id=uuid.uuid4(),
        order_id=order.id,
        position=(position or 0) + 1,
        product_id=product.id,
        name=product.name,
        unit_price_cents=product.price_cents,
        quantity=escalation.replacement_quantity or item.quantity,
        status=ItemStatus.ACTIVE.value,
        replaces_item_id=item.id,
    )
    session.add(replacement)
    await session.flush()
    order.total_cents = int(
        await session.scalar(
            select(
                func.coalesce(func.sum(OrderItem.unit_price_cents * OrderItem.quantity), 0)
            ).where(OrderItem.order_id == order.id, OrderItem.status == ItemStatus.ACTIVE.value)
        )
        or 0
    )
    _end_escalation(order, escalation, now=now, status=EscalationStatus.ITEM_REPLACED)
    _event(
        session,
        order,
        now=now,
        kind="item.replaced",
        actor=actor_label(actor),
        replaced=item.name,
        by=product.name,
        quantity=replacement.quantity,
        total_cents=order.total_cents,
    )
    return escalation


async def escalate_to_support(
    *,
    session: AsyncSession,
    settings: PartnersSettings,
    actor: Principal | None,
    now: datetime,
    order_id: str,
    support_deadline: datetime | None,
) -> Escalation:
    """Refused or unanswered: support decides before its deadline; a message (ticket) tells it.
    Idempotent."""
    v = Validator()
    v.check(support_deadline is not None, "support_deadline", "is required")
    v.raise_if_any()
    assert support_deadline is not None
    actor, order, escalation = await _escalation_for_step(session, settings, actor, order_id)
    if escalation.status != EscalationStatus.AWAITING_ANSWER:
        return escalation
    if escalation.answer not in (EscalationAnswer.REFUSED, EscalationAnswer.NONE):
        raise FailedPrecondition(
            "the customer's answer is not settled yet", reason="answer_not_settled"
        )
    store = await _store_by_id(session, order.store_id)
    item = await session.get(OrderItem, escalation.item_id)
    assert item is not None
    why = (
        "refused the alternative"
        if escalation.answer == EscalationAnswer.REFUSED
        else ("could not be reached before the deadline")
    )
    message = await _new_message(
        session,
        settings,
        store=store,
        now=now,
        category=SupportCategory.INVOICES_AND_ORDERS,
        subject=f"Order {order.code}: {item.name} out of stock",
        body=(
            f"{item.name} ran out on order {order.code} of {store.name}; the customer {why}. "
            f"Cancel the order ({contract.STOCKOUT_REASON}) before "
            f"{support_deadline.isoformat()}, or it is cancelled then."
        ),
        reply_to=None,
        order_code=order.code,
        subject_kind="escalation",
        subject_id=str(order.id),
        retry_delay_seconds=0,
        respond_by=support_deadline,
    )
    escalation.support_message_id = message.id
    escalation.support_deadline = support_deadline
    _end_escalation(order, escalation, now=now, status=EscalationStatus.ESCALATED)
    _event(
        session,
        order,
        now=now,
        kind="escalated_to_support",
        actor=actor_label(actor),
        reason="refused" if escalation.answer == EscalationAnswer.REFUSED else "no_answer",
        deadline=support_deadline.isoformat(),
    )
    return escalation


async def cancel_escalated_order(
    *,
    session: AsyncSession,
    settings: PartnersSettings,
    actor: Principal | None,
    now: datetime,
    order_id: str,
    note: str,
) -> tuple[Escalation, Order]:
    """Support cancels (or the workflow does, at support's deadline): reason "product
    unavailable", and what was paid is refunded.

    Two concurrent cancellations meet on the order's row lock: the second finds it cancelled
    (an operator is told so; the workflow's retried step gets the same answer again).
    """
    actor = _require(actor)
    internal = is_internal(actor, settings)
    if not (internal or is_operator(actor)):
        raise PermissionDenied("only support cancels an escalated order")
    v = Validator()
    clean_note = _text(v, "note", note, NOTE_MAX, required=False, lines=True)
    parsed = _uuid(v, "order_id", order_id)
    v.raise_if_any()
    order = await _order_by_id(session, str(parsed))
    escalation = await session.get(Escalation, order.id, with_for_update=True)
    if escalation is None:
        raise NotFound("no escalation on this order")
    if escalation.status == EscalationStatus.CANCELLED:
        if internal:
            return escalation, order
        raise FailedPrecondition("this order is already cancelled", reason="already_cancelled")
    allowed = (
        (EscalationStatus.ESCALATED,)
        if internal
        else (
            EscalationStatus.AWAITING_ANSWER,
            EscalationStatus.ESCALATED,
        )
    )
    if escalation.status not in allowed or order.status != OrderStatus.ACCEPTED:
        if internal:
            return escalation, order
        raise FailedPrecondition(
            f"this escalation is {escalation.status}; it cannot be cancelled",
            reason="not_escalated",
        )
    label = actor_label(actor)
    by = "deadline" if internal else "support"
    order.status = OrderStatus.CANCELLED.value
    order.cancellation_reason = contract.STOCKOUT_REASON
    order.closed_at = now
    _event(
        session,
        order,
        now=now,
        kind="order.cancelled",
        actor=label,
        reason=contract.STOCKOUT_REASON,
        by=by,
        note=clean_note or None,
    )
    if order.paid_cents > 0:
        _refund(
            session,
            order,
            now=now,
            reason=contract.STOCKOUT_REASON,
            funded_by=RefundFunder(settings.stockout_refund_funded_by),
            actor=label,
        )
        escalation.refunded = True
    escalation.cancelled_by = by
    _end_escalation(order, escalation, now=now, status=EscalationStatus.CANCELLED)
    await session.flush()
    return escalation, order


@dataclass(frozen=True)
class EscalationView:
    escalation: Escalation
    order_code: str
    product_name: str
    ticket_id: str
    ticket_number: int = 0


async def escalation_view(session: AsyncSession, escalation: Escalation) -> EscalationView:
    order = await session.get(Order, escalation.order_id)
    product = await session.get(Product, escalation.product_id)
    ticket, number = "", 0
    if escalation.support_message_id is not None:
        message = await session.get(SupportMessage, escalation.support_message_id)
        if message is not None:
            ticket, number = message.ticket_id or "", message.ticket_number or 0
    return EscalationView(
        escalation,
        order.code if order is not None else "",
        product.name if product is not None else "",
        ticket,
        number,
    )


_ENDED = (EscalationStatus.ITEM_REPLACED, EscalationStatus.CANCELLED)


def outcome_note(order: Order, escalation: Escalation, product_name: str) -> str:
    """How the escalation ended, in a sentence for the support ticket it opened."""
    refund = (
        " The payment was refunded."
        if escalation.refunded
        else (" Nothing had been paid." if order.paid_cents == 0 else "")
    )
    if escalation.status == EscalationStatus.ITEM_REPLACED:
        return (
            f"Order {order.code}: the customer accepted an alternative; {product_name} was "
            "replaced. Nothing left to do."
        )
    by = escalation.cancelled_by or "platform"
    if by == "support":
        return f"Order {order.code} was cancelled by support ({contract.STOCKOUT_REASON}).{refund}"
    if by == "deadline":
        deadline = (
            escalation.support_deadline.isoformat() if escalation.support_deadline else "its end"
        )
        return (
            f"Order {order.code} was cancelled at the support deadline ({deadline}): "
            f"{product_name} unavailable, no decision in time.{refund}"
        )
    return f"Order {order.code} was cancelled by the platform while escalated.{refund}"


async def escalation_outcome(
    *, session: AsyncSession, settings: PartnersSettings, actor: Principal | None, order_id: str
) -> tuple[EscalationView, bool, str]:
    """(The escalation, whether it ended, the closing note for its support ticket)."""
    require_internal(actor, settings)
    order = await _order_by_id(session, order_id)
    escalation = await session.get(Escalation, order.id)
    if escalation is None:
        raise NotFound("no escalation on this order")
    view = await escalation_view(session, escalation)
    ended = escalation.status in _ENDED
    return view, ended, outcome_note(order, escalation, view.product_name) if ended else ""


async def record_escalation_ticket_closed(
    *,
    session: AsyncSession,
    settings: PartnersSettings,
    actor: Principal | None,
    now: datetime,
    order_id: str,
    ticket_id: str,
) -> Escalation:
    """Support closed the escalation's ticket with its outcome: recorded once, on the order."""
    actor = require_internal(actor, settings)
    v = Validator()
    v.require("ticket_id", ticket_id)
    v.check(len(ticket_id) <= 64, "ticket_id", "must be at most 64 characters")
    v.raise_if_any()
    order = await _order_by_id(session, order_id)
    escalation = await session.get(Escalation, order.id, with_for_update=True)
    if escalation is None:
        raise NotFound("no escalation on this order")
    if escalation.ticket_closed_at is None:
        escalation.ticket_closed_at = now
        _event(
            session,
            order,
            now=now,
            kind="support_ticket.closed",
            actor=actor_label(actor),
            ticket_id=ticket_id.strip(),
            outcome=escalation.cancelled_by or escalation.status,
        )
    return escalation


async def list_escalations(
    *,
    session: AsyncSession,
    actor: Principal | None,
    status: str,
    page_size: int,
    page_token: str,
) -> Page[EscalationView]:
    """Operators: the escalations in a status (default: waiting on support), oldest first."""
    _require_operator(actor)
    v = Validator()
    wanted = status or EscalationStatus.ESCALATED.value
    v.check(wanted in {s.value for s in EscalationStatus}, "status", "is not an escalation status")
    page = _parse_page(v, "escalations", page_size, page_token, [_timestamp, uuid.UUID], wanted)
    v.raise_if_any()
    columns = [Escalation.created_at, Escalation.order_id]
    rows = (
        await session.execute(
            select(
                Escalation,
                Order.code,
                Product.name,
                SupportMessage.ticket_id,
                SupportMessage.ticket_number,
            )
            .join(Order, Order.id == Escalation.order_id)
            .join(Product, Product.id == Escalation.product_id)
            .outerjoin(SupportMessage, SupportMessage.id == Escalation.support_message_id)
            .where(Escalation.status == wanted, *_after(page, columns))
            .order_by(*columns)
            .limit(page.size + 1)
        )
    ).all()
    items, more = _cut(
        [EscalationView(e, c, n, t or "", number or 0) for e, c, n, t, number in rows], page
    )
    token = ""
    if more:
        last = items[-1].escalation
        token = encode_page_token(
            "escalations", (last.created_at.isoformat(), last.order_id), wanted
        )
    return Page(items, token)
