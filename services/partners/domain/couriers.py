"""Couriers: reporting one on an order of the history, contacting a late one while in progress."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import AlreadyExists, FailedPrecondition, Validator
from services.partners.domain.common import (
    NOTE_MAX,
    _event,
    _require,
    _store_for,
    _text,
    actor_label,
)
from services.partners.domain.orders import _order_of
from services.partners.models import CourierReport, CourierReportReason, Order, OrderStatus


async def report_courier(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    store_id: str,
    order_id: str,
    reason: str,
    comment: str,
) -> CourierReport:
    """The "report the courier" button: on an order of the history that had a courier, once."""
    v = Validator()
    parsed_reason: CourierReportReason | None = None
    try:
        parsed_reason = CourierReportReason(reason)
    except ValueError:
        v.check(False, "reason", "must be late, behaviour, damaged_order or other")
    clean_comment = _text(
        v, "comment", comment, NOTE_MAX, required=reason == CourierReportReason.OTHER, lines=True
    )
    v.raise_if_any()
    assert parsed_reason is not None
    store = await _store_for(session, actor, store_id, manage=True)
    actor = _require(actor)
    order = await _order_of(session, store, order_id, lock=True)
    if order.status == OrderStatus.ACCEPTED:
        raise FailedPrecondition(
            "a courier is reported on an order of the history; while the order is in progress, "
            "contact the courier",
            reason="order_in_progress",
        )
    if not order.courier_name:
        raise FailedPrecondition("this order had no courier", reason="no_courier")
    if await session.scalar(select(literal(1)).where(CourierReport.order_id == order.id)):
        raise AlreadyExists("the courier of this order is already reported", reason="reported")
    report = CourierReport(
        id=uuid.uuid4(),
        order_id=order.id,
        store_id=store.id,
        reason=parsed_reason.value,
        comment=clean_comment,
        created_by=actor_label(actor),
        created_at=now,
    )
    session.add(report)
    _event(
        session,
        order,
        now=now,
        kind="courier.reported",
        actor=actor_label(actor),
        reason=parsed_reason.value,
    )
    try:
        await session.flush()
    except IntegrityError:
        raise AlreadyExists(
            "the courier of this order is already reported", reason="reported"
        ) from None
    return report


async def contact_courier(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    store_id: str,
    order_id: str,
    message: str,
) -> Order:
    """A late courier is contacted while the order is in progress (the contact is recorded)."""
    v = Validator()
    clean = _text(v, "message", message, 500, required=False, lines=True)
    v.raise_if_any()
    store = await _store_for(session, actor, store_id, manage=True)
    actor = _require(actor)
    order = await _order_of(session, store, order_id)
    if order.status != OrderStatus.ACCEPTED:
        raise FailedPrecondition(
            "this order is no longer in progress (it may have been cancelled): see the history",
            reason="order_not_in_progress",
        )
    if not order.courier_name or not order.courier_phone:
        raise FailedPrecondition("no courier is assigned to this order yet", reason="no_courier")
    _event(
        session,
        order,
        now=now,
        kind="courier.contacted",
        actor=actor_label(actor),
        message=clean or None,
    )
    return order
