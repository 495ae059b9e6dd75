"""Client businesses and their program accounts, as recorded by integrations and demo data
(internal calls). A program account new to a client in a group with employees extends their
access: a process request per such group does it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.groups.domain.authorisation import require_internal
from services.groups.domain.common import (
    MAX_RECORDS_PER_CALL,
    SYSTEM_INITIATOR,
    among,
    collapse_spaces,
    fold,
    parse_uuid,
)
from services.groups.domain.process_requests import record_request
from services.groups.models import (
    ClientGroup,
    EmployeeAssignment,
    GroupMember,
    Operation,
    ProcessRequest,
    ProgramAccountStatus,
)
from services.kit.auth import Principal
from services.kit.errors import FailedPrecondition, Validator

NUMBER_PATTERN = re.compile(r"^[A-Za-z0-9-]{1,32}$")


@dataclass(frozen=True)
class ProgramAccountInput:
    id: str
    number: str
    status: str  # "" means active


@dataclass(frozen=True)
class ClientInput:
    id: str
    name: str
    program_accounts: list[ProgramAccountInput] = field(default_factory=list)


@dataclass(frozen=True)
class RecordedClients:
    clients: int
    program_accounts: int
    requests: list[ProcessRequest]


_ACCOUNT_STATUSES = {s.value for s in ProgramAccountStatus}


async def record_clients(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    task_queue: str,
    clients: Sequence[ClientInput],
) -> RecordedClients:
    """Upserts client businesses and their program accounts (one statement each, any size).

    A program account new to a client that is in a group with employees extends their access:
    a process request per such group does it.
    """
    actor = require_internal(actor)
    v = Validator()
    v.check(bool(clients), "clients", "is required")
    client_rows: dict[uuid.UUID, tuple[str, str]] = {}
    accounts: dict[uuid.UUID, tuple[uuid.UUID, str, str]] = {}
    total_accounts = sum(len(c.program_accounts) for c in clients)
    v.check(
        total_accounts <= MAX_RECORDS_PER_CALL,
        "clients",
        f"at most {MAX_RECORDS_PER_CALL} program accounts per call",
    )
    for i, client in enumerate(clients):
        client_id = parse_uuid(v, f"clients[{i}].id", client.id)
        name = collapse_spaces(client.name)
        v.require(f"clients[{i}].name", name)
        v.check(len(name) <= 200, f"clients[{i}].name", "must be at most 200 characters")
        if client_id is None:
            continue
        v.check(client_id not in client_rows, f"clients[{i}].id", "is listed twice")
        client_rows[client_id] = (name, fold(name))
        for j, account in enumerate(client.program_accounts):
            where = f"clients[{i}].program_accounts[{j}]"
            account_id = parse_uuid(v, f"{where}.id", account.id)
            v.check(
                bool(NUMBER_PATTERN.match(account.number)),
                f"{where}.number",
                "must be 1 to 32 letters, digits or '-'",
            )
            status = account.status or ProgramAccountStatus.ACTIVE.value
            v.check(status in _ACCOUNT_STATUSES, f"{where}.status", "must be active or closed")
            if account_id is not None:
                v.check(account_id not in accounts, f"{where}.id", "is listed twice")
                accounts[account_id] = (client_id, account.number, status)
    v.raise_if_any()
    client_ids = list(client_rows)
    await session.execute(
        text(
            """
            INSERT INTO client_businesses (id, name, search_name, created_at)
            SELECT c.id, c.name, c.search_name, :now
            FROM unnest(CAST(:ids AS uuid[]), CAST(:names AS text[]), CAST(:search AS text[]))
                 AS c(id, name, search_name)
            ON CONFLICT (id) DO UPDATE
                SET name = EXCLUDED.name, search_name = EXCLUDED.search_name
                WHERE (client_businesses.name, client_businesses.search_name)
                      IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.search_name)
            """
        ),
        {
            "ids": client_ids,
            "names": [client_rows[c][0] for c in client_ids],
            "search": [client_rows[c][1] for c in client_ids],
            "now": now,
        },
    )
    requests: list[ProcessRequest] = []
    if accounts:
        ids = list(accounts)
        inserted = await session.execute(
            text(
                """
                INSERT INTO program_accounts (id, client_id, number, status, created_at)
                SELECT a.id, a.client_id, a.number, a.status, :now
                FROM unnest(CAST(:ids AS uuid[]), CAST(:clients AS uuid[]),
                            CAST(:numbers AS text[]), CAST(:statuses AS text[]))
                     AS a(id, client_id, number, status)
                ON CONFLICT (id) DO UPDATE
                    SET number = EXCLUDED.number, status = EXCLUDED.status
                    WHERE program_accounts.client_id = EXCLUDED.client_id
                RETURNING client_id, (xmax = 0) AS inserted
                """
            ),
            {
                "ids": ids,
                "clients": [accounts[a][0] for a in ids],
                "numbers": [accounts[a][1] for a in ids],
                "statuses": [accounts[a][2] for a in ids],
                "now": now,
            },
        )
        rows = inserted.all()
        if len(rows) != len(ids):
            raise FailedPrecondition(
                "a program account id is already recorded for another client",
                reason="program_account_client_mismatch",
            )
        grown = {row.client_id for row in rows if row.inserted}
        if grown:
            requests = await _extend_groups(session, now, task_queue, grown, actor)
    return RecordedClients(len(client_rows), len(accounts), requests)


async def _extend_groups(
    session: AsyncSession,
    now: datetime,
    task_queue: str,
    clients: set[uuid.UUID],
    actor: Principal,
) -> list[ProcessRequest]:
    """New program accounts of grouped clients: their groups' employees get access to them."""
    rows = (
        await session.execute(
            select(GroupMember.group_id, GroupMember.client_id).where(
                among(GroupMember.client_id, clients),
                GroupMember.group_id.in_(select(EmployeeAssignment.group_id)),
            )
        )
    ).all()
    by_group: dict[uuid.UUID, list[uuid.UUID]] = {}
    for group_id, client_id in rows:
        by_group.setdefault(group_id, []).append(client_id)
    requests = []
    for group_id, group_clients in sorted(by_group.items(), key=lambda item: str(item[0])):
        group = (
            await session.execute(
                select(ClientGroup).where(ClientGroup.id == group_id).with_for_update()
            )
        ).scalar_one()
        requests.append(
            await record_request(
                session,
                now,
                task_queue,
                group,
                Operation.PROGRAM_ACCOUNTS_ADDED,
                (actor.subject, actor.username or SYSTEM_INITIATOR),
                f"New program accounts of {len(group_clients)} client(s)",
                clients=group_clients,
            )
        )
    return requests
