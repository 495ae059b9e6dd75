"""Client groups: create, read, list and delete (typed SUPPRIMER / DELETE), and the rule that a
group's name is unique within the provider, also against previously deleted groups.

Deleting a group records the process request that revokes its access; which clients a group may
hold is `membership`, and saving changes to a group is `group_changes`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.groups.domain.authorisation import group_for_manager, provider_for_manager
from services.groups.domain.common import (
    MAX_CLIENTS_PER_CALL,
    NAME_MAX,
    collapse_spaces,
    constraint_name,
    page_of,
    uuid_list,
)
from services.groups.domain.employees import AssignmentView
from services.groups.domain.membership import check_clients_available, insert_members
from services.groups.domain.process_requests import record_request
from services.groups.models import (
    ClientGroup,
    EmployeeAssignment,
    GroupMember,
    Operation,
    ProcessRequest,
    ProgramAccount,
)
from services.kit.auth import Principal
from services.kit.errors import AlreadyExists, Validator
from services.kit.paging import Page, keyset_after as _after, parse_page as _parse_page

DELETE_WORDS = frozenset({"SUPPRIMER", "DELETE"})

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_group_name(v: Validator, name: str) -> None:
    v.require("name", name)
    v.check(
        len(name) <= NAME_MAX,
        "name",
        f"must be at most {NAME_MAX} characters",
        code="string_too_long",
    )
    v.check(
        not _CONTROL.search(name),
        "name",
        "must not contain control characters",
        code="string_pattern_mismatch",
    )


@dataclass(frozen=True)
class GroupView:
    group: ClientGroup
    clients: int
    program_accounts: int
    assignments: list[AssignmentView]


async def group_views(
    session: AsyncSession,
    groups: Sequence[ClientGroup],
    *,
    accounts: dict[uuid.UUID, int] | None = None,
) -> list[GroupView]:
    """Groups with their counts; `accounts`: program account counts the caller already has."""
    ids = [g.id for g in groups]
    if not ids:
        return []
    clients = dict(
        (
            await session.execute(
                select(GroupMember.group_id, func.count())
                .where(GroupMember.group_id.in_(ids))
                .group_by(GroupMember.group_id)
            )
        ).all()
    )
    if accounts is None:
        accounts = dict(
            (
                await session.execute(
                    select(GroupMember.group_id, func.count())
                    .join(ProgramAccount, ProgramAccount.client_id == GroupMember.client_id)
                    .where(GroupMember.group_id.in_(ids))
                    .group_by(GroupMember.group_id)
                )
            ).all()
        )
    names = {g.id: g.name for g in groups}
    assignments: dict[uuid.UUID, list[AssignmentView]] = {g: [] for g in ids}
    rows = await session.execute(
        select(EmployeeAssignment)
        .where(EmployeeAssignment.group_id.in_(ids))
        .order_by(func.lower(EmployeeAssignment.username), EmployeeAssignment.employee_id)
    )
    for a in rows.scalars():
        assignments[a.group_id].append(
            AssignmentView(a.employee_id, a.username, a.role, a.group_id, names[a.group_id])
        )
    return [
        GroupView(g, int(clients.get(g.id, 0)), int(accounts.get(g.id, 0)), assignments[g.id])
        for g in groups
    ]


async def check_name_free(
    session: AsyncSession, provider_id: uuid.UUID, name: str, *, other_than: uuid.UUID | None = None
) -> None:
    query = select(ClientGroup.deleted_at).where(
        ClientGroup.provider_id == provider_id, func.lower(ClientGroup.name) == name.lower()
    )
    if other_than is not None:
        query = query.where(ClientGroup.id != other_than)
    clash = (await session.execute(query)).first()
    if clash is not None:
        raise _name_taken(deleted=clash.deleted_at is not None)


def _name_taken(*, deleted: bool) -> AlreadyExists:
    if deleted:
        why = "belongs to a previously deleted group of this provider; choose another name"
        return AlreadyExists(
            f"name: {why}", reason="group_name_deleted", violations=[("name", why)]
        )
    why = "is already the name of a group of this provider"
    return AlreadyExists(f"name: {why}", reason="group_name_taken", violations=[("name", why)])


async def flush_name(session: AsyncSession, provider_id: uuid.UUID, name: str) -> None:
    """Flushes a new or renamed group; a concurrent twin taking the name first is reported."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as error:
        if "uq_client_groups_provider_name" in constraint_name(error):
            raise _name_taken(deleted=False) from None
        raise


