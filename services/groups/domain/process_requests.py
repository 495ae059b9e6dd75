"""Process requests: the record of one change of access (operation, group, initiator, status,
progress, per-account failures) and its Delegation workflow start, written through the outbox in
the caller's transaction; the provider's list of them, their failures, and a retry of only the
program accounts that failed.

The batches the Delegation workflow applies for a request are `batches`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.groups.domain.authorisation import provider_for_manager
from services.groups.domain.common import (
    NAME_MAX,
    collapse_spaces,
    group_account_count,
    page_of,
    parse_uuid,
    uuid_or_raise,
)
from services.groups.models import (
    ClientBusiness,
    ClientGroup,
    Operation,
    ProcessRequest,
    ProcessRequestClient,
    ProcessRequestFailure,
    ProgramAccount,
    RequestStatus,
    Scope,
    outbox,
)
from services.kit.auth import Principal
from services.kit.errors import FailedPrecondition, NotFound, Validator
from services.kit.outbox import enqueue
from services.kit.paging import Page, keyset_after as _after, parse_page as _parse_page
from services.kit.temporal import GROUP, PROCESS_REQUEST_ID, TENANT
from workflows.contracts.groups import DELEGATION_WORKFLOW, delegation_workflow_id


def _timestamp(raw: str) -> datetime:
    parsed = datetime.fromisoformat(raw)
    if parsed.tzinfo is None:
        raise ValueError(raw)
    return parsed


@dataclass(frozen=True)
class FailureView:
    failure: ProcessRequestFailure
    number: str
    client_name: str


async def has_requests_in_flight(session: AsyncSession, group_id: uuid.UUID) -> bool:
    found = await session.scalar(
        select(ProcessRequest.id)
        .where(
            ProcessRequest.group_id == group_id,
            ProcessRequest.status.in_(
                [RequestStatus.PENDING.value, RequestStatus.IN_PROGRESS.value]
            ),
        )
        .limit(1)
    )
    return found is not None


async def record_request(
    session: AsyncSession,
    now: datetime,
    task_queue: str,
    group: ClientGroup,
    operation: Operation,
    initiator: tuple[str, str],
    summary: str,
    *,
    employees: list[uuid.UUID] | None = None,
    clients: Sequence[uuid.UUID] | None = None,
    group_accounts: int | None = None,
) -> ProcessRequest:
    """A process request and its workflow start (outbox), in the caller's transaction.

    With `clients`, the request walks those clients' program accounts (for every employee of
    the group); otherwise the group's, for `employees` only (`group_accounts`: how many, when the
    caller has counted them).
    """
    request_id = uuid.uuid4()
    scope = Scope.CLIENTS if clients is not None else Scope.GROUP
    request = ProcessRequest(
        id=request_id,
        provider_id=group.provider_id,
        group_id=group.id,
        group_name=group.name,
        operation=operation.value,
        initiator_id=initiator[0],
        initiator_name=initiator[1],
        status=RequestStatus.PENDING.value,
        scope=scope.value,
        employee_ids=employees,
        summary=summary,
        detail={},
        attempt=1,
        workflow_id=delegation_workflow_id(request_id, 1),
        done=0,
        total=0,
        failed=0,
        created_at=now,
        updated_at=now,
    )
    session.add(request)
    await session.flush()
    if clients is not None:
        if clients:
            await session.execute(
                pg_insert(ProcessRequestClient),
                [{"process_request_id": request_id, "client_id": c} for c in clients],
            )
        total = await session.scalar(
            select(func.count())
            .select_from(ProcessRequestClient)
            .join(ProgramAccount, ProgramAccount.client_id == ProcessRequestClient.client_id)
            .where(ProcessRequestClient.process_request_id == request_id)
        )
    elif group_accounts is not None:
        total = group_accounts
    else:
        total = await group_account_count(session, group.id)
    request.total = int(total or 0)
    await _enqueue_delegation(session, task_queue, request)
    return request


async def _enqueue_delegation(
    session: AsyncSession, task_queue: str, request: ProcessRequest
) -> None:
    await enqueue(
        session,
        outbox,
        workflow=DELEGATION_WORKFLOW,
        workflow_id=request.workflow_id,
        argument={
            "process_request_id": str(request.id),
            "attempt": request.attempt,
            "group_name": request.group_name,
        },
        task_queue=task_queue,
        search_attributes={
            PROCESS_REQUEST_ID.name: str(request.id),
            GROUP.name: request.group_name,
            TENANT.name: str(request.provider_id),
        },
    )


_STATUSES = {s.value for s in RequestStatus}


async def list_process_requests(
    *,
    session: AsyncSession,
    actor: Principal | None,
    provider_id: str,
    status: str,
    group_id: str,
    group_name: str,
    page_size: int,
    page_token: str,
) -> Page[ProcessRequest]:
    """Newest first; by status, by group (id or name, deleted groups included)."""
    provider = provider_for_manager(actor, provider_id)
    v = Validator()
    if status:
        v.check(status in _STATUSES, "status", "is not a process request status")
    group = parse_uuid(v, "group_id", group_id) if group_id else None
    v.check(len(group_name) <= NAME_MAX, "group_name", f"must be at most {NAME_MAX} characters")
    page = _parse_page(v, "requests", page_size, page_token, [_timestamp, uuid.UUID])
    v.raise_if_any()
    columns = [ProcessRequest.created_at, ProcessRequest.id]
    query = select(ProcessRequest).where(
        ProcessRequest.provider_id == provider, *_after(page, columns, descending=True)
    )
    if status:
        query = query.where(ProcessRequest.status == status)
    if group is not None:
        query = query.where(ProcessRequest.group_id == group)
    if group_name.strip():
        query = query.where(
            func.lower(ProcessRequest.group_name) == collapse_spaces(group_name).lower()
        )
    rows = list(
        (
            await session.execute(
                query.order_by(ProcessRequest.created_at.desc(), ProcessRequest.id.desc()).limit(
                    page.size + 1
                )
            )
        ).scalars()
    )
    return page_of(rows, page, "requests", lambda r: (r.created_at.isoformat(), r.id))


async def _request_for_manager(
    session: AsyncSession,
    actor: Principal | None,
    provider_id: str,
    process_request_id: str,
    *,
    lock: bool = False,
) -> ProcessRequest:
    provider = provider_for_manager(actor, provider_id)
    request_id = uuid_or_raise("process_request_id", process_request_id)
    query = select(ProcessRequest).where(
        ProcessRequest.id == request_id, ProcessRequest.provider_id == provider
    )
    if lock:
        query = query.with_for_update()
    request = (await session.execute(query)).scalar_one_or_none()
    if request is None:
        raise NotFound("process request not found", reason="process_request_not_found")
    return request


async def get_process_request(
    *, session: AsyncSession, actor: Principal | None, provider_id: str, process_request_id: str
) -> ProcessRequest:
    return await _request_for_manager(session, actor, provider_id, process_request_id)


async def list_failures(
    *,
    session: AsyncSession,
    actor: Principal | None,
    provider_id: str,
    process_request_id: str,
    page_size: int,
    page_token: str,
) -> Page[FailureView]:
    """The failures of the request's latest attempt, by client and program account."""
    request = await _request_for_manager(session, actor, provider_id, process_request_id)
    v = Validator()
    page = _parse_page(v, "failures", page_size, page_token, [uuid.UUID, uuid.UUID])
    v.raise_if_any()
    columns = [ProcessRequestFailure.client_id, ProcessRequestFailure.program_account_id]
    rows = (
        await session.execute(
            select(ProcessRequestFailure, ProgramAccount.number, ClientBusiness.name)
            .join(ProgramAccount, ProgramAccount.id == ProcessRequestFailure.program_account_id)
            .join(ClientBusiness, ClientBusiness.id == ProcessRequestFailure.client_id)
            .where(
                ProcessRequestFailure.process_request_id == request.id,
                ProcessRequestFailure.attempt == request.attempt,
                *_after(page, columns),
            )
            .order_by(*columns)
            .limit(page.size + 1)
        )
    ).all()
    views = [FailureView(f, number, name) for f, number, name in rows]
    return page_of(
        views, page, "failures", lambda f: (f.failure.client_id, f.failure.program_account_id)
    )


async def retry_process_request(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    task_queue: str,
    provider_id: str,
    process_request_id: str,
) -> ProcessRequest:
    """A failed request runs again for the program accounts that failed, and only those."""
    request = await _request_for_manager(session, actor, provider_id, process_request_id, lock=True)
    if request.status != RequestStatus.FAILED.value:
        raise FailedPrecondition(
            f"only a failed process request can be retried; this one is {request.status}",
            reason="process_request_not_failed",
        )
    failures = await session.scalar(
        select(func.count())
        .select_from(ProcessRequestFailure)
        .where(
            ProcessRequestFailure.process_request_id == request.id,
            ProcessRequestFailure.attempt == request.attempt,
        )
    )
    request.attempt += 1
    request.scope = Scope.FAILURES.value
    request.status = RequestStatus.PENDING.value
    request.workflow_id = delegation_workflow_id(request.id, request.attempt)
    request.cursor_client = request.cursor_account = None
    request.done = request.failed = 0
    request.total = int(failures or 0)
    request.updated_at = now
    request.finished_at = None
    await _enqueue_delegation(session, task_queue, request)
    return request
