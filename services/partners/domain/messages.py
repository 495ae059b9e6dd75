"""Messages to support: a partner's message, recorded first, then opened as a support ticket.

The ticket opening itself (a gRPC call to support) happens after the commit: the servicer tries
at once, the OpenPartnerTicket workflow (outbox row written here) retries until it succeeds.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import InvalidArgument, NotFound, Validator
from services.kit.outbox import enqueue
from services.kit.paging import Page, keyset_after as _after, parse_page as _parse_page
from services.partners.domain.common import (
    _CODE,
    TEXT_MAX,
    _email,
    _event,
    _fetch_page,
    _store_by_id,
    _store_for,
    _text,
    _timestamp,
    _uuid,
    _uuid_or_none,
    _uuid_or_raise,
    require_internal,
)
from services.partners.models import (
    MessageStatus,
    Order,
    Store,
    SupportCategory,
    SupportMessage,
    outbox,
)
from services.partners.settings import PartnersSettings
from workflows.contracts import partners as contract

_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class MessageView:
    message: SupportMessage
    store_name: str


async def _new_message(
    session: AsyncSession,
    settings: PartnersSettings,
    *,
    store: Store,
    now: datetime,
    category: SupportCategory,
    subject: str,
    body: str,
    reply_to: str | None,
    order_code: str | None = None,
    period: str | None = None,
    subject_kind: str = "",
    subject_id: str = "",
    retry_delay_seconds: int,
    respond_by: datetime | None = None,
) -> SupportMessage:
    """Records the message (pending_ticket) and the workflow that opens its ticket in support.

    Answers go to the operations contact e-mail unless the message names another address.
    """
    message = SupportMessage(
        id=uuid.uuid4(),
        store_id=store.id,
        category=category.value,
        subject=subject[:200],
        body=body,
        reply_to_email=reply_to or store.operations_email,
        order_code=order_code,
        period=period,
        subject_kind=subject_kind,
        subject_id=subject_id,
        status=MessageStatus.PENDING_TICKET.value,
        respond_by=respond_by,
        created_at=now,
    )
    session.add(message)
    await enqueue(
        session,
        outbox,
        workflow=contract.TICKET_WORKFLOW,
        workflow_id=contract.ticket_workflow_id(str(message.id)),
        argument={"message_id": str(message.id), "delay_seconds": retry_delay_seconds},
        task_queue=settings.temporal_task_queue,
    )
    return message


def _period(v: Validator, raw: str, now: datetime) -> str | None:
    value = raw.strip()
    if not value:
        return None
    match = _PERIOD.match(value)
    if not match or not 1 <= int(match.group(2)) <= 12:
        v.check(False, "period", "must be a month, YYYY-MM", code="string_pattern_mismatch")
        return None
    if (int(match.group(1)), int(match.group(2))) > (now.year, now.month):
        v.check(False, "period", "must not be in the future", code="in_the_future")
    return value


async def send_support_message(
    *,
    session: AsyncSession,
    settings: PartnersSettings,
    actor: Principal | None,
    now: datetime,
    store_id: str,
    category: str,
    subject: str,
    body: str,
    order_code: str,
    period: str,
    reply_to_email: str,
) -> SupportMessage:
    """The "send us a message" form. Questions on invoices, payments and orders name an order
    code or a period; content and bank-detail changes have their own requests."""
    store = await _store_for(session, actor, store_id, manage=True)
    v = Validator()
    parsed: SupportCategory | None = None
    if not category:
        v.require("category", category)
    elif category == SupportCategory.CONTENT_CHANGES:
        v.check(False, "category", "content changes are sent as a content change request")
    elif category == SupportCategory.BANK_DETAILS:
        v.check(False, "category", "bank details are changed with a bank-detail change request")
    else:
        try:
            parsed = SupportCategory(category)
        except ValueError:
            v.check(False, "category", "must be invoices_and_orders or other")
    clean_subject = _text(v, "subject", subject, 200)
    clean_body = _text(v, "body", body, TEXT_MAX, lines=True)
    reply_to = _email(v, "reply_to_email", reply_to_email, required=False)
    # "Not in the future" on the store's calendar: its month may have begun before UTC's.
    clean_period = _period(v, period, now.astimezone(ZoneInfo(store.timezone)))
    code = order_code.strip()
    if code and not _CODE.match(code):
        v.check(False, "order_code", "is not an order code", code="string_pattern_mismatch")
    if parsed == SupportCategory.INVOICES_AND_ORDERS and not code and clean_period is None:
        message = "name the order code or the period (YYYY-MM) the question is about"
        v.check(False, "order_code", message, code="order_or_period")
        v.check(False, "period", message, code="order_or_period")
    v.raise_if_any()
    assert parsed is not None
    if code:
        known = await session.scalar(
            select(literal(1)).where(Order.store_id == store.id, Order.code == code)
        )
        if known is None:
            raise InvalidArgument([("order_code", "is not an order of this store")])
    body_lines = [clean_body]
    if code:
        body_lines.append(f"Order code: {code}")
    if clean_period:
        body_lines.append(f"Period: {clean_period}")
    return await _new_message(
        session,
        settings,
        store=store,
        now=now,
        category=parsed,
        subject=clean_subject,
        body="\n\n".join(body_lines),
        reply_to=reply_to,
        order_code=code or None,
        period=clean_period,
        retry_delay_seconds=settings.ticket_retry_delay_seconds,
    )


async def list_support_messages(
    *,
    session: AsyncSession,
    actor: Principal | None,
    store_id: str,
    page_size: int,
    page_token: str,
) -> Page[SupportMessage]:
    v = Validator()
    page = _parse_page(v, "messages", page_size, page_token, [_timestamp, uuid.UUID])
    v.raise_if_any()
    store = await _store_for(session, actor, store_id, manage=False)
    columns = [SupportMessage.created_at, SupportMessage.id]
    query = (
        select(SupportMessage)
        .where(SupportMessage.store_id == store.id, *_after(page, columns, descending=True))
        .order_by(SupportMessage.created_at.desc(), SupportMessage.id.desc())
    )
    return await _fetch_page(
        session, query, page, "messages", lambda m: (m.created_at.isoformat(), m.id)
    )


async def get_support_message(
    *, session: AsyncSession, settings: PartnersSettings, actor: Principal | None, message_id: str
) -> MessageView:
    require_internal(actor, settings)
    message = await session.get(SupportMessage, _uuid_or_raise("message_id", message_id))
    if message is None:
        raise NotFound("message not found")
    store = await _store_by_id(session, message.store_id)
    return MessageView(message, store.name)


async def record_support_ticket(
    *,
    session: AsyncSession,
    settings: PartnersSettings,
    actor: Principal | None,
    now: datetime,
    message_id: str,
    ticket_id: str,
    error: str,
    ticket_number: int = 0,
) -> MessageView:
    """The ticket-opening workflow reports the ticket support opened (or its final refusal)."""
    require_internal(actor, settings)
    v = Validator()
    parsed = _uuid(v, "message_id", message_id)
    v.check(
        bool(ticket_id.strip()) != bool(error.strip()),
        "ticket_id",
        "give either the ticket id or the error",
    )
    v.check(len(ticket_id) <= 64, "ticket_id", "must be at most 64 characters")
    v.raise_if_any()
    assert parsed is not None
    if ticket_id.strip():
        message = await attach_ticket(
            session=session,
            now=now,
            message_id=parsed,
            ticket_id=ticket_id.strip(),
            ticket_number=ticket_number or None,
        )
    else:
        message = await note_ticket_error(session=session, message_id=parsed, error=error)
    store = await _store_by_id(session, message.store_id)
    return MessageView(message, store.name)


async def attach_ticket(
    *,
    session: AsyncSession,
    now: datetime,
    message_id: uuid.UUID,
    ticket_id: str,
    ticket_number: int | None = None,
) -> SupportMessage:
    """Records the support ticket of a message; the first ticket recorded stays (idempotent).

    Also the trusted path of the servicer, after it opened the ticket with the partner's token.
    """
    message = await session.get(SupportMessage, message_id, with_for_update=True)
    if message is None:
        raise NotFound("message not found")
    if message.status == MessageStatus.TICKET_OPENED:
        if message.ticket_number is None and message.ticket_id == ticket_id:
            message.ticket_number = ticket_number
        return message
    message.status = MessageStatus.TICKET_OPENED.value
    message.ticket_id = ticket_id
    message.ticket_number = ticket_number
    message.opened_at = now
    message.last_error = None
    if message.subject_kind == "escalation":
        order_id = _uuid_or_none(message.subject_id)
        order = None if order_id is None else await session.get(Order, order_id)
        if order is not None:
            _event(
                session,
                order,
                now=now,
                kind="support_ticket.opened",
                actor="service:partners",
                ticket_id=ticket_id,
                ticket_number=ticket_number,
            )
    return message


async def note_ticket_error(
    *, session: AsyncSession, message_id: uuid.UUID, error: str
) -> SupportMessage:
    """Why a message still has no ticket; it stays pending_ticket."""
    message = await session.get(SupportMessage, message_id, with_for_update=True)
    if message is None:
        raise NotFound("message not found")
    if message.status == MessageStatus.PENDING_TICKET:
        message.last_error = error.strip()[:2000]
    return message
