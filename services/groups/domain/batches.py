"""The delegation batches: the worker's calls that apply a process request to its program accounts,
one SQL statement per batch, or record a batch that keeps failing as failed.

Each batch reconciles a slice of program accounts with the group as it is at that moment and
moves the request's cursor and progress in the same statement, so the requests of one group
converge whatever order they run in, and a replayed call applies nothing twice (docs/groups.md).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.groups.domain.authorisation import require_service
from services.groups.domain.common import constraint_name, uuid_or_raise
from services.groups.models import ClientGroup, Operation, ProcessRequest, RequestStatus, Scope
from services.kit.auth import Principal
from services.kit.errors import FailedPrecondition, InvalidArgument, NotFound

MAX_BATCH = 50_000

_NIL = uuid.UUID(int=0)

CLOSED_REASON = "program_account_closed"
CLOSED_MESSAGE = "The program account is closed: no access can be granted on it."
BATCH_FAILED_REASON = "batch_failed"
GRANTS_KEY = "pk_access_grants"


def format_cursor(client_id: uuid.UUID | None, account_id: uuid.UUID | None) -> str:
    if client_id is None or account_id is None:
        return ""
    return f"{client_id}:{account_id}"


def parse_cursor(raw: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    if not raw:
        return None
    client, _, account = raw.partition(":")
    try:
        return uuid.UUID(client), uuid.UUID(account)
    except ValueError:
        raise InvalidArgument([("after_cursor", "is not a cursor of this service")]) from None


@dataclass(frozen=True)
class BatchResult:
    next_cursor: str
    finished: bool
    processed: int
    done: int
    total: int
    failed: int
    status: str
    # From the request's recording to this batch, when this batch finished it (docs/slo.md).
    took_seconds: float | None = None


# The program accounts a request walks through, by scope, in (client id, account id) order,
# from the cursor on. Every variant yields (client_id, id, status, n), n numbering the batch's
# rows in that order (the batch's last row, the next cursor, is the one whose n is the count: no
# sort of the batch to find it).
_DOMAINS = {
    Scope.GROUP: """
        SELECT pa.client_id, pa.id, pa.status,
               row_number() OVER (ORDER BY pa.client_id, pa.id) AS n
        FROM group_members m JOIN program_accounts pa ON pa.client_id = m.client_id
        WHERE m.group_id = :group_id AND m.client_id >= :c0
          AND (pa.client_id, pa.id) > (:c0, :a0)
        ORDER BY pa.client_id, pa.id
        LIMIT :limit""",
    Scope.CLIENTS: """
        SELECT pa.client_id, pa.id, pa.status,
               row_number() OVER (ORDER BY pa.client_id, pa.id) AS n
        FROM process_request_clients rc JOIN program_accounts pa ON pa.client_id = rc.client_id
        WHERE rc.process_request_id = :request_id AND rc.client_id >= :c0
          AND (pa.client_id, pa.id) > (:c0, :a0)
        ORDER BY pa.client_id, pa.id
        LIMIT :limit""",
    Scope.FAILURES: """
        SELECT f.client_id, f.program_account_id AS id, pa.status,
               row_number() OVER (ORDER BY f.client_id, f.program_account_id) AS n
        FROM process_request_failures f JOIN program_accounts pa ON pa.id = f.program_account_id
        WHERE f.process_request_id = :request_id AND f.attempt = :previous_attempt
          AND (f.client_id, f.program_account_id) > (:c0, :a0)
        ORDER BY f.client_id, f.program_account_id
        LIMIT :limit""",
}

# Whether a batch's account is entitled by the group as it is now. A group-scoped batch is read
# through the group's members already; a list of clients (or a retry's failures) may name clients
# that have left the group since the request was recorded.
_MEMBER = {
    Scope.GROUP: "true",
    Scope.CLIENTS: "b.client_id IN (SELECT m.client_id FROM group_members m"
    " WHERE m.group_id = :group_id)",
    Scope.FAILURES: "b.client_id IN (SELECT m.client_id FROM group_members m"
    " WHERE m.group_id = :group_id)",
}

# One batch, one statement. A request moves access one way: the granting operations write what
# the group entitles now (and record what cannot be granted), the revoking ones delete what it no
# longer entitles. Both read the group as it is at the batch, so whichever request touches an
# account last leaves it right; each batch also moves the cursor and the progress. Grants are
# keyed (program account, employee): re-running a batch writes nothing new.
_GRANTING = frozenset(
    {Operation.ASSIGN_EMPLOYEES, Operation.ADD_CLIENTS, Operation.PROGRAM_ACCOUNTS_ADDED}
)

# The grants are first written by a plain INSERT, the cost of the floor: an upsert checks the key
# before inserting each row (a second descent of the primary key's B-tree per row: twice the
# buffers, about 1.5x the time of the insert). A grant that exists already (a role changed, a
# client moved from another group, two requests granting the same account) makes the insert fail
# on the key; the batch is then rolled back to its savepoint and written again with the upsert
# below, which rewrites what differs (`apply_batch`).
_UPSERT = """
    ON CONFLICT (program_account_id, employee_id) DO UPDATE
        SET role = EXCLUDED.role, group_id = EXCLUDED.group_id, client_id = EXCLUDED.client_id,
            process_request_id = EXCLUDED.process_request_id, granted_at = EXCLUDED.granted_at
        WHERE (access_grants.role, access_grants.group_id)
              IS DISTINCT FROM (EXCLUDED.role, EXCLUDED.group_id)"""

_GRANT_STEPS = """
assigned AS MATERIALIZED (
    SELECT a.employee_id, a.role FROM employee_assignments a
    WHERE a.group_id = :group_id
      AND (:all_employees OR a.employee_id = ANY(CAST(:employee_ids AS uuid[])))
),
granted AS (
    INSERT INTO access_grants
        (program_account_id, employee_id, group_id, client_id, role, process_request_id,
         granted_at)
    SELECT b.id, a.employee_id, :group_id, b.client_id, a.role, :request_id, :now
    FROM batch b CROSS JOIN assigned a
    WHERE b.status = 'active' AND {member}{conflict}
),
refused AS (
    INSERT INTO process_request_failures
        (process_request_id, attempt, client_id, program_account_id, reason, message, recorded_at)
    SELECT DISTINCT CAST(:request_id AS uuid), CAST(:attempt AS integer), b.client_id, b.id,
           CAST(:closed_reason AS text), CAST(:closed_message AS text),
           CAST(:now AS timestamptz)
    FROM batch b CROSS JOIN assigned a
    WHERE b.status <> 'active' AND {member} AND NOT EXISTS (
        SELECT 1 FROM access_grants g
        WHERE g.program_account_id = b.id AND g.employee_id = a.employee_id
          AND g.role = a.role)
    ON CONFLICT DO NOTHING
    RETURNING 1
),"""

_REVOKE_STEPS = """
revoked AS (
    -- Not entitled any more: the client left the group or the employee was unassigned. Probed
    -- through the two tables' keys (never against a CTE, whose size the planner cannot know).
    DELETE FROM access_grants g USING batch b
    WHERE g.program_account_id = b.id AND g.group_id = :group_id
      AND (:all_employees OR g.employee_id = ANY(CAST(:employee_ids AS uuid[])))
      AND (NOT EXISTS (
              SELECT 1 FROM group_members m
              WHERE m.group_id = :group_id AND m.client_id = b.client_id)
           OR NOT EXISTS (
              SELECT 1 FROM employee_assignments a
              WHERE a.group_id = :group_id AND a.employee_id = g.employee_id))
),
refused AS (SELECT 1 WHERE false),"""

# Data-modifying steps run to completion whether or not they are read; only the refusals are
# counted (they are the request's failures).
_APPLY = """
WITH batch AS MATERIALIZED ({domain}),{steps}
counts AS (
    SELECT (SELECT count(*) FROM batch) AS processed,
           (SELECT count(*) FROM refused) AS refused
),
last AS (SELECT client_id, id FROM batch WHERE n = (SELECT processed FROM counts))
UPDATE process_requests SET
    cursor_client = COALESCE((SELECT client_id FROM last), cursor_client),
    cursor_account = COALESCE((SELECT id FROM last), cursor_account),
    done = done + (SELECT processed FROM counts),
    failed = failed + (SELECT refused FROM counts),
    updated_at = :now
