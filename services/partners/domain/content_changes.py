"""Content changes: names, descriptions and prices change only through support.

A partner's request is also a message to support (category `content_changes`); an operator
applies it to the product (or adds the product) or rejects it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import FailedPrecondition, InvalidArgument, NotFound, Validator
from services.kit.paging import (
    Page,
    keyset_after as _after,
    page_token as encode_page_token,
    parse_page as _parse_page,
)
from services.partners.domain.common import (
    NOTE_MAX,
    TEXT_MAX,
    _cut,
    _email,
    _price,
    _require_operator,
    _store_by_id,
    _store_for,
    _text,
    _timestamp,
    _uuid,
    actor_label,
)
from services.partners.domain.menu import _new_product, _product_of
from services.partners.domain.messages import _new_message
from services.partners.models import (
    ContentChange,
    ContentChangeStatus,
    Product,
    SupportCategory,
    SupportMessage,
)
from services.partners.settings import PartnersSettings


@dataclass(frozen=True)
class ContentChangeView:
    change: ContentChange
    message: SupportMessage


async def submit_content_change(
    *,
    session: AsyncSession,
    settings: PartnersSettings,
    actor: Principal | None,
    now: datetime,
    store_id: str,
    product_id: str,
    proposed_name: str,
    proposed_description: str,
    proposed_price_cents: int,
    note: str,
    reply_to_email: str,
) -> ContentChangeView:
    """Names and descriptions change only through support: a request and its ticket."""
    store = await _store_for(session, actor, store_id, manage=True)
    v = Validator()
    name = _text(v, "proposed_name", proposed_name, 200, required=False)
    description = _text(
        v, "proposed_description", proposed_description, TEXT_MAX, required=False, lines=True
    )
    clean_note = _text(v, "note", note, NOTE_MAX, required=False, lines=True)
    reply_to = _email(v, "reply_to_email", reply_to_email, required=False)
    product: Product | None = None
    if product_id.strip():
        v.check(proposed_price_cents == 0, "proposed_price_cents", "change prices directly")
        v.check(
            bool(name or description),
            "proposed_name",
            "give a new name or a new description",
        )
        v.raise_if_any()
        product = await _product_of(session, store, product_id)
        if (name or product.name) == product.name and (
            description or product.description
        ) == product.description:
            raise InvalidArgument([("proposed_name", "is the same as the product's")])
    else:
        v.require("proposed_name", name)
        _price(v, "proposed_price_cents", proposed_price_cents)
        v.check(proposed_price_cents > 0, "proposed_price_cents", "a new product needs a price")
        v.raise_if_any()
    if product is not None:
        subject = f"Content change: {product.name}"
        lines = [f"Product: {product.name} ({product.id})"]
        if name:
            lines.append(f"New name: {name}")
        if description:
            lines.append(f"New description: {description}")
    else:
        subject = f"New product: {name}"
        lines = [f"New product: {name}", f"Price: {proposed_price_cents} {store.currency} cents"]
        if description:
            lines.append(f"Description: {description}")
    if clean_note:
        lines.append(clean_note)
    change_id = uuid.uuid4()
    message = await _new_message(
        session,
        settings,
        store=store,
        now=now,
        category=SupportCategory.CONTENT_CHANGES,
        subject=subject,
        body="\n".join(lines),
        reply_to=reply_to,
        subject_kind="content_change",
        subject_id=str(change_id),
        retry_delay_seconds=settings.ticket_retry_delay_seconds,
    )
    change = ContentChange(
        id=change_id,
        store_id=store.id,
        product_id=product.id if product else None,
        proposed_name=name or None,
        proposed_description=description or None,
        proposed_price_cents=proposed_price_cents if product is None else None,
        note=clean_note,
        status=ContentChangeStatus.PENDING.value,
        support_message_id=message.id,
        created_at=now,
    )
    session.add(change)
    await session.flush()
    return ContentChangeView(change, message)


async def list_content_changes(
    *,
    session: AsyncSession,
    actor: Principal | None,
    store_id: str,
    page_size: int,
    page_token: str,
) -> Page[ContentChangeView]:
    v = Validator()
    page = _parse_page(v, "content-changes", page_size, page_token, [_timestamp, uuid.UUID])
    v.raise_if_any()
    store = await _store_for(session, actor, store_id, manage=False)
    columns = [ContentChange.created_at, ContentChange.id]
    rows = (
        await session.execute(
            select(ContentChange, SupportMessage)
            .join(SupportMessage, SupportMessage.id == ContentChange.support_message_id)
            .where(ContentChange.store_id == store.id, *_after(page, columns, descending=True))
            .order_by(ContentChange.created_at.desc(), ContentChange.id.desc())
            .limit(page.size + 1)
        )
    ).all()
    items, more = _cut([ContentChangeView(c, m) for c, m in rows], page)
    token = ""
    if more:
        last = items[-1].change
        token = encode_page_token("content-changes", (last.created_at.isoformat(), last.id))
    return Page(items, token)


async def decide_content_change(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    content_change_id: str,
    approve: bool,
    note: str,
) -> tuple[ContentChangeView, Product | None]:
    """Operators apply a content change (or reject it with a note)."""
    actor = _require_operator(actor)
    v = Validator()
    parsed = _uuid(v, "content_change_id", content_change_id)
    clean_note = _text(v, "note", note, NOTE_MAX, required=not approve, lines=True)
    v.raise_if_any()
    change = await session.get(ContentChange, parsed, with_for_update=True)
    if change is None:
        raise NotFound("content change not found")
    if change.status != ContentChangeStatus.PENDING:
        raise FailedPrecondition(
            f"this content change is already {change.status}", reason="already_decided"
        )
    product: Product | None = None
    if approve:
        if change.product_id is not None:
            product = await session.get(Product, change.product_id, with_for_update=True)
            assert product is not None
            product.name = change.proposed_name or product.name
            if change.proposed_description is not None:
                product.description = change.proposed_description
            product.updated_at = now
        else:
            store = await _store_by_id(session, change.store_id)
            product = _new_product(
                session,
                store,
                now,
                change.proposed_name or "",
                change.proposed_description or "",
                change.proposed_price_cents or 0,
            )
            await session.flush()  # the product row first: the change refers to it
            change.product_id = product.id
    change.status = (ContentChangeStatus.APPLIED if approve else ContentChangeStatus.REJECTED).value
    change.decision_note = clean_note or None
    change.decided_by = actor_label(actor)
    change.decided_at = now
    message = await session.get(SupportMessage, change.support_message_id)
    assert message is not None
    await session.flush()
    return ContentChangeView(change, message), product
