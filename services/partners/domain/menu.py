"""The menu: products, their prices, deactivation (optionally with a scheduled reactivation).

A deactivation with a reactivation date writes the ReactivateProduct workflow's outbox row in the
same transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import NotFound, Validator
from services.kit.outbox import enqueue
from services.kit.paging import Page, keyset_after as _after, parse_page as _parse_page
from services.partners.domain.common import (
    TEXT_MAX,
    _fetch_page,
    _price,
    _require_operator,
    _store_by_id,
    _store_for,
    _text,
    _uuid,
    _uuid_or_none,
    _uuid_or_raise,
    require_internal,
)
from services.partners.models import Product, Store, outbox
from services.partners.settings import PartnersSettings
from workflows.contracts import partners as contract

MAX_REACTIVATION_DAYS = 90


async def _product_of(
    session: AsyncSession, store: Store, product_id: str, *, lock: bool = False
) -> Product:
    parsed = _uuid_or_none(product_id)
    query = select(Product).where(Product.id == parsed, Product.store_id == store.id)
    if lock:
        query = query.with_for_update()
    product = None if parsed is None else await session.scalar(query)
    if product is None:
        raise NotFound("product not found")
    return product


async def create_product(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    store_id: str,
    name: str,
    description: str,
    price_cents: int,
) -> Product:
    """Operators build a store's menu at onboarding; partners change it by content change."""
    _require_operator(actor)
    v = Validator()
    parsed = _uuid(v, "store_id", store_id)
    clean_name = _text(v, "name", name, 200)
    clean_description = _text(v, "description", description, TEXT_MAX, required=False, lines=True)
    _price(v, "price_cents", price_cents)
    v.raise_if_any()
    assert parsed is not None
    store = await _store_by_id(session, parsed)
    return _new_product(session, store, now, clean_name, clean_description, price_cents)


def _new_product(
    session: AsyncSession, store: Store, now: datetime, name: str, description: str, price: int
) -> Product:
    product = Product(
        id=uuid.uuid4(),
        store_id=store.id,
        name=name,
        description=description,
        price_cents=price,
        active=True,
        deactivation_seq=0,
        created_at=now,
        updated_at=now,
    )
    session.add(product)
    return product


async def list_products(
    *,
    session: AsyncSession,
    actor: Principal | None,
    store_id: str,
    active_only: bool,
    page_size: int,
    page_token: str,
) -> Page[Product]:
    v = Validator()
    filters = "active" if active_only else ""
    page = _parse_page(v, "products", page_size, page_token, [str, uuid.UUID], filters)
    v.raise_if_any()
    store = await _store_for(session, actor, store_id, manage=False)
    columns = [Product.name, Product.id]
    query = select(Product).where(Product.store_id == store.id, *_after(page, columns))
    if active_only:
        query = query.where(Product.active.is_(True))
    query = query.order_by(*columns)
    return await _fetch_page(session, query, page, "products", lambda p: (p.name, p.id), filters)


async def set_product_price(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    store_id: str,
    product_id: str,
    price_cents: int,
) -> Product:
    """Prices are the partner's to change directly (names and descriptions are not)."""
    v = Validator()
    _price(v, "price_cents", price_cents)
    v.raise_if_any()
    store = await _store_for(session, actor, store_id, manage=True)
    product = await _product_of(session, store, product_id, lock=True)
    product.price_cents = price_cents
    product.updated_at = now
    return product


def _deactivate(product: Product, *, now: datetime, reason: str | None) -> None:
    product.active = False
    product.deactivation_seq += 1
    product.deactivation_reason = reason
    product.reactivate_at = None
    product.updated_at = now


async def deactivate_product(
    *,
    session: AsyncSession,
    settings: PartnersSettings,
    actor: Principal | None,
    now: datetime,
    store_id: str,
    product_id: str,
    reactivate_at: datetime | None,
    reason: str,
) -> Product:
    """Takes a product off the menu; with `reactivate_at`, a timer brings it back by itself.

    Each deactivation bumps the product's sequence; the timer of an earlier deactivation finds
    another sequence and does nothing, so a newer choice always wins.
    """
    v = Validator()
    clean_reason = _text(v, "reason", reason, 200, required=False)
    if reactivate_at is not None:
        v.check(reactivate_at > now, "reactivate_time", "must be in the future", code="in_the_past")
        v.check(
            reactivate_at <= now + timedelta(days=MAX_REACTIVATION_DAYS),
            "reactivate_time",
            f"must be within {MAX_REACTIVATION_DAYS} days",
            code="too_far",
        )
    v.raise_if_any()
    store = await _store_for(session, actor, store_id, manage=True)
    product = await _product_of(session, store, product_id, lock=True)
    _deactivate(product, now=now, reason=clean_reason or None)
    if reactivate_at is not None:
        product.reactivate_at = reactivate_at
        await enqueue(
            session,
            outbox,
            workflow=contract.REACTIVATION_WORKFLOW,
            workflow_id=contract.reactivation_workflow_id(
                str(product.id), product.deactivation_seq
            ),
            argument={
                "product_id": str(product.id),
                "deactivation": product.deactivation_seq,
                "reactivate_at": reactivate_at.isoformat(),
            },
            task_queue=settings.temporal_task_queue,
        )
    return product


async def activate_product(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    store_id: str,
    product_id: str,
) -> Product:
    store = await _store_for(session, actor, store_id, manage=True)
    product = await _product_of(session, store, product_id, lock=True)
    product.active = True
    product.reactivate_at = None
    product.deactivation_reason = None
    product.updated_at = now
    return product


async def reactivate_scheduled_product(
    *,
    session: AsyncSession,
    settings: PartnersSettings,
    actor: Principal | None,
    now: datetime,
    product_id: str,
    deactivation: int,
) -> tuple[Product, bool]:
    """The timer of one deactivation fired: bring the product back unless it changed since."""
    require_internal(actor, settings)
    parsed = _uuid_or_raise("product_id", product_id)
    product = await session.get(Product, parsed, with_for_update=True)
    if product is None:
        raise NotFound("product not found")
    if product.active or product.deactivation_seq != deactivation:
        return product, False
    product.active = True
    product.reactivate_at = None
    product.deactivation_reason = None
    product.updated_at = now
    return product, True