WHERE id = :request_id
RETURNING (SELECT processed FROM counts) AS processed
"""


def _granting(request: ProcessRequest) -> bool:
    return Operation(request.operation) in _GRANTING


def _apply_statement(request: ProcessRequest, *, upsert: bool = False) -> str:
    scope = Scope(request.scope)
    steps = (
        _GRANT_STEPS.format(member=_MEMBER[scope], conflict=_UPSERT if upsert else "")
        if _granting(request)
        else _REVOKE_STEPS
    )
    return _APPLY.format(domain=_DOMAINS[scope], steps=steps)


_FAIL = """
WITH batch AS MATERIALIZED ({domain}),
recorded AS (
    INSERT INTO process_request_failures
        (process_request_id, attempt, client_id, program_account_id, reason, message, recorded_at)
    SELECT :request_id, :attempt, b.client_id, b.id, :reason, :message, :now FROM batch b
    ON CONFLICT DO NOTHING
    RETURNING 1
),
last AS (SELECT client_id, id FROM batch WHERE n = (SELECT count(*) FROM batch))
UPDATE process_requests SET
    cursor_client = COALESCE((SELECT client_id FROM last), cursor_client),
    cursor_account = COALESCE((SELECT id FROM last), cursor_account),
    done = done + (SELECT count(*) FROM batch),
    failed = failed + (SELECT count(*) FROM recorded),
    updated_at = :now
WHERE id = :request_id
RETURNING cursor_client, cursor_account, done, total, failed,
          (SELECT count(*) FROM batch) AS processed
