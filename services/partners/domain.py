"""Partners' rules: stores, menu, orders, the out-of-stock escalation, couriers, check-ins,
promotions, messages to support, content and bank-detail changes.

Every function takes the caller's session keyword-only and never commits: the servicer owns the
transaction, so a refused request leaves nothing half-written. Time comes in as `now`; the caller
is `actor`, the verified principal. A store's data is reached only through `_store_for`, which
answers NOT_FOUND for a store the caller may not see (never revealing that it exists); rows of a
store are always looked up with the store's id in the query, so a foreign id is NOT_FOUND too.

Workflow starts (escalation, ticket opening, product reactivation) are outbox rows written in the
same transaction as the change that needs them.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    and_,
    exists,
    func,
    literal,
    literal_column,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Validator,
)
from services.kit.outbox import enqueue
from services.kit.paging import (
    Page,
    PageQuery,
    keyset_after as _after,
    page_token as encode_page_token,
    parse_page as _parse_page,
)
from services.kit.temporal import ORDER, TENANT
from services.partners import contract
from services.partners.models import (
    HISTORY_STATUSES,
    BankChangeStatus,
    BankDetailChange,
    CheckIn,
    ContentChange,
    ContentChangeStatus,
    CourierReport,
    CourierReportReason,
    Escalation,
    EscalationAnswer,
    EscalationStatus,
    ItemStatus,
    MessageStatus,
    Order,
    OrderEvent,
    OrderItem,
    OrderStatus,
    Payment,
    PaymentKind,
    Product,
    Promotion,
    PromotionKind,
    PromotionStatus,
    ProofDocument,
    RefundFunder,
    Store,
    SupportCategory,
    SupportMessage,
    outbox,
)
from services.partners.settings import PartnersSettings

T = TypeVar("T")

PARTNER_MANAGER = "partner_manager"
SUPPORT_AGENT = "support_agent"
OPS_ADMIN = "ops_admin"
DELIVERY_PARTNER = "delivery_partner"

MAX_ITEMS_PER_ORDER = 100
MAX_QUANTITY = 99
MAX_PRICE_CENTS = 100_000_000
MAX_REACTIVATION_DAYS = 90
MAX_PROMOTION_DAYS = 366
MAX_PROMOTION_PRODUCTS = 200
TEXT_MAX = 5000
NOTE_MAX = 2000

_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
_PHONE = re.compile(r"^\+?[0-9 ().-]{6,32}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_BIC = re.compile(r"^[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$")
_IBAN = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_ANY = re.compile(r"[\x00-\x1f\x7f]")
_FILENAME_BAD = re.compile(r"[\x00-\x1f\x7f/\\]")

# Proof documents: the declared type must match what the bytes are.
PROOF_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
}

# The lists' sort keys live in the page token together with the filters they were read with.
_HISTORY = "history"
_IN_PROGRESS = "in-progress"


# --------------------------------------------------------------------------------------------
# Callers
# --------------------------------------------------------------------------------------------


def _require(actor: Principal | None) -> Principal:
    if actor is None:
        raise Unauthenticated("authentication required")
    return actor


def is_operator(actor: Principal | None) -> bool:
    """Platform staff: support agents and ops admins (roles only an operator org can grant)."""
    return (
        actor is not None and not actor.is_service and actor.has_any_role(SUPPORT_AGENT, OPS_ADMIN)
    )


def is_internal(actor: Principal | None, settings: PartnersSettings) -> bool:
    return actor is not None and actor.is_service and actor.username in settings.trusted_clients


def _require_operator(actor: Principal | None) -> Principal:
    actor = _require(actor)
    if not is_operator(actor):
        raise PermissionDenied("only platform operators may do this")
    return actor


def _require_ops_admin_or_internal(
    actor: Principal | None, settings: PartnersSettings
) -> Principal:
    actor = _require(actor)
    if is_internal(actor, settings):
        return actor
    if actor.is_service or not actor.has_any_role(OPS_ADMIN):
        raise PermissionDenied("only the platform (or an ops admin) may do this")
    return actor


def require_internal(actor: Principal | None, settings: PartnersSettings) -> Principal:
    """Internal calls: a service token of a trusted client (the platform, the worker)."""
    actor = _require(actor)
    if not is_internal(actor, settings):
        raise PermissionDenied("this call is internal: a trusted service token is required")
    return actor


def actor_label(actor: Principal) -> str:
    return f"service:{actor.username}" if actor.is_service else f"user:{actor.subject}"


def _uuid(v: Validator, field_name: str, raw: str, *, required: bool = True) -> uuid.UUID | None:
    if not raw.strip():
        if required:
            v.require(field_name, raw)
        return None
    try:
        return uuid.UUID(raw.strip())
    except ValueError:
        v.check(False, field_name, "is not a valid id")
        return None


def _uuid_or_raise(field_name: str, raw: str) -> uuid.UUID:
    v = Validator()
    value = _uuid(v, field_name, raw)
    v.raise_if_any()
    assert value is not None
    return value


def _uuid_or_none(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw.strip())
    except ValueError:
        return None


async def _store_for(
    session: AsyncSession,
    actor: Principal | None,
    store_id: str,
    *,
    manage: bool,
    lock: bool = False,
) -> Store:
    """The store, if the caller may see it: its partner managers always, operators to read.

    Anyone else (another store's manager included) gets NOT_FOUND, exactly as for an unknown id.
    """
    parsed = _may_see_store(actor, store_id, manage=manage)
    store = await session.get(Store, parsed, with_for_update=lock)
    if store is None:
        raise NotFound("store not found")
    return store


def _may_see_store(actor: Principal | None, store_id: str, *, manage: bool) -> uuid.UUID:
    """The store's id if the caller may see it (from the token alone), else NOT_FOUND."""
    actor = _require(actor)
    parsed = _uuid_or_raise("store_id", store_id)
    allowed = (not actor.is_service and actor.has_role(str(parsed), PARTNER_MANAGER)) or (
        not manage and is_operator(actor)
    )
    if not allowed:
        raise NotFound("store not found")
    return parsed


async def _rows_of_store(
    session: AsyncSession, store_id: uuid.UUID, found: Page[Row[Any]]
) -> Page[Row[Any]]:
    """A store's rows were read before its own row: a non-empty page proves the store exists
    (foreign key); an empty one must still tell an unregistered store (NOT_FOUND) apart."""
    if not found.items:
        await _store_by_id(session, store_id)
    return found


async def _store_by_id(session: AsyncSession, store_id: uuid.UUID) -> Store:
    store = await session.get(Store, store_id)
    if store is None:
        raise NotFound("store not found")
    return store


# --------------------------------------------------------------------------------------------
# Small checks
# --------------------------------------------------------------------------------------------


def _text(
    v: Validator,
    field_name: str,
    raw: str,
    limit: int,
    *,
    required: bool = True,
    lines: bool = False,
) -> str:
    value = raw.strip()
    if required:
        v.require(field_name, value)
    if len(value) > limit:
        v.check(False, field_name, f"must be at most {limit} characters")
    if (_CONTROL if lines else _CONTROL_ANY).search(value):
        v.check(False, field_name, "must not contain control characters")
    return value


def _email(v: Validator, field_name: str, raw: str, *, required: bool) -> str | None:
    if not raw.strip():
        if required:
            v.require(field_name, raw)
        return None
    try:
        return str(validate_email(raw.strip(), check_deliverability=False).normalized)
    except EmailNotValidError as error:
        v.check(False, field_name, str(error))
        return None


def _phone(v: Validator, field_name: str, raw: str) -> str:
    value = raw.strip()
    if value and not _PHONE.match(value):
        v.check(False, field_name, "is not a phone number")
    return value


def _price(v: Validator, field_name: str, cents: int) -> None:
    v.check(
        0 <= cents <= MAX_PRICE_CENTS,
        field_name,
        f"must be between 0 and {MAX_PRICE_CENTS} (minor units of the store's currency)",
    )


def _timezone(v: Validator, field_name: str, raw: str) -> None:
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        v.check(False, field_name, "is not an IANA time zone, e.g. Europe/Paris")


def local_day(now: datetime, timezone: str) -> date:
    """The store's calendar day at `now`: a check-in belongs to the store's own day."""
    return now.astimezone(ZoneInfo(timezone)).date()


def _parse_day(v: Validator, field_name: str, raw: str) -> date | None:
    if not raw.strip():
        return None
    if _DAY.match(raw.strip()):
        try:
            return date.fromisoformat(raw.strip())
        except ValueError:
            pass
    v.check(False, field_name, "must be a date, YYYY-MM-DD")
    return None


def iban_is_valid(iban: str) -> bool:
    """ISO 13616: shape, then the mod-97 check of the rearranged number."""
    if not _IBAN.match(iban):
        return False
    rearranged = iban[4:] + iban[:4]
    digits = "".join(str(int(char, 36)) for char in rearranged)
    return int(digits) % 97 == 1


def mask_iban(iban: str | None) -> str:
    if not iban:
        return ""
    return f"{iban[:4]} **** {iban[-4:]}"


def _normalise_iban(raw: str) -> str:
    return re.sub(r"\s+", "", raw).upper()


# --------------------------------------------------------------------------------------------
# Pagination
# --------------------------------------------------------------------------------------------


def _timestamp(raw: str) -> datetime:
    return datetime.fromisoformat(raw)


def _cut(items: list[T], page: PageQuery) -> tuple[list[T], bool]:
    if len(items) > page.size:
        return items[: page.size], True
    return items, False


async def _fetch_page(
    session: AsyncSession,
    query: Select[Any],
    page: PageQuery,
    list_name: str,
    key: Callable[[Any], Sequence[object]],
    filters: str = "",
) -> Page[Any]:
    items = list((await session.execute(query.limit(page.size + 1))).scalars().all())
    items, more = _cut(items, page)
    token = encode_page_token(list_name, key(items[-1]), filters) if more else ""
    return Page(items=items, next_page_token=token)


# --------------------------------------------------------------------------------------------
# Outbox, events
# --------------------------------------------------------------------------------------------


def _event(
    session: AsyncSession,
    order: Order,
    *,
    now: datetime,
    kind: str,
    actor: str,
    **detail: Any,
) -> None:
    session.add(
        OrderEvent(
            order_id=order.id,
            at=now,
            kind=kind,
            actor=actor,
            detail={key: str(value) for key, value in detail.items() if value is not None},
        )
    )


async def _has_event(session: AsyncSession, order_id: uuid.UUID, kind: str) -> bool:
    found = await session.scalar(
        select(literal(1)).where(OrderEvent.order_id == order_id, OrderEvent.kind == kind).limit(1)
    )
    return found is not None


# --------------------------------------------------------------------------------------------
# Stores
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrganisationInfo:
    """What identity says of the organisation a store is opened for."""

    name: str
    kind: str


async def register_store(
    *,
    session: AsyncSession,
    settings: PartnersSettings,
    actor: Principal | None,
    now: datetime,
    store_id: str,
    organisation: OrganisationInfo | None,
    operations_email: str,
    phone: str,
    timezone: str,
    currency: str,
) -> Store:
    """Opens the back office of a delivery_partner organisation (ops admins)."""
    actor = _require(actor)
    if actor.is_service or not actor.has_any_role(OPS_ADMIN):
        raise PermissionDenied("only an ops admin may register a store")
    v = Validator()
    parsed = _uuid(v, "store_id", store_id)
    email = _email(v, "operations_email", operations_email, required=True)
    clean_phone = _phone(v, "phone", phone)
    zone = timezone.strip() or settings.default_timezone
    _timezone(v, "timezone", zone)
    money = currency.strip().upper() or settings.default_currency
    v.check(bool(_CURRENCY.match(money)), "currency", "must be an ISO 4217 code, e.g. EUR")
    if parsed is not None and organisation is None:
        v.check(False, "store_id", "is not an organisation")
    elif organisation is not None and organisation.kind != DELIVERY_PARTNER:
        v.check(False, "store_id", "is not a delivery_partner organisation")
    v.raise_if_any()
    assert parsed is not None and organisation is not None and email is not None
    if await session.get(Store, parsed) is not None:
        raise AlreadyExists(
            "this store is already registered",
            reason="store_exists",
            violations=[("store_id", "is already registered")],
        )
    store = Store(
        id=parsed,
        name=organisation.name,
        operations_email=email,
        phone=clean_phone,
        timezone=zone,
        currency=money,
        created_at=now,
        updated_at=now,
    )
    session.add(store)
    try:
        await session.flush()
    except IntegrityError:
        raise AlreadyExists(
            "this store is already registered",
            reason="store_exists",
            violations=[("store_id", "is already registered")],
        ) from None
    return store


async def get_store(*, session: AsyncSession, actor: Principal | None, store_id: str) -> Store:
    return await _store_for(session, actor, store_id, manage=False)


async def update_store_settings(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    store_id: str,
    operations_email: str,
    phone: str,
) -> Store:
    store = await _store_for(session, actor, store_id, manage=True, lock=True)
    v = Validator()
    email = _email(v, "operations_email", operations_email, required=True)
    clean_phone = _phone(v, "phone", phone)
    v.raise_if_any()
    assert email is not None
    store.operations_email = email
    store.phone = clean_phone
    store.updated_at = now
    return store


# --------------------------------------------------------------------------------------------
# Menu
# --------------------------------------------------------------------------------------------


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
        v.check(reactivate_at > now, "reactivate_time", "must be in the future")
        v.check(
            reactivate_at <= now + timedelta(days=MAX_REACTIVATION_DAYS),
            "reactivate_time",
            f"must be within {MAX_REACTIVATION_DAYS} days",
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


# --------------------------------------------------------------------------------------------
# Messages to support
# --------------------------------------------------------------------------------------------


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
        v.check(False, "period", "must be a month, YYYY-MM")
        return None
    if (int(match.group(1)), int(match.group(2))) > (now.year, now.month):
        v.check(False, "period", "must not be in the future")
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
    clean_period = _period(v, period, now)
    code = order_code.strip()
    if code and not _CODE.match(code):
        v.check(False, "order_code", "is not an order code")
    if parsed == SupportCategory.INVOICES_AND_ORDERS and not code and clean_period is None:
        message = "name the order code or the period (YYYY-MM) the question is about"
        v.check(False, "order_code", message)
        v.check(False, "period", message)
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
            session=session, now=now, message_id=parsed, ticket_id=ticket_id.strip()
        )
    else:
        message = await note_ticket_error(session=session, message_id=parsed, error=error)
    store = await _store_by_id(session, message.store_id)
    return MessageView(message, store.name)


async def attach_ticket(
    *, session: AsyncSession, now: datetime, message_id: uuid.UUID, ticket_id: str
) -> SupportMessage:
    """Records the support ticket of a message; the first ticket recorded stays (idempotent).

    Also the trusted path of the servicer, after it opened the ticket with the partner's token.
    """
    message = await session.get(SupportMessage, message_id, with_for_update=True)
    if message is None:
        raise NotFound("message not found")
    if message.status == MessageStatus.TICKET_OPENED:
        return message
    message.status = MessageStatus.TICKET_OPENED.value
    message.ticket_id = ticket_id
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


# --------------------------------------------------------------------------------------------
# Content changes
# --------------------------------------------------------------------------------------------


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
    if escalation is not None:
        product = await session.get(Product, escalation.product_id)
        if product is not None:
            names[product.id] = product.name
    return OrderView(order, items, payments, events, escalation, report, names)


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


@dataclass(frozen=True, slots=True)
class ImportedOrder:
    """One order of an imported history. Times are microseconds since the epoch: a bulk import
    converts them in SQL rather than building 100,000 datetimes in Python."""

    code: str
    status: str
    created_us: int | None
    closed_us: int | None
    total_cents: int
    paid_cents: int
    cancellation_reason: str
    refund_reason: str
    refund_funded_by: str
    customer_name: str
    courier_name: str


_IMPORT_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS orders_import (
    store_id uuid, code text, status text, customer_name text, courier_name text,
    currency text, total_cents bigint, paid_cents bigint, cancellation_reason text,
    refund_reason text, refund_funded_by text, created_us bigint, closed_us bigint
) ON COMMIT DELETE ROWS
"""
_IMPORT_COLUMNS = (
    "store_id",
    "code",
    "status",
    "customer_name",
    "courier_name",
    "currency",
    "total_cents",
    "paid_cents",
    "cancellation_reason",
    "refund_reason",
    "refund_funded_by",
    "created_us",
    "closed_us",
)
_IMPORT_INSERT = """
INSERT INTO orders (
    id, store_id, code, status, customer_name, customer_phone, courier_name, courier_phone,
    currency, total_cents, paid_cents, cancellation_reason, refund_reason, refund_funded_by,
    escalation_status, created_at, closed_at, updated_at
)
SELECT
    gen_random_uuid(), store_id, code, status, customer_name, '', courier_name, '',
    currency, total_cents, paid_cents, cancellation_reason, refund_reason, refund_funded_by,
    NULL,
    timestamptz 'epoch' + created_us * interval '1 microsecond',
    timestamptz 'epoch' + closed_us * interval '1 microsecond',
    $1
FROM orders_import
ON CONFLICT (store_id, code) DO NOTHING
"""


async def import_orders(
    *,
    session: AsyncSession,
    settings: PartnersSettings,
    actor: Principal | None,
    now: datetime,
    store_id: str,
    orders: Sequence[ImportedOrder],
) -> tuple[int, int]:
    """Bulk import of a store's history (a store joining with its past orders, demo data).

    Rows go through COPY into a temporary table, then one INSERT … ON CONFLICT DO NOTHING on
    (store_id, code): a re-run imports nothing twice. Returns (imported, skipped).
    """
    _require_ops_admin_or_internal(actor, settings)
    v = Validator()
    parsed_store = _uuid(v, "store_id", store_id)
    v.check(bool(orders), "orders", "is empty")
    v.check(
        len(orders) <= settings.import_max_orders,
        "orders",
        f"at most {settings.import_max_orders} per call",
    )
    statuses = {s.value for s in OrderStatus}
    funders = {f.value for f in RefundFunder}
    latest = int((now + timedelta(minutes=5)).timestamp() * 1_000_000)
    seen: set[str] = set()
    for index, item in enumerate(orders):
        if len(v.violations) >= 20:
            break
        where = f"orders[{index}]"
        if not _CODE.match(item.code):
            v.check(False, f"{where}.code", "must be 1 to 40 letters, digits, '-' or '_'")
        elif item.code in seen:
            v.check(False, f"{where}.code", "appears twice in this batch")
        seen.add(item.code)
        v.check(item.status in statuses, f"{where}.status", "is not an order status")
        if item.created_us is None:
            v.check(False, f"{where}.create_time", "is required")
        elif item.created_us > latest:
            v.check(False, f"{where}.create_time", "is in the future")
        v.check(
            item.paid_cents >= 0 and 0 <= item.total_cents <= MAX_PRICE_CENTS,
            f"{where}.total_cents",
            "amounts must be between 0 and 100000000",
        )
        if item.status == OrderStatus.CANCELLED:
            v.check(bool(item.cancellation_reason), f"{where}.cancellation_reason", "is required")
        if item.status == OrderStatus.REFUNDED:
            v.check(bool(item.refund_reason), f"{where}.refund_reason", "is required")
            v.check(item.refund_funded_by in funders, f"{where}.refund_funded_by", "is required")
            v.check(item.paid_cents > 0, f"{where}.paid_cents", "a refunded order was paid")
    v.raise_if_any()
    assert parsed_store is not None
    store = await _store_by_id(session, parsed_store)
    accepted = OrderStatus.ACCEPTED.value
    records = [
        (
            store.id,
            item.code,
            item.status,
            item.customer_name[:200],
            item.courier_name[:200],
            store.currency,
            item.total_cents,
            item.paid_cents,
            item.cancellation_reason[:200] or None,
            item.refund_reason[:200] or None,
            item.refund_funded_by or None,
            item.created_us,
            # A closed order without its close time: closed when placed, as far as we know.
            item.created_us
            if item.closed_us is None and item.status != accepted
            else item.closed_us,
        )
        for item in orders
    ]
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    await driver.execute(_IMPORT_TABLE)
    await driver.execute("TRUNCATE orders_import")
    await driver.copy_records_to_table("orders_import", records=records, columns=_IMPORT_COLUMNS)
    status = await driver.execute(_IMPORT_INSERT, now)
    imported = int(str(status).rsplit(" ", 1)[-1])
    return imported, len(records) - imported


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
        v.check(period_start < period_end, "period_end", "must be after period_start")
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


# --------------------------------------------------------------------------------------------
# Out of stock: the escalation
# --------------------------------------------------------------------------------------------


def _end_escalation(
    order: Order, escalation: Escalation, *, now: datetime, status: EscalationStatus
) -> None:
    escalation.status = status.value
    escalation.updated_at = now
    order.escalation_status = status.value
    order.updated_at = now


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
        },
        task_queue=settings.temporal_task_queue,
        search_attributes={ORDER.name: str(order.id), TENANT.name: str(store.id)},
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
        parsed_replacement = _uuid(v, "replacement_product_id", replacement_product_id)
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
            raise InvalidArgument([("replacement_product_id", "is not on this store's menu")])
        if product.id == escalation.product_id:
            raise InvalidArgument([("replacement_product_id", "is the product that ran out")])
        if not product.active:
            raise InvalidArgument([("replacement_product_id", "is not available (deactivated)")])
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


async def escalation_view(session: AsyncSession, escalation: Escalation) -> EscalationView:
    order = await session.get(Order, escalation.order_id)
    product = await session.get(Product, escalation.product_id)
    ticket = ""
    if escalation.support_message_id is not None:
        message = await session.get(SupportMessage, escalation.support_message_id)
        ticket = (message.ticket_id or "") if message is not None else ""
    return EscalationView(
        escalation,
        order.code if order is not None else "",
        product.name if product is not None else "",
        ticket,
    )


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
            select(Escalation, Order.code, Product.name, SupportMessage.ticket_id)
            .join(Order, Order.id == Escalation.order_id)
            .join(Product, Product.id == Escalation.product_id)
            .outerjoin(SupportMessage, SupportMessage.id == Escalation.support_message_id)
            .where(Escalation.status == wanted, *_after(page, columns))
            .order_by(*columns)
            .limit(page.size + 1)
        )
    ).all()
    items, more = _cut([EscalationView(e, c, n, t or "") for e, c, n, t in rows], page)
    token = ""
    if more:
        last = items[-1].escalation
        token = encode_page_token(
            "escalations", (last.created_at.isoformat(), last.order_id), wanted
        )
    return Page(items, token)


# --------------------------------------------------------------------------------------------
# Couriers
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Daily check-in
# --------------------------------------------------------------------------------------------


async def check_in(
    *, session: AsyncSession, actor: Principal | None, now: datetime, store_id: str
) -> CheckIn:
    """Once per store and local day: the unique (store_id, day) decides between two at once."""
    store = await _store_for(session, actor, store_id, manage=True)
    actor = _require(actor)
    day = local_day(now, store.timezone)
    row = CheckIn(
        id=uuid.uuid4(), store_id=store.id, day=day, checked_in_at=now, user_id=actor.subject
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:
        raise AlreadyExists(
            f"the store already checked in on {day.isoformat()}", reason="already_checked_in"
        ) from None
    return row


async def list_check_ins(
    *,
    session: AsyncSession,
    actor: Principal | None,
    store_id: str,
    page_size: int,
    page_token: str,
) -> Page[CheckIn]:
    v = Validator()
    page = _parse_page(v, "check-ins", page_size, page_token, [date.fromisoformat])
    v.raise_if_any()
    store = await _store_for(session, actor, store_id, manage=False)
    query = select(CheckIn).where(CheckIn.store_id == store.id).order_by(CheckIn.day.desc())
    if page.after is not None:
        query = query.where(CheckIn.day < page.after[0])
    return await _fetch_page(session, query, page, "check-ins", lambda c: (c.day.isoformat(),))


@dataclass(frozen=True)
class MissingCheckIn:
    store: Store
    day: date
    last_check_in: datetime | None


async def list_stores_not_checked_in(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    day: str,
    page_size: int,
    page_token: str,
) -> Page[MissingCheckIn]:
    """Support's list: stores with no check-in on `day`, or on their own today (by name)."""
    _require_operator(actor)
    v = Validator()
    wanted = _parse_day(v, "day", day)
    page = _parse_page(v, "not-checked-in", page_size, page_token, [str, uuid.UUID], day)
    v.raise_if_any()
    the_day: ColumnElement[Any]
    if wanted is not None:
        the_day = literal(wanted)
    else:
        # Each store's own calendar day at `now`.
        the_day = func.date(func.timezone(Store.timezone, literal(now)))
    last = (
        select(func.max(CheckIn.checked_in_at))
        .where(CheckIn.store_id == Store.id)
        .scalar_subquery()
    )
    columns = [Store.name, Store.id]
    query = (
        select(Store, the_day.label("day"), last.label("last"))
        .where(
            ~exists().where(and_(CheckIn.store_id == Store.id, CheckIn.day == the_day)),
            *_after(page, columns),
        )
        .order_by(*columns)
        .limit(page.size + 1)
    )
    rows = (await session.execute(query)).all()
    items, more = _cut([MissingCheckIn(s, d, last_at) for s, d, last_at in rows], page)
    token = ""
    if more:
        token = encode_page_token("not-checked-in", (items[-1].store.name, items[-1].store.id), day)
    return Page(items, token)


# --------------------------------------------------------------------------------------------
# Promotions
# --------------------------------------------------------------------------------------------


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
        v.check(1 <= percent_off <= 90, "percent_off", "must be between 1 and 90")
    else:
        v.check(percent_off == 0, "percent_off", f"does not apply to {promotion.kind}")
    if promotion.kind == PromotionKind.AMOUNT_OFF:
        v.check(0 < amount_off_cents <= MAX_PRICE_CENTS, "amount_off_cents", "must be positive")
    else:
        v.check(amount_off_cents == 0, "amount_off_cents", f"does not apply to {promotion.kind}")
    v.check(0 <= min_order_cents <= MAX_PRICE_CENTS, "min_order_cents", "must not be negative")
    if promotion.kind == PromotionKind.AMOUNT_OFF and min_order_cents:
        v.check(
            amount_off_cents < min_order_cents,
            "amount_off_cents",
            "must be less than the minimum order",
        )
    v.check(starts_at is not None, "start_time", "is required")
    v.check(ends_at is not None, "end_time", "is required")
    if starts_at is not None and ends_at is not None:
        v.check(ends_at > starts_at, "end_time", "must be after start_time")
        v.check(ends_at > now, "end_time", "must be in the future")
        v.check(
            ends_at - starts_at <= timedelta(days=MAX_PROMOTION_DAYS),
            "end_time",
            f"a promotion lasts at most {MAX_PROMOTION_DAYS} days",
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


# --------------------------------------------------------------------------------------------
# Bank details
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BankChangeView:
    change: BankDetailChange
    proof: ProofDocument | None


async def _bank_change_view(session: AsyncSession, change: BankDetailChange) -> BankChangeView:
    """The change with its proof's metadata (never the bytes: `deferred` would be one more
    round trip, so the columns are read explicitly)."""
    row = (
        await session.execute(
            select(
                ProofDocument.filename,
                ProofDocument.content_type,
                ProofDocument.size_bytes,
                ProofDocument.sha256,
                ProofDocument.uploaded_at,
            ).where(ProofDocument.change_id == change.id)
        )
    ).first()
    proof = None
    if row is not None:
        proof = ProofDocument(
            change_id=change.id,
            store_id=change.store_id,
            filename=row.filename,
            content_type=row.content_type,
            size_bytes=row.size_bytes,
            sha256=row.sha256,
            uploaded_at=row.uploaded_at,
        )
    return BankChangeView(change, proof)


async def submit_bank_detail_change(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    store_id: str,
    iban: str,
    bic: str,
    account_holder: str,
) -> BankChangeView:
    """New bank details wait for a proof from the bank and an operator's approval."""
    v = Validator()
    clean_iban = _normalise_iban(iban)
    clean_bic = _normalise_iban(bic)
    v.require("iban", clean_iban)
    if clean_iban and not iban_is_valid(clean_iban):
        v.check(False, "iban", "is not a valid IBAN")
    v.require("bic", clean_bic)
    if clean_bic and not _BIC.match(clean_bic):
        v.check(False, "bic", "is not a valid BIC (8 or 11 characters)")
    holder = _text(v, "account_holder", account_holder, 200)
    v.raise_if_any()
    store = await _store_for(session, actor, store_id, manage=True)
    actor = _require(actor)
    change = BankDetailChange(
        id=uuid.uuid4(),
        store_id=store.id,
        iban=clean_iban,
        bic=clean_bic,
        account_holder=holder,
        status=BankChangeStatus.AWAITING_PROOF.value,
        requested_by=actor_label(actor),
        created_at=now,
        updated_at=now,
    )
    session.add(change)
    try:
        await session.flush()
    except IntegrityError:
        raise AlreadyExists(
            "a bank-detail change is already open for this store", reason="change_open"
        ) from None
    return BankChangeView(change, None)


async def _bank_change_of(
    session: AsyncSession, store: Store, change_id: str, *, lock: bool = False
) -> BankDetailChange:
    parsed = _uuid_or_none(change_id)
    query = select(BankDetailChange).where(
        BankDetailChange.id == parsed, BankDetailChange.store_id == store.id
    )
    if lock:
        query = query.with_for_update()
    change = None if parsed is None else await session.scalar(query)
    if change is None:
        raise NotFound("bank-detail change not found")
    return change


def check_proof(
    v: Validator, *, filename: str, content_type: str, content: bytes, max_bytes: int
) -> str:
    """Size, type, and bytes that are what the type says; returns the clean file name."""
    name = filename.strip()
    v.require("filename", name)
    if len(name) > 200 or _FILENAME_BAD.search(name):
        v.check(False, "filename", "must be a plain file name of at most 200 characters")
    kind = content_type.split(";", 1)[0].strip().lower()
    signatures = PROOF_SIGNATURES.get(kind)
    if signatures is None:
        v.check(False, "content_type", "must be application/pdf, image/png or image/jpeg")
    if not content:
        v.check(False, "content", "is empty")
    elif len(content) > max_bytes:
        v.check(False, "content", f"is larger than {max_bytes} bytes")
    elif signatures is not None and not content.startswith(signatures):
        v.check(False, "content", f"is not a {kind} document")
    return name


async def upload_bank_detail_proof(
    *,
    session: AsyncSession,
    settings: PartnersSettings,
    actor: Principal | None,
    now: datetime,
    store_id: str,
    change_id: str,
    filename: str,
    content_type: str,
    content: bytes,
) -> BankChangeView:
    """The bank's proof; a new upload replaces the previous one until an operator decides."""
    v = Validator()
    name = check_proof(
        v,
        filename=filename,
        content_type=content_type,
        content=content,
        max_bytes=settings.proof_max_bytes,
    )
    v.raise_if_any()
    store = await _store_for(session, actor, store_id, manage=True)
    actor = _require(actor)
    change = await _bank_change_of(session, store, change_id, lock=True)
    if change.status not in (BankChangeStatus.AWAITING_PROOF, BankChangeStatus.PROOF_SUBMITTED):
        raise FailedPrecondition(
            f"this change is {change.status}: no proof can be added", reason="change_decided"
        )
    document = await session.get(ProofDocument, change.id)
    if document is None:
        document = ProofDocument(change_id=change.id, store_id=store.id)
        session.add(document)
    document.filename = name
    document.content_type = content_type.split(";", 1)[0].strip().lower()
    document.size_bytes = len(content)
    document.sha256 = hashlib.sha256(content).hexdigest()
    document.content = content
    document.uploaded_by = actor_label(actor)
    document.uploaded_at = now
    change.status = BankChangeStatus.PROOF_SUBMITTED.value
    change.updated_at = now
    await session.flush()
    return await _bank_change_view(session, change)


async def list_bank_detail_changes(
    *,
    session: AsyncSession,
    actor: Principal | None,
    store_id: str,
    status: str,
    page_size: int,
    page_token: str,
) -> Page[BankChangeView]:
    """A store's own changes (newest first); operators may list every store's by status."""
    v = Validator()
    if status and status not in {s.value for s in BankChangeStatus}:
        v.check(False, "status", "is not a bank-detail change status")
    page = _parse_page(
        v, "bank-changes", page_size, page_token, [_timestamp, uuid.UUID], f"{store_id}|{status}"
    )
    v.raise_if_any()
    conditions: list[ColumnElement[bool]] = []
    if store_id.strip():
        store = await _store_for(session, actor, store_id, manage=False)
        conditions.append(BankDetailChange.store_id == store.id)
    else:
        _require_operator(actor)
    if status:
        conditions.append(BankDetailChange.status == status)
    columns = [BankDetailChange.created_at, BankDetailChange.id]
    query = (
        select(BankDetailChange)
        .where(*conditions, *_after(page, columns, descending=True))
        .order_by(BankDetailChange.created_at.desc(), BankDetailChange.id.desc())
    )
    found = await _fetch_page(
        session,
        query,
        page,
        "bank-changes",
        lambda c: (c.created_at.isoformat(), c.id),
        f"{store_id}|{status}",
    )
    views = [await _bank_change_view(session, change) for change in found.items]
    return Page(views, found.next_page_token)


async def get_bank_detail_proof(
    *, session: AsyncSession, actor: Principal | None, store_id: str, change_id: str
) -> ProofDocument:
    """The proof goes to its own store and to operators; to anyone else it does not exist."""
    parsed = _uuid_or_none(change_id)
    if store_id.strip():
        store = await _store_for(session, actor, store_id, manage=False)
        document = None
        if parsed is not None:
            document = await session.scalar(
                select(ProofDocument).where(
                    ProofDocument.change_id == parsed, ProofDocument.store_id == store.id
                )
            )
    else:
        _require_operator(actor)
        document = None if parsed is None else await session.get(ProofDocument, parsed)
    if document is None:
        raise NotFound("proof not found")
    return document


async def decide_bank_detail_change(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    change_id: str,
    approve: bool,
    reason: str,
) -> BankChangeView:
    """Operators approve (the store's bank details change now) or reject with a reason. Only a
    change with an uploaded proof can be decided."""
    actor = _require_operator(actor)
    v = Validator()
    parsed = _uuid(v, "change_id", change_id)
    clean_reason = _text(v, "reason", reason, NOTE_MAX, required=not approve, lines=True)
    v.raise_if_any()
    change = await session.get(BankDetailChange, parsed, with_for_update=True)
    if change is None:
        raise NotFound("bank-detail change not found")
    if change.status == BankChangeStatus.AWAITING_PROOF:
        raise FailedPrecondition(
            "no proof from the bank has been uploaded for this change", reason="proof_missing"
        )
    if change.status != BankChangeStatus.PROOF_SUBMITTED:
        raise FailedPrecondition(f"this change is already {change.status}", reason="decided")
    if approve:
        store = await session.get(Store, change.store_id, with_for_update=True)
        assert store is not None
        store.iban = change.iban
        store.bic = change.bic
        store.account_holder = change.account_holder
        store.updated_at = now
    change.status = (BankChangeStatus.APPROVED if approve else BankChangeStatus.REJECTED).value
    change.decision_reason = clean_reason or None
    change.decided_by = actor_label(actor)
    change.decided_at = now
    change.updated_at = now
    return await _bank_change_view(session, change)
