"""The daily check-in ("pointage"): once per store and local day; support sees who has not."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, exists, func, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import AlreadyExists, Validator
from services.kit.paging import (
    Page,
    keyset_after as _after,
    page_token as encode_page_token,
    parse_page as _parse_page,
)
from services.partners.domain.common import (
    _cut,
    _fetch_page,
    _require,
    _require_operator,
    _store_for,
)
from services.partners.models import CheckIn, Store

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


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