async def create_group(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    provider_id: str,
    name: str,
    client_ids: Sequence[str],
) -> GroupView:
    provider = provider_for_manager(actor, provider_id)
    assert actor is not None
    v = Validator()
    name = collapse_spaces(name)
    check_group_name(v, name)
    clients = uuid_list(v, "client_ids", client_ids, MAX_CLIENTS_PER_CALL)
    v.check(bool(client_ids), "client_ids", "select at least one client")
    v.raise_if_any()
    await check_name_free(session, provider, name)
    await check_clients_available(session, provider, now, "client_ids", clients)
    group = ClientGroup(
        id=uuid.uuid4(),
        provider_id=provider,
        name=name,
        created_at=now,
        updated_at=now,
        deleted_at=None,
        created_by=actor.subject,
    )
    session.add(group)
    await flush_name(session, provider, name)
    await insert_members(session, group, now, clients)
    [view] = await group_views(session, [group])
    return view


async def get_group(
    *, session: AsyncSession, actor: Principal | None, provider_id: str, group_id: str
) -> GroupView:
    group = await group_for_manager(session, actor, provider_id, group_id)
    [view] = await group_views(session, [group])
    return view


async def list_groups(
    *,
    session: AsyncSession,
    actor: Principal | None,
    provider_id: str,
    page_size: int,
    page_token: str,
) -> Page[GroupView]:
    provider = provider_for_manager(actor, provider_id)
    v = Validator()
    page = _parse_page(v, "groups", page_size, page_token, [str, uuid.UUID])
    v.raise_if_any()
    columns = [func.lower(ClientGroup.name), ClientGroup.id]
    rows = list(
        (
            await session.execute(
                select(ClientGroup)
                .where(
                    ClientGroup.provider_id == provider,
                    ClientGroup.deleted_at.is_(None),
                    *_after(page, columns),
                )
                .order_by(*columns)
                .limit(page.size + 1)
            )
        ).scalars()
    )
    paged = page_of(rows, page, "groups", lambda g: (g.name.lower(), g.id))
    return Page(await group_views(session, paged.items), paged.next_page_token)


def check_word(v: Validator, confirmation: str, words: frozenset[str], example: str) -> None:
    if confirmation.strip().upper() not in words:
        others = " or ".join(sorted(words - {example}))
        v.check(
            False, "confirmation", f"type {example} (or {others}) to confirm", code="confirmation"
        )


async def delete_group(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    task_queue: str,
    provider_id: str,
    group_id: str,
    confirmation: str,
) -> ProcessRequest:
    """Deletes a group (SUPPRIMER): its clients become available, its access is revoked by a
    process request. The row stays, so the name is never reused."""
    v = Validator()
    check_word(v, confirmation, DELETE_WORDS, "SUPPRIMER")
    group = await group_for_manager(session, actor, provider_id, group_id, lock=True)
    v.raise_if_any()
    assert actor is not None
    clients = list(
        (
            await session.execute(
                select(GroupMember.client_id).where(GroupMember.group_id == group.id)
            )
        ).scalars()
    )
    await session.execute(delete(GroupMember).where(GroupMember.group_id == group.id))
    await session.execute(delete(EmployeeAssignment).where(EmployeeAssignment.group_id == group.id))
    group.deleted_at = now
    group.updated_at = now
    return await record_request(
        session,
        now,
        task_queue,
        group,
        Operation.DELETE_GROUP,
        (actor.subject, actor.username),
        f"Delete the group and revoke its access ({len(clients)} client(s))",
        clients=clients,
    )
