"""Orders from the platform: intake, status changes, payments, refunds, and the partner's views.

Orders arrive from the platform (internal calls); a store's managers read them (in progress,
history, one order with its items, payments and events).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Row, literal_column, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import FailedPrecondition, NotFound, PermissionDenied, Validator
from services.kit.paging import (
    Page,
    PageQuery,
    keyset_after as _after,
    page_token as encode_page_token,
    parse_page as _parse_page,
)
from services.partners.domain.common import (
    _CODE,
    MAX_PRICE_CENTS,
    MAX_QUANTITY,
    _cut,
    _event,
    _may_see_store,
    _phone,
    _require,
    _require_ops_admin_or_internal,
    _store_by_id,
    _store_for,
    _text,
    _timestamp,
    _uuid,
    _uuid_or_none,
    _uuid_or_raise,
    actor_label,
    is_internal,
    is_operator,
    require_internal,
)
from services.partners.models import (
    HISTORY_STATUSES,
    CourierReport,
    Escalation,
    EscalationStatus,
    ItemStatus,
    Order,
    OrderEvent,
    OrderItem,
    OrderStatus,
    Payment,
    PaymentKind,
    Product,
    RefundFunder,
    Store,
    SupportMessage,
)
from services.partners.settings import PartnersSettings

MAX_ITEMS_PER_ORDER = 100

# The lists' sort keys live in the page token together with the filters they were read with.
_HISTORY = "history"
_IN_PROGRESS = "in-progress"


async def _rows_of_store(
    session: AsyncSession, store_id: uuid.UUID, found: Page[Row[Any]]
) -> Page[Row[Any]]:
    """A store's rows were read before its own row: a non-empty page proves the store exists
    (foreign key); an empty one must still tell an unregistered store (NOT_FOUND) apart."""
    if not found.items:
        await _store_by_id(session, store_id)
    return found


# --------------------------------------------------------------------------------------------
# Orders from the platform
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubmittedItem:
    product_id: str
    quantity: int


@dataclass
class OrderView:
    """An order with everything the detail page shows."""

    order: Order
    items: list[OrderItem] = field(default_factory=list)
    payments: list[Payment] = field(default_factory=list)
    events: list[OrderEvent] = field(default_factory=list)
    escalation: Escalation | None = None
    courier_report: CourierReport | None = None
    product_names: dict[uuid.UUID, str] = field(default_factory=dict)
    # The escalation's message to support: its ticket (id and number), linked both ways.
    support_message: SupportMessage | None = None


async def _order_view(session: AsyncSession, order: Order) -> OrderView:
    await session.flush()
    items = list(
        await session.scalars(
            select(OrderItem).where(OrderItem.order_id == order.id).order_by(OrderItem.position)
        )
    )
    payments = list(
        await session.scalars(
            select(Payment)
            .where(Payment.order_id == order.id)
            .order_by(Payment.created_at, Payment.id)
        )
    )
    events = list(
        await session.scalars(
            select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)
        )
    )
    escalation = await session.get(Escalation, order.id)
    report = await session.scalar(select(CourierReport).where(CourierReport.order_id == order.id))
    names: dict[uuid.UUID, str] = {}
    message = None
    if escalation is not None:
        product = await session.get(Product, escalation.product_id)
        if product is not None:
            names[product.id] = product.name
        if escalation.support_message_id is not None:
            message = await session.get(SupportMessage, escalation.support_message_id)
    return OrderView(order, items, payments, events, escalation, report, names, message)


async def _order_of(
    session: AsyncSession, store: Store, order_id: str, *, lock: bool = False
) -> Order:
    parsed = _uuid_or_none(order_id)
    query = select(Order).where(Order.id == parsed, Order.store_id == store.id)
    if lock:
        query = query.with_for_update()
    order = None if parsed is None else await session.scalar(query)
    if order is None:
        raise NotFound("order not found")
    return order


async def _order_by_id(session: AsyncSession, order_id: str, *, lock: bool = True) -> Order:
    parsed = _uuid_or_raise("order_id", order_id)
    order = await session.get(Order, parsed, with_for_update=lock)
    if order is None:
        raise NotFound("order not found")
    return order


async def submit_order(
    *,
    session: AsyncSession,
    settings: PartnersSettings,
    actor: Principal | None,
    now: datetime,
    store_id: str,
    code: str,
    items: Sequence[SubmittedItem],
    customer_name: str,
    customer_phone: str,
    courier_name: str,
    courier_phone: str,
    paid: bool,
    payment_reference: str,
    created_at: datetime | None,
) -> tuple[OrderView, bool]:
    """Order intake from the platform; a retried intake (same code) returns the first order."""
    actor = _require_ops_admin_or_internal(actor, settings)
    v = Validator()
    parsed_store = _uuid(v, "store_id", store_id)
    clean_code = code.strip()
    v.require("code", clean_code)
    if clean_code and not _CODE.match(clean_code):
        v.check(False, "code", "must be 1 to 40 letters, digits, '-' or '_'")
    v.check(bool(items), "items", "an order has at least one item")
    v.check(len(items) <= MAX_ITEMS_PER_ORDER, "items", f"at most {MAX_ITEMS_PER_ORDER} items")
    wanted: list[tuple[uuid.UUID | None, int]] = []
    for index, item in enumerate(items):
        product_ref = _uuid(v, f"items[{index}].product_id", item.product_id)
        v.check(
            1 <= item.quantity <= MAX_QUANTITY,
            f"items[{index}].quantity",
            f"must be between 1 and {MAX_QUANTITY}",
        )
        wanted.append((product_ref, item.quantity))
    name = _text(v, "customer_name", customer_name, 200, required=False)
    phone = _phone(v, "customer_phone", customer_phone)
    courier = _text(v, "courier_name", courier_name, 200, required=False)
    courier_tel = _phone(v, "courier_phone", courier_phone)
    reference = _text(v, "payment_reference", payment_reference, 100, required=False)
    if created_at is not None:
        v.check(created_at <= now + timedelta(minutes=5), "create_time", "is in the future")
    v.raise_if_any()
    assert parsed_store is not None
    store = await _store_by_id(session, parsed_store)
    existing = await session.scalar(
        select(Order).where(Order.store_id == store.id, Order.code == clean_code)
    )
    if existing is not None:
        return await _order_view(session, existing), False
    ids = {product_id for product_id, _ in wanted if product_id is not None}
    products = {
        p.id: p
        for p in await session.scalars(
            select(Product).where(Product.id.in_(ids), Product.store_id == store.id)
        )
    }
    for index, (product_id, _) in enumerate(wanted):
        product = products.get(product_id) if product_id else None
        if product is None:
            v.check(False, f"items[{index}].product_id", "is not on this store's menu")
        elif not product.active:
            v.check(False, f"items[{index}].product_id", "is not available (deactivated)")
    v.raise_if_any()
    order = Order(
        id=uuid.uuid4(),
        store_id=store.id,
        code=clean_code,
        status=OrderStatus.ACCEPTED.value,
        customer_name=name,
        customer_phone=phone,
        courier_name=courier,
        courier_phone=courier_tel,
        currency=store.currency,
        total_cents=0,
        paid_cents=0,
        created_at=created_at or now,
        updated_at=now,
    )
    total = 0
    order_items = []
    for position, (product_id, quantity) in enumerate(wanted):
        assert product_id is not None
        product = products[product_id]
        total += product.price_cents * quantity
        order_items.append(
            OrderItem(
                id=uuid.uuid4(),
                order_id=order.id,
                position=position,
                product_id=product.id,
                name=product.name,
                unit_price_cents=product.price_cents,
                quantity=quantity,
                status=ItemStatus.ACTIVE.value,
            )
        )
    order.total_cents = total
    try:
        async with session.begin_nested():
            session.add(order)
            await session.flush()
    except IntegrityError:
        # The same code arrived twice at once: the first intake won, return its order.
        winner = await session.scalar(
            select(Order).where(Order.store_id == store.id, Order.code == clean_code)
        )
        if winner is None:
            raise
        return await _order_view(session, winner), False
    session.add_all(order_items)
    label = actor_label(actor)
    _event(session, order, now=now, kind="order.accepted", actor=label, total_cents=total)
    if paid and total > 0:
        _add_payment(session, order, now=now, amount=total, reference=reference or None)
        _event(session, order, now=now, kind="payment.recorded", actor=label, amount_cents=total)
    return await _order_view(session, order), True


def _add_payment(
    session: AsyncSession, order: Order, *, now: datetime, amount: int, reference: str | None
) -> None:
    session.add(
        Payment(
            id=uuid.uuid4(),
            order_id=order.id,
            kind=PaymentKind.PAYMENT.value,
            amount_cents=amount,
            reference=reference,
            created_at=now,
        )
    )
    order.paid_cents += amount
    order.updated_at = now


_NEXT_STATUSES: dict[str, frozenset[str]] = {
    OrderStatus.ACCEPTED: frozenset(
        {OrderStatus.COLLECTED, OrderStatus.DELIVERED, OrderStatus.CANCELLED}
    ),
    OrderStatus.COLLECTED: frozenset({OrderStatus.DELIVERED, OrderStatus.CANCELLED}),
}
_OPEN_ESCALATION = (
    EscalationStatus.AWAITING_ANSWER,
    EscalationStatus.ACCEPTED,
    EscalationStatus.ESCALATED,
)


# An escalation ends here when the platform cancels its order, and in `escalations` otherwise.
def _end_escalation(
    order: Order, escalation: Escalation, *, now: datetime, status: EscalationStatus
) -> None:
    escalation.status = status.value
    escalation.updated_at = now
    order.escalation_status = status.value
    order.updated_at = now


async def update_order_status(
    *,
    session: AsyncSession,
    settings: PartnersSettings,
    actor: Principal | None,
    now: datetime,
    order_id: str,
    status: str,
    cancellation_reason: str,
    courier_name: str,
    courier_phone: str,
) -> Order:
    """The platform moves an order on: accepted → collected → delivered, or cancelled."""
    actor = require_internal(actor, settings)
    v = Validator()
    parsed_order = _uuid(v, "order_id", order_id)
    target: OrderStatus | None = None
    if status not in (OrderStatus.COLLECTED, OrderStatus.DELIVERED, OrderStatus.CANCELLED):
        v.check(False, "status", "must be collected, delivered or cancelled")
    else:
        target = OrderStatus(status)
    reason = _text(
        v,
        "cancellation_reason",
        cancellation_reason,
        200,
        required=target == OrderStatus.CANCELLED,
    )
    courier = _text(v, "courier_name", courier_name, 200, required=False)
    courier_tel = _phone(v, "courier_phone", courier_phone)
    v.raise_if_any()
    assert parsed_order is not None and target is not None
    order = await _order_by_id(session, str(parsed_order))
    if target not in _NEXT_STATUSES.get(order.status, frozenset()):
        raise FailedPrecondition(
            f"an order {order.status} cannot become {target.value}", reason="invalid_transition"
        )
    escalation = await session.get(Escalation, order.id, with_for_update=True)
    running = escalation is not None and escalation.status in _OPEN_ESCALATION
    if running and target != OrderStatus.CANCELLED:
        raise FailedPrecondition(
            "an out-of-stock escalation is open on this order", reason="escalation_open"
        )
    label = actor_label(actor)
    if courier:
        order.courier_name = courier
        order.courier_phone = courier_tel
    order.status = target.value
    order.updated_at = now
    if order.closed_at is None:
        order.closed_at = now
    if target == OrderStatus.CANCELLED:
        order.cancellation_reason = reason
        _event(session, order, now=now, kind="order.cancelled", actor=label, reason=reason)
        if running:
            assert escalation is not None
            _end_escalation(order, escalation, now=now, status=EscalationStatus.CANCELLED)
            escalation.cancelled_by = "platform"
    else:
        _event(session, order, now=now, kind=f"order.{target.value}", actor=label)
    return order


async def record_payment(
    *,
    session: AsyncSession,
    settings: PartnersSettings,
    actor: Principal | None,
    now: datetime,
    order_id: str,
    amount_cents: int,
    reference: str,
) -> Order:
    actor = require_internal(actor, settings)
    v = Validator()
    parsed = _uuid(v, "order_id", order_id)
    v.check(0 < amount_cents <= MAX_PRICE_CENTS, "amount_cents", "must be positive")
    clean_reference = _text(v, "reference", reference, 100, required=False)
    v.raise_if_any()
    order = await _order_by_id(session, str(parsed))
    if order.status == OrderStatus.REFUNDED:
        raise FailedPrecondition("this order was refunded", reason="refunded")
    _add_payment(session, order, now=now, amount=amount_cents, reference=clean_reference or None)
    _event(
        session,
        order,
        now=now,
        kind="payment.recorded",
        actor=actor_label(actor),
        amount_cents=amount_cents,
    )
    return order


def _refund(
    session: AsyncSession,
    order: Order,
    *,
    now: datetime,
    reason: str,
    funded_by: RefundFunder,
    actor: str,
) -> None:
    session.add(
        Payment(
            id=uuid.uuid4(),
            order_id=order.id,
            kind=PaymentKind.REFUND.value,
            amount_cents=order.paid_cents,
            reason=reason,
            funded_by=funded_by.value,
            created_at=now,
        )
    )
    order.status = OrderStatus.REFUNDED.value
    order.refund_reason = reason
    order.refund_funded_by = funded_by.value
    order.updated_at = now
    _event(
        session,
        order,
        now=now,
        kind="order.refunded",
        actor=actor,
        reason=reason,
        funded_by=funded_by.value,
        amount_cents=order.paid_cents,
    )


async def refund_order(
    *,
    session: AsyncSession,
    settings: PartnersSettings,
    actor: Principal | None,
    now: datetime,
    order_id: str,
    reason: str,
    funded_by: str,
) -> Order:
    """Refunds what was paid, in full, once; records why and who funds it."""
    actor = _require(actor)
    if not (is_internal(actor, settings) or is_operator(actor)):
        raise PermissionDenied("only the platform or an operator may refund an order")
    v = Validator()
    parsed = _uuid(v, "order_id", order_id)
    clean_reason = _text(v, "reason", reason, 200)
    funder: RefundFunder | None = None
    try:
        funder = RefundFunder(funded_by)
    except ValueError:
        v.check(False, "funded_by", "must be platform or partner")
    v.raise_if_any()
    assert funder is not None
    order = await _order_by_id(session, str(parsed))
    if order.status == OrderStatus.REFUNDED:
        raise FailedPrecondition("this order is already refunded", reason="already_refunded")
    if order.status == OrderStatus.ACCEPTED:
        raise FailedPrecondition(
            "an order in progress is cancelled, not refunded", reason="order_in_progress"
        )
    if order.paid_cents <= 0:
        raise FailedPrecondition("no payment was made for this order", reason="not_paid")
    _refund(
        session, order, now=now, reason=clean_reason, funded_by=funder, actor=actor_label(actor)
    )
    try:
        await session.flush()
    except IntegrityError:
        raise FailedPrecondition(
            "this order is already refunded", reason="already_refunded"
        ) from None
    return order


# --------------------------------------------------------------------------------------------
# Orders: the partner's views
# --------------------------------------------------------------------------------------------

# What a line of the lists shows: read as plain rows (no ORM objects) for speed.
ORDER_LIST_COLUMNS = (
    Order.id,
    Order.store_id,
    Order.code,
    Order.status,
    Order.created_at,
    Order.closed_at,
    Order.total_cents,
    Order.currency,
    Order.paid_cents,
    Order.cancellation_reason,
    Order.refund_reason,
    Order.refund_funded_by,
    Order.escalation_status,
)


async def _order_rows(
    session: AsyncSession,
    conditions: list[ColumnElement[bool]],
    page: PageQuery,
    list_name: str,
    filters: str,
) -> Page[Row[Any]]:
    columns = [Order.created_at, Order.id]
    query = (
        select(*ORDER_LIST_COLUMNS)
        .where(*conditions, *_after(page, columns, descending=True))
        .order_by(Order.created_at.desc(), Order.id.desc())
        .limit(page.size + 1)
    )
    found = cast(list[Row[Any]], list((await session.execute(query)).all()))
    rows, more = _cut(found, page)
    token = ""
    if more:
        last = rows[-1]
        token = encode_page_token(list_name, (last.created_at.isoformat(), last.id), filters)
    return Page(rows, token)


async def list_orders_in_progress(
    *,
    session: AsyncSession,
    actor: Principal | None,
    store_id: str,
    page_size: int,
    page_token: str,
) -> Page[Row[Any]]:
    """COMMANDES > ACCEPTÉES, newest first."""
    v = Validator()
    page = _parse_page(v, _IN_PROGRESS, page_size, page_token, [_timestamp, uuid.UUID])
    v.raise_if_any()
    store = _may_see_store(actor, store_id, manage=False)
    conditions = [Order.store_id == store, Order.status == OrderStatus.ACCEPTED.value]
    found = await _order_rows(session, conditions, page, _IN_PROGRESS, "")
    return await _rows_of_store(session, store, found)


async def list_order_history(
    *,
    session: AsyncSession,
    actor: Principal | None,
    store_id: str,
    status: str,
    period_start: datetime | None,
    period_end: datetime | None,
    page_size: int,
    page_token: str,
) -> Page[Row[Any]]:
    """RAPPORTS > HISTORIQUE, newest first, by status and period, keyset-paginated.

    Served by `ix_orders_store_status_created` with a status, by the partial
    `ix_orders_store_history` without: a deep page costs what the first page costs.
    """
    v = Validator()
    if status and status not in {s.value for s in HISTORY_STATUSES}:
        v.check(False, "status", "must be collected, delivered, cancelled or refunded")
    if period_start is not None and period_end is not None:
        v.check(
            period_start < period_end,
            "period_end",
            "must be after period_start",
            code="end_before_start",
        )
    bounds = [moment.isoformat() if moment else "" for moment in (period_start, period_end)]
    filters = "|".join([status, *bounds])
    page = _parse_page(v, _HISTORY, page_size, page_token, [_timestamp, uuid.UUID], filters)
    v.raise_if_any()
    store = _may_see_store(actor, store_id, manage=False)
    conditions: list[ColumnElement[bool]] = [Order.store_id == store]
    if status:
        conditions.append(Order.status == status)
    else:
        # The partial index's own predicate, as a literal: with a bound parameter, the generic
        # plan of the prepared statement (from the sixth run on) could not prove it and would
        # leave the index aside.
        conditions.append(Order.status != literal_column("'accepted'"))
    if period_start is not None:
        conditions.append(Order.created_at >= period_start)
    if period_end is not None:
        conditions.append(Order.created_at < period_end)
    found = await _order_rows(session, conditions, page, _HISTORY, filters)
    return await _rows_of_store(session, store, found)


async def get_order(
    *, session: AsyncSession, actor: Principal | None, store_id: str, order_id: str
) -> OrderView:
    store = await _store_for(session, actor, store_id, manage=False)
    return await _order_view(session, await _order_of(session, store, order_id))
