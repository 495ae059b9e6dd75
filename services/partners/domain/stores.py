"""Stores: registering a delivery partner's organisation as a store, reading it, its settings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import AlreadyExists, PermissionDenied, Validator
from services.partners.domain.common import OPS_ADMIN, _email, _phone, _require, _store_for, _uuid
from services.partners.models import Store
from services.partners.settings import PartnersSettings

DELIVERY_PARTNER = "delivery_partner"
_CURRENCY = re.compile(r"^[A-Z]{3}$")


def _timezone(v: Validator, field_name: str, raw: str) -> None:
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        v.check(False, field_name, "is not an IANA time zone, e.g. Europe/Paris", code="time_zone")


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
    v.check(
        bool(_CURRENCY.match(money)),
        "currency",
        "must be an ISO 4217 code, e.g. EUR",
        code="string_pattern_mismatch",
    )
    if parsed is not None and organisation is None:
        v.check(False, "store_id", "is not an organisation", code="unknown_organisation")
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
    timezone: str = "",
) -> Store:
    """The store's contact details, and (when given) the IANA time zone its days are counted
    in: the check-in day, support's "today" for it."""
    store = await _store_for(session, actor, store_id, manage=True, lock=True)
    v = Validator()
    email = _email(v, "operations_email", operations_email, required=True)
    clean_phone = _phone(v, "phone", phone)
    zone = timezone.strip()
    if zone:
        _timezone(v, "timezone", zone)
    v.raise_if_any()
    assert email is not None
    store.operations_email = email
    store.phone = clean_phone
    if zone:
        store.timezone = zone
    store.updated_at = now
    return store
