"""What the groups' rules share: parsing of ids and names, keyset pages, caps on one call's lists,
and the program-account counts behind every view of a client.

Nothing here is a rule of its own; each aggregate module imports what it needs from here.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Uuid, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.groups.models import ClientBusiness, GroupMember, ProgramAccount
from services.kit.errors import Validator
from services.kit.paging import Page, PageQuery, page_token as _page_token

T = TypeVar("T")

SYSTEM_INITIATOR = "system"

# Caps on one call's lists: bounds on what a request can make the service hold, not rules.
MAX_CLIENTS_PER_CALL = 10_000
MAX_EMPLOYEES_PER_CALL = 500
MAX_RECORDS_PER_CALL = 50_000
NAME_MAX = 100


def fold(value: str) -> str:
    """Search form of a name: accents stripped, case folded, spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", value)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(bare.casefold().split())


def among(column: Any, values: Iterable[uuid.UUID]) -> Any:
    """`column = ANY($1)` with one array parameter: any number of ids, one bind, one plan."""
    return column == any_(bindparam(None, list(values), type_=ARRAY(Uuid)))


def collapse_spaces(value: str) -> str:
    return " ".join(value.split())


def parse_uuid(v: Validator, field_name: str, raw: str) -> uuid.UUID | None:
    if not raw.strip():
        v.require(field_name, raw)
        return None
    try:
        return uuid.UUID(raw.strip())
    except ValueError:
        v.check(False, field_name, "must be a UUID", code="uuid_parsing")
        return None


def uuid_or_raise(field_name: str, raw: str) -> uuid.UUID:
    v = Validator()
    parsed = parse_uuid(v, field_name, raw)
    v.raise_if_any()
    assert parsed is not None
    return parsed


def uuid_list(v: Validator, field_name: str, raws: Sequence[str], limit: int) -> list[uuid.UUID]:
    """Parses a list of ids, naming each bad or repeated one (`client_ids[2]`)."""
    v.check(len(raws) <= limit, field_name, f"must hold at most {limit} ids")
    parsed: list[uuid.UUID] = []
    seen: set[uuid.UUID] = set()
    for index, raw in enumerate(raws[:limit]):
        value = parse_uuid(v, f"{field_name}[{index}]", raw)
        if value is None:
            continue
        if value in seen:
            v.check(False, f"{field_name}[{index}]", "is listed twice", code="unique_items")
            continue
        seen.add(value)
        parsed.append(value)
    return parsed


def constraint_name(error: IntegrityError) -> str:
    for candidate in (error.orig, getattr(error.orig, "__cause__", None)):
        name = getattr(candidate, "constraint_name", None)
        if isinstance(name, str):
            return name
    return str(error.orig)


def page_of(
    rows: list[T], page: PageQuery, list_name: str, key: Callable[[T], Sequence[object]]
) -> Page[T]:
    token = ""
    if len(rows) > page.size:
        rows = rows[: page.size]
        token = _page_token(list_name, key(rows[-1]))
    return Page(items=rows, next_page_token=token)


@dataclass(frozen=True)
class ClientView:
    id: uuid.UUID
    name: str
    program_accounts: int


async def accounts_by_client(
    session: AsyncSession, client_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, int]:
    ids = list(client_ids)
    if not ids:
        return {}
    rows = await session.execute(
        select(ProgramAccount.client_id, func.count())
        .where(among(ProgramAccount.client_id, ids))
        .group_by(ProgramAccount.client_id)
    )
    counts: dict[uuid.UUID, int] = dict.fromkeys(ids, 0)
    counts.update({client: int(count) for client, count in rows.all()})
    return counts


async def group_account_count(session: AsyncSession, group_id: uuid.UUID) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(GroupMember)
        .join(ProgramAccount, ProgramAccount.client_id == GroupMember.client_id)
        .where(GroupMember.group_id == group_id)
    )
    return int(count or 0)


async def client_views(
    session: AsyncSession, clients: Sequence[ClientBusiness]
) -> list[ClientView]:
    counts = await accounts_by_client(session, (c.id for c in clients))
    return [ClientView(c.id, c.name, counts.get(c.id, 0)) for c in clients]
