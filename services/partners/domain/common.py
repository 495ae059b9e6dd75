"""What every aggregate's rules share: who the caller is, how a store is reached, small checks.

A store's data is reached only through `_store_for`, which answers NOT_FOUND for a store the
caller may not see (never revealing that it exists). The underscore names are the package's own
helpers, imported by its modules and by nothing outside `services.partners.domain`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import NotFound, PermissionDenied, Unauthenticated, Validator
from services.kit.paging import Page, PageQuery, page_token as encode_page_token
from services.partners.models import Order, OrderEvent, Store
from services.partners.settings import PartnersSettings

T = TypeVar("T")

PARTNER_MANAGER = "partner_manager"
SUPPORT_AGENT = "support_agent"
OPS_ADMIN = "ops_admin"

MAX_QUANTITY = 99
MAX_PRICE_CENTS = 100_000_000
TEXT_MAX = 5000
NOTE_MAX = 2000

_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
_PHONE = re.compile(r"^\+?[0-9 ().-]{6,32}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_ANY = re.compile(r"[\x00-\x1f\x7f]")


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
        v.check(False, field_name, "is not a valid id", code="uuid_parsing")
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
        v.check(False, field_name, f"must be at most {limit} characters", code="string_too_long")
    if (_CONTROL if lines else _CONTROL_ANY).search(value):
        v.check(
            False,
            field_name,
            "must not contain control characters",
            code="string_pattern_mismatch",
        )
    return value


def _email(v: Validator, field_name: str, raw: str, *, required: bool) -> str | None:
    if not raw.strip():
        if required:
            v.require(field_name, raw)
        return None
    try:
        return str(validate_email(raw.strip(), check_deliverability=False).normalized)
    except EmailNotValidError as error:
        v.check(False, field_name, str(error), code="value_error")
        return None


def _phone(v: Validator, field_name: str, raw: str) -> str:
    value = raw.strip()
    if value and not _PHONE.match(value):
        v.check(False, field_name, "is not a phone number", code="string_pattern_mismatch")
    return value


def _price(v: Validator, field_name: str, cents: int) -> None:
    v.check(
        0 <= cents <= MAX_PRICE_CENTS,
        field_name,
        f"must be between 0 and {MAX_PRICE_CENTS} (minor units of the store's currency)",
        code="less_than_equal",
    )


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
# Order events (the history an order shows)
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
