"""Which clients a group holds: a client is available for a provider's groups when it has an active
relationship with the provider and is in none of its groups (a client belongs to one group per
provider at most); the available clients, a group's clients, and adding clients to a group.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.groups.domain.authorisation import group_for_manager, provider_for_manager
from services.groups.domain.common import (
    ClientView,
    among,
    client_views,
    constraint_name,
    fold,
    page_of,
)
from services.groups.domain.relationships import active_relationship
from services.groups.models import ClientBusiness, ClientGroup, GroupMember, Relationship
from services.kit.auth import Principal
from services.kit.errors import AlreadyExists, InvalidArgument, Validator
from services.kit.paging import Page, keyset_after as _after, parse_page as _parse_page


def _name_filter(query: str) -> Any:
    folded = fold(query)
    if not folded:
        return None
    escaped = folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return ClientBusiness.search_name.like(f"%{escaped}%", escape="\\")


async def list_available_clients(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    provider_id: str,
    query: str,
    page_size: int,
    page_token: str,
) -> Page[ClientView]:
    """Clients with an active relationship and in none of the provider's groups, by name."""
    provider = provider_for_manager(actor, provider_id)
    v = Validator()
    v.check(len(query) <= 200, "query", "must be at most 200 characters")
    page = _parse_page(v, "available", page_size, page_token, [str, uuid.UUID])
    v.raise_if_any()
    columns = [ClientBusiness.search_name, ClientBusiness.id]
    in_a_group = select(GroupMember.client_id).where(GroupMember.provider_id == provider)
    statement = (
        select(ClientBusiness)
        .join(Relationship, Relationship.client_id == ClientBusiness.id)
        .where(
            active_relationship(provider, now),
            ClientBusiness.id.not_in(in_a_group),
            *_after(page, columns),
        )
        .order_by(*columns)
        .limit(page.size + 1)
    )
    if (name := _name_filter(query)) is not None:
        statement = statement.where(name)
    rows = list((await session.execute(statement)).scalars())
    paged = page_of(rows, page, "available", lambda c: (c.search_name, c.id))
    return Page(await client_views(session, paged.items), paged.next_page_token)


async def check_clients_available(
    session: AsyncSession,
    provider_id: uuid.UUID,
    now: datetime,
    field_name: str,
    client_ids: Sequence[uuid.UUID],
) -> None:
    """Each client has an active relationship and no group of this provider.

    The relationships are locked (FOR SHARE) until the transaction ends, so an expiry cannot slip
    between this check and the insert; the unique (provider_id, client_id) of group_members is
    what settles two concurrent requests for one client.
    """
    active = set(
        (
            await session.execute(
                select(Relationship.client_id)
                .where(
                    active_relationship(provider_id, now),
                    among(Relationship.client_id, client_ids),
                )
                .with_for_update(read=True)
            )
        ).scalars()
    )
    taken = dict(
        (
            await session.execute(
                select(GroupMember.client_id, ClientGroup.name)
                .join(ClientGroup, ClientGroup.id == GroupMember.group_id)
                .where(
                    GroupMember.provider_id == provider_id,
                    among(GroupMember.client_id, client_ids),
                )
            )
        ).all()
    )
    missing = [
        (f"{field_name}[{i}]", "has no active business relationship with this provider")
        for i, client in enumerate(client_ids)
        if client not in active
    ]
    if missing:
        raise InvalidArgument(missing)
    clashes = [
        (f"{field_name}[{i}]", f"is already in the group {taken[client]!r}")
        for i, client in enumerate(client_ids)
        if client in taken
    ]
    if clashes:
        raise _client_taken(clashes)


def _client_taken(violations: list[tuple[str, str]] | None = None) -> AlreadyExists:
    return AlreadyExists(
        "a client is already in a group of this provider (a client belongs to one group at most)",
        reason="client_already_grouped",
        violations=violations or [],
    )


async def insert_members(
    session: AsyncSession,
    group: ClientGroup,
    now: datetime,
    client_ids: Sequence[uuid.UUID],
) -> None:
    """Adds clients; a concurrent request that took one of them first makes this ALREADY_EXISTS."""
    if not client_ids:
        return
    try:
        async with session.begin_nested():
            await session.execute(
                pg_insert(GroupMember),
                [
                    {
                        "group_id": group.id,
                        "client_id": client,
                        "provider_id": group.provider_id,
                        "added_at": now,
                    }
                    for client in client_ids
                ],
            )
    except IntegrityError as error:
        if "uq_group_members_provider_id" in constraint_name(error):
            raise _client_taken() from None
        raise


async def list_group_clients(
    *,
    session: AsyncSession,
    actor: Principal | None,
    provider_id: str,
    group_id: str,
    query: str,
    page_size: int,
    page_token: str,
) -> Page[ClientView]:
    group = await group_for_manager(session, actor, provider_id, group_id)
    v = Validator()
    v.check(len(query) <= 200, "query", "must be at most 200 characters")
    page = _parse_page(v, "group_clients", page_size, page_token, [str, uuid.UUID])
    v.raise_if_any()
    columns = [ClientBusiness.search_name, ClientBusiness.id]
    statement = (
        select(ClientBusiness)
        .join(GroupMember, GroupMember.client_id == ClientBusiness.id)
        .where(GroupMember.group_id == group.id, *_after(page, columns))
        .order_by(*columns)
        .limit(page.size + 1)
    )
    if (name := _name_filter(query)) is not None:
        statement = statement.where(name)
    rows = list((await session.execute(statement)).scalars())
    paged = page_of(rows, page, "group_clients", lambda c: (c.search_name, c.id))
    return Page(await client_views(session, paged.items), paged.next_page_token)
