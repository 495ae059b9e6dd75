"""Promotions: draft, configuration, activation, reading, and reporting a problem to support."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import FailedPrecondition, InvalidArgument, NotFound, Validator
from services.kit.paging import Page, keyset_after as _after, parse_page as _parse_page
from services.partners.domain.common import (
    MAX_PRICE_CENTS,
    TEXT_MAX,
    _email,
    _fetch_page,
    _store_for,
    _text,
    _timestamp,
    _uuid,
    _uuid_or_none,
)
from services.partners.domain.messages import _new_message
from services.partners.models import (
    Product,
    Promotion,
    PromotionKind,
    PromotionStatus,
    Store,
    SupportCategory,
    SupportMessage,
)
from services.partners.settings import PartnersSettings

MAX_PROMOTION_DAYS = 366
MAX_PROMOTION_PRODUCTS = 200


def promotion_status(promotion: Promotion, now: datetime) -> str:
    """Draft, configured, active, or ended (active whose end time has passed)."""
    if (
        promotion.status == PromotionStatus.ACTIVE
        and promotion.ends_at is not None
        and promotion.ends_at <= now
    ):
        return "ended"
    return promotion.status


async def _promotion_of(
    session: AsyncSession, store: Store, promotion_id: str, *, lock: bool = False
) -> Promotion:
    parsed = _uuid_or_none(promotion_id)
    query = select(Promotion).where(Promotion.id == parsed, Promotion.store_id == store.id)
    if lock:
        query = query.with_for_update()
    promotion = None if parsed is None else await session.scalar(query)
    if promotion is None:
        raise NotFound("promotion not found")
    return promotion


async def create_promotion(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    store_id: str,
    name: str,
    kind: str,
) -> Promotion:
    """Step 1 of 3: a draft with a name and a kind."""
    v = Validator()
    clean_name = _text(v, "name", name, 120)
    parsed: PromotionKind | None = None
    try:
        parsed = PromotionKind(kind)
    except ValueError:
        v.check(False, "kind", "must be percent_off, amount_off or free_delivery")
    v.raise_if_any()
    assert parsed is not None
    store = await _store_for(session, actor, store_id, manage=True)
    promotion = Promotion(
        id=uuid.uuid4(),
        store_id=store.id,
        name=clean_name,
        kind=parsed.value,
        status=PromotionStatus.DRAFT.value,
        min_order_cents=0,
        product_ids=[],
        created_at=now,
        updated_at=now,
    )
    session.add(promotion)
    return promotion


async def configure_promotion(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    store_id: str,
    promotion_id: str,
    percent_off: int,
    amount_off_cents: int,
    min_order_cents: int,
    product_ids: Sequence[str],
    starts_at: datetime | None,
    ends_at: datetime | None,
) -> Promotion:
    """Step 2 of 3: the discount, the products (none: the whole menu) and the period."""
    store = await _store_for(session, actor, store_id, manage=True)
    promotion = await _promotion_of(session, store, promotion_id, lock=True)
    if promotion.status == PromotionStatus.ACTIVE:
        raise FailedPrecondition("an active promotion cannot be changed", reason="promotion_active")
    v = Validator()
    if promotion.kind == PromotionKind.PERCENT_OFF:
        v.check(
            1 <= percent_off <= 90,
            "percent_off",
            "must be between 1 and 90",
            code="less_than_equal",
        )
    else:
        v.check(
            percent_off == 0,
            "percent_off",
            f"does not apply to {promotion.kind}",
            code="does_not_apply",
        )
    if promotion.kind == PromotionKind.AMOUNT_OFF:
        v.check(
            0 < amount_off_cents <= MAX_PRICE_CENTS,
            "amount_off_cents",
            "must be positive",
            code="greater_than_equal",
        )
    else:
        v.check(
            amount_off_cents == 0,
            "amount_off_cents",
            f"does not apply to {promotion.kind}",
            code="does_not_apply",
        )
    v.check(
        0 <= min_order_cents <= MAX_PRICE_CENTS,
        "min_order_cents",
        "must not be negative",
        code="less_than_equal",
    )
    if promotion.kind == PromotionKind.AMOUNT_OFF and min_order_cents:
        v.check(
            amount_off_cents < min_order_cents,
            "amount_off_cents",
            "must be less than the minimum order",
            code="not_below_minimum",
        )
    v.check(starts_at is not None, "start_time", "is required")
    v.check(ends_at is not None, "end_time", "is required")
    if starts_at is not None and ends_at is not None:
        v.check(
            ends_at > starts_at, "end_time", "must be after start_time", code="end_before_start"
        )
        v.check(ends_at > now, "end_time", "must be in the future", code="in_the_past")
        v.check(
            ends_at - starts_at <= timedelta(days=MAX_PROMOTION_DAYS),
            "end_time",
            f"a promotion lasts at most {MAX_PROMOTION_DAYS} days",
            code="period_too_long",
        )
    v.check(
        len(product_ids) <= MAX_PROMOTION_PRODUCTS,
        "product_ids",
        f"at most {MAX_PROMOTION_PRODUCTS} products",
    )
    parsed_ids: list[uuid.UUID] = []
    for index, raw in enumerate(product_ids):
        parsed = _uuid(v, f"product_ids[{index}]", raw)
        if parsed is not None and parsed not in parsed_ids:
            parsed_ids.append(parsed)
    v.raise_if_any()
    if parsed_ids:
        known = set(
            await session.scalars(
                select(Product.id).where(Product.id.in_(parsed_ids), Product.store_id == store.id)
            )
        )
        missing = [
            (f"product_ids[{index}]", "is not on this store's menu")
            for index, raw in enumerate(product_ids)
            if _uuid_or_none(raw) not in known
        ]
        if missing:
            raise InvalidArgument(missing)
    promotion.percent_off = percent_off or None
    promotion.amount_off_cents = amount_off_cents or None
    promotion.min_order_cents = min_order_cents
    promotion.product_ids = parsed_ids
    promotion.starts_at = starts_at
    promotion.ends_at = ends_at
    promotion.status = PromotionStatus.CONFIGURED.value
    promotion.updated_at = now
    return promotion


async def activate_promotion(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    store_id: str,
    promotion_id: str,
) -> Promotion:
    """Step 3 of 3: a configured promotion whose period has not ended goes live."""
    store = await _store_for(session, actor, store_id, manage=True)
    promotion = await _promotion_of(session, store, promotion_id, lock=True)
    if promotion.status == PromotionStatus.DRAFT:
        raise FailedPrecondition(
            "configure the promotion before activating it", reason="not_configured"
        )
    if promotion.status == PromotionStatus.ACTIVE:
        raise FailedPrecondition("the promotion is already active", reason="already_active")
    if promotion.ends_at is None or promotion.ends_at <= now:
        raise FailedPrecondition(
            "the promotion's period has ended; configure it again", reason="period_ended"
        )
    promotion.status = PromotionStatus.ACTIVE.value
    promotion.activated_at = now
    promotion.updated_at = now
    return promotion


async def get_promotion(
    *, session: AsyncSession, actor: Principal | None, store_id: str, promotion_id: str
) -> Promotion:
    store = await _store_for(session, actor, store_id, manage=False)
    return await _promotion_of(session, store, promotion_id)


async def list_promotions(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    store_id: str,
    status: str,
    page_size: int,
    page_token: str,
) -> Page[Promotion]:
    """Newest first; `active` lists the promotions running or scheduled (not ended)."""
    v = Validator()
    allowed = {"", "draft", "configured", "active", "ended"}
    v.check(status in allowed, "status", "must be draft, configured, active or ended")
    page = _parse_page(v, "promotions", page_size, page_token, [_timestamp, uuid.UUID], status)
    v.raise_if_any()
    store = await _store_for(session, actor, store_id, manage=False)
    columns = [Promotion.created_at, Promotion.id]
    query = select(Promotion).where(
        Promotion.store_id == store.id, *_after(page, columns, descending=True)
    )
    if status in ("draft", "configured"):
        query = query.where(Promotion.status == status)
    elif status == "active":
        query = query.where(Promotion.status == "active", Promotion.ends_at > now)
    elif status == "ended":
        query = query.where(Promotion.status == "active", Promotion.ends_at <= now)
    query = query.order_by(Promotion.created_at.desc(), Promotion.id.desc())
    return await _fetch_page(
        session,
        query,
        page,
        "promotions",
        lambda p: (p.created_at.isoformat(), p.id),
        status,
    )


async def report_promotion_problem(
    *,
    session: AsyncSession,
    settings: PartnersSettings,
    actor: Principal | None,
    now: datetime,
    store_id: str,
    promotion_id: str,
    description: str,
    reply_to_email: str,
) -> SupportMessage:
    """A problem configuring or with an active promotion: a message to support ("other")."""
    v = Validator()
    clean = _text(v, "description", description, TEXT_MAX, lines=True)
    reply_to = _email(v, "reply_to_email", reply_to_email, required=False)
    v.raise_if_any()
    store = await _store_for(session, actor, store_id, manage=True)
    promotion = await _promotion_of(session, store, promotion_id)
    return await _new_message(
        session,
        settings,
        store=store,
        now=now,
        category=SupportCategory.OTHER,
        subject=f"Problem with the promotion {promotion.name}",
        body=f"Promotion: {promotion.name} ({promotion.id}), {promotion_status(promotion, now)}"
        f"\n\n{clean}",
        reply_to=reply_to,
        subject_kind="promotion",
        subject_id=str(promotion.id),
        retry_delay_seconds=settings.ticket_retry_delay_seconds,
    )