"""


async def _request_for_worker(
    session: AsyncSession, actor: Principal | None, process_request_id: str, attempt: int
) -> ProcessRequest:
    require_service(actor)
    request_id = uuid_or_raise("process_request_id", process_request_id)
    request = (
        await session.execute(
            select(ProcessRequest).where(ProcessRequest.id == request_id).with_for_update()
        )
    ).scalar_one_or_none()
    if request is None:
        raise NotFound("process request not found")
    if request.attempt != attempt:
        raise FailedPrecondition(
            f"attempt {attempt} of this request was superseded by attempt {request.attempt}",
            reason="attempt_superseded",
        )
    return request


def _result(
    request: ProcessRequest, processed: int, finished: bool, now: datetime | None = None
) -> BatchResult:
    took = (now - request.created_at).total_seconds() if finished and now is not None else None
    return BatchResult(
        next_cursor=format_cursor(request.cursor_client, request.cursor_account),
        finished=finished,
        processed=processed,
        done=request.done,
        total=request.total,
        failed=request.failed,
        status=request.status,
        took_seconds=took,
    )


def _at_cursor(request: ProcessRequest, after_cursor: str) -> bool:
    """Whether the caller continues from where the request stands (else its call is a replay)."""
    stored = format_cursor(request.cursor_client, request.cursor_account)
    return parse_cursor(after_cursor) == parse_cursor(stored)


def _batch_parameters(request: ProcessRequest, limit: int) -> dict[str, Any]:
    return {
        "request_id": request.id,
        "group_id": request.group_id,
        "attempt": request.attempt,
        "previous_attempt": request.attempt - 1,
        "c0": request.cursor_client or _NIL,
        "a0": request.cursor_account or _NIL,
        "limit": limit,
    }


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_BATCH:
        raise InvalidArgument([("limit", f"must be between 1 and {MAX_BATCH}")])


async def apply_batch(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    process_request_id: str,
    attempt: int,
    after_cursor: str,
    limit: int,
) -> BatchResult:
    """Applies the next `limit` program accounts of a request, in one statement.

    The request row is locked, so two workers of one request take turns; a call whose cursor is
    not the stored one (a retried call whose batch was in fact committed) applies nothing and
    answers where the request stands. When a batch comes back short, the request is finished in
    the same transaction: completed, or failed when some accounts could not be updated.
    """
    _check_limit(limit)
    request = await _request_for_worker(session, actor, process_request_id, attempt)
    if request.status in (RequestStatus.COMPLETED.value, RequestStatus.FAILED.value):
        return _result(request, 0, True)
    if not _at_cursor(request, after_cursor):
        return _result(request, 0, False)
    request.status = RequestStatus.IN_PROGRESS.value
    # Changes of the group's members or employees lock its row for update: batches take turns
    # with them, so a batch never writes from a membership that a committed change has undone.
    await session.execute(
        select(ClientGroup.id).where(ClientGroup.id == request.group_id).with_for_update(read=True)
    )
    await session.flush()
    parameters = {
        **_batch_parameters(request, limit),
        "all_employees": request.employee_ids is None,
        "employee_ids": request.employee_ids or [],
        "closed_reason": CLOSED_REASON,
        "closed_message": CLOSED_MESSAGE,
        "now": now,
    }
    if _granting(request):
        try:
            async with session.begin_nested():
                row = (await session.execute(text(_apply_statement(request)), parameters)).one()
        except IntegrityError as error:
            if constraint_name(error) != GRANTS_KEY:
                raise
            # Some grants exist already: the batch again, as an upsert (see _UPSERT).
            statement = _apply_statement(request, upsert=True)
            row = (await session.execute(text(statement), parameters)).one()
    else:
        row = (await session.execute(text(_apply_statement(request)), parameters)).one()
    await session.refresh(request)
    finished = row.processed < limit
    if finished:
        _finish(request, now)
    return _result(request, int(row.processed), finished, now)


def _finish(request: ProcessRequest, now: datetime) -> None:
    request.status = (
        RequestStatus.FAILED.value if request.failed > 0 else RequestStatus.COMPLETED.value
    )
    # Accounts removed from the group while it ran are not owed any more.
    request.total = request.done
    request.finished_at = now
    request.updated_at = now


async def fail_batch(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    process_request_id: str,
    attempt: int,
    after_cursor: str,
    limit: int,
    message: str,
) -> BatchResult:
    """A batch kept failing: its accounts are recorded as failures and the cursor moves past
    them, so the rest of the request still runs and a retry redoes exactly these accounts."""
    _check_limit(limit)
    request = await _request_for_worker(session, actor, process_request_id, attempt)
    if request.status in (RequestStatus.COMPLETED.value, RequestStatus.FAILED.value):
        return _result(request, 0, True)
    if not _at_cursor(request, after_cursor):
        return _result(request, 0, False)
    request.status = RequestStatus.IN_PROGRESS.value
    await session.flush()
    row = (
        await session.execute(
            text(_FAIL.format(domain=_DOMAINS[Scope(request.scope)])),
            {
                **_batch_parameters(request, limit),
                "reason": BATCH_FAILED_REASON,
                "message": (message or "the batch could not be applied")[:1000],
                "now": now,
            },
        )
    ).one()
    await session.refresh(request)
    finished = row.processed < limit
    if finished:
        _finish(request, now)
    return _result(request, int(row.processed), finished, now)
