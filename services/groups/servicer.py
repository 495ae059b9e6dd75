"""The groups gRPC servicer (thin: request → transaction → domain → proto) and its SPEC.

Each method opens one transaction and calls one domain function. Changes that record process
requests also record their workflow starts (outbox) in that transaction; after the commit the
relay is woken so that the Delegation workflow starts at once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeAlias

import grpc
from guichet.groups.v1 import groups_pb2 as pb, groups_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.groups.directory import IdentityDirectory
from services.groups.domain.batches import BatchResult, apply_batch, fail_batch
from services.groups.domain.client_groups import create_group, delete_group, get_group, list_groups
from services.groups.domain.clients import ClientInput, ProgramAccountInput, record_clients
from services.groups.domain.employees import Directory, list_employees
from services.groups.domain.expiry import expire_relationship
from services.groups.domain.group_changes import update_group
from services.groups.domain.membership import list_available_clients, list_group_clients
from services.groups.domain.process_requests import (
    get_process_request,
    list_failures,
    list_process_requests,
    retry_process_request,
)
from services.groups.domain.relationships import (
    RelationshipInput,
    list_relationships,
    record_relationships,
)
from services.groups.mapping import (
    ACCOUNT_FROM,
    RELATIONSHIP_FROM,
    ROLE_FROM,
    STATUS_FROM,
    assignment_to_proto,
    client_to_proto,
    group_to_proto,
    name_of,
    page_response,
    progress_to_proto,
    relationship_to_proto,
    request_to_proto,
    summary_to_proto,
)
from services.groups.models import outbox as outbox_table
from services.groups.settings import GroupsSettings
from services.kit.auth import current_principal
from services.kit.identity_client import connect_identity
from services.kit.metrics import size_class, workflow_metrics
from services.kit.outbox import OutboxRelay
from services.kit.runtime import ServiceContext, ServiceSpec, Wiring

Context: TypeAlias = Any  # grpc.aio.ServicerContext (grpc ships no type stubs)
Clock = Callable[[], datetime]

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["GroupsService"].full_name


def utcnow() -> datetime:
    return datetime.now(UTC)


class GroupsServicer(groups_pb2_grpc.GroupsServiceServicer):
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        settings: GroupsSettings,
        directory: Directory,
        relay: OutboxRelay | None,
        clock: Clock = utcnow,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._directory = directory
        self._relay = relay
        self._clock = clock

    @property
    def _queue(self) -> str:
        return self._settings.temporal_task_queue

    def _started(self) -> None:
        """After a commit that may have recorded workflow starts: let the relay start them now."""
        if self._relay is not None:
            self._relay.wake()

    # --- relationships and clients -------------------------------------------------------------

    async def ListRelationships(
        self, request: pb.ListRelationshipsRequest, context: Context
    ) -> pb.ListRelationshipsResponse:
        async with self._sessions.begin() as session:
            page = await list_relationships(
                session=session,
                actor=current_principal(),
                provider_id=request.provider_id,
                status=name_of(request.status, RELATIONSHIP_FROM),
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListRelationshipsResponse(
            relationships=[relationship_to_proto(r) for r in page.items],
            page=page_response(page.next_page_token),
        )

    async def ListAvailableClients(
        self, request: pb.ListAvailableClientsRequest, context: Context
    ) -> pb.ListAvailableClientsResponse:
        async with self._sessions.begin() as session:
            page = await list_available_clients(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                provider_id=request.provider_id,
                query=request.query,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListAvailableClientsResponse(
            clients=[client_to_proto(c) for c in page.items],
            page=page_response(page.next_page_token),
        )

    # --- groups --------------------------------------------------------------------------------

    async def ListGroups(
        self, request: pb.ListGroupsRequest, context: Context
    ) -> pb.ListGroupsResponse:
        async with self._sessions.begin() as session:
            page = await list_groups(
                session=session,
                actor=current_principal(),
                provider_id=request.provider_id,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListGroupsResponse(
            groups=[group_to_proto(g) for g in page.items], page=page_response(page.next_page_token)
        )

    async def CreateGroup(
        self, request: pb.CreateGroupRequest, context: Context
    ) -> pb.CreateGroupResponse:
        async with self._sessions.begin() as session:
            view = await create_group(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                provider_id=request.provider_id,
                name=request.name,
                client_ids=list(request.client_ids),
            )
        return pb.CreateGroupResponse(group=group_to_proto(view))

    async def GetGroup(self, request: pb.GetGroupRequest, context: Context) -> pb.GetGroupResponse:
        async with self._sessions.begin() as session:
            view = await get_group(
                session=session,
                actor=current_principal(),
                provider_id=request.provider_id,
                group_id=request.group_id,
            )
        return pb.GetGroupResponse(group=group_to_proto(view))

    async def ListGroupClients(
        self, request: pb.ListGroupClientsRequest, context: Context
    ) -> pb.ListGroupClientsResponse:
        async with self._sessions.begin() as session:
            page = await list_group_clients(
                session=session,
                actor=current_principal(),
                provider_id=request.provider_id,
                group_id=request.group_id,
                query=request.query,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListGroupClientsResponse(
            clients=[client_to_proto(c) for c in page.items],
            page=page_response(page.next_page_token),
        )

    async def UpdateGroup(
        self, request: pb.UpdateGroupRequest, context: Context
    ) -> pb.UpdateGroupResponse:
        async with self._sessions.begin() as session:
            result = await update_group(
                session=session,
                actor=current_principal(),
                directory=self._directory,
                now=self._clock(),
                task_queue=self._queue,
                provider_id=request.provider_id,
                group_id=request.group_id,
                name=request.name,
                add_client_ids=list(request.add_client_ids),
                remove_client_ids=list(request.remove_client_ids),
                assign=[(a.employee_id, name_of(a.role, ROLE_FROM)) for a in request.assign],
                unassign_employee_ids=list(request.unassign_employee_ids),
                confirmation=request.confirmation,
                dry_run=request.dry_run,
            )
        if result.requests:
            self._started()
        return pb.UpdateGroupResponse(
            group=group_to_proto(result.group),
            summary=summary_to_proto(result.summary),
            process_requests=[request_to_proto(r) for r in result.requests],
        )

    async def DeleteGroup(
        self, request: pb.DeleteGroupRequest, context: Context
    ) -> pb.DeleteGroupResponse:
        async with self._sessions.begin() as session:
            recorded = await delete_group(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                task_queue=self._queue,
                provider_id=request.provider_id,
                group_id=request.group_id,
                confirmation=request.confirmation,
            )
        self._started()
        return pb.DeleteGroupResponse(process_request=request_to_proto(recorded))

    # --- employees -----------------------------------------------------------------------------

    async def ListEmployees(
        self, request: pb.ListEmployeesRequest, context: Context
    ) -> pb.ListEmployeesResponse:
        async with self._sessions.begin() as session:
            page = await list_employees(
                session=session,
                actor=current_principal(),
                directory=self._directory,
                provider_id=request.provider_id,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListEmployeesResponse(
            employees=[
                pb.Employee(
                    id=str(e.person.id),
                    username=e.person.username,
                    first_name=e.person.first_name,
                    last_name=e.person.last_name,
                    roles=e.roles,
                    assignments=[assignment_to_proto(a) for a in e.assignments],
                )
                for e in page.items
            ],
            page=page_response(page.next_page_token),
        )

    # --- process requests ----------------------------------------------------------------------

    async def ListProcessRequests(
        self, request: pb.ListProcessRequestsRequest, context: Context
    ) -> pb.ListProcessRequestsResponse:
        async with self._sessions.begin() as session:
            page = await list_process_requests(
                session=session,
                actor=current_principal(),
                provider_id=request.provider_id,
                status=name_of(request.status, STATUS_FROM),
                group_id=request.group_id,
                group_name=request.group_name,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListProcessRequestsResponse(
            process_requests=[request_to_proto(r) for r in page.items],
            page=page_response(page.next_page_token),
        )

    async def GetProcessRequest(
        self, request: pb.GetProcessRequestRequest, context: Context
    ) -> pb.GetProcessRequestResponse:
        async with self._sessions.begin() as session:
            found = await get_process_request(
                session=session,
                actor=current_principal(),
                provider_id=request.provider_id,
                process_request_id=request.process_request_id,
            )
        return pb.GetProcessRequestResponse(process_request=request_to_proto(found))

    async def ListProcessRequestFailures(
        self, request: pb.ListProcessRequestFailuresRequest, context: Context
    ) -> pb.ListProcessRequestFailuresResponse:
        async with self._sessions.begin() as session:
            page = await list_failures(
                session=session,
                actor=current_principal(),
                provider_id=request.provider_id,
                process_request_id=request.process_request_id,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListProcessRequestFailuresResponse(
            failures=[
                pb.ProcessRequestFailure(
                    program_account_id=str(f.failure.program_account_id),
                    program_account_number=f.number,
                    client_id=str(f.failure.client_id),
                    client_name=f.client_name,
                    reason=f.failure.reason,
                    message=f.failure.message,
                )
                for f in page.items
            ],
            page=page_response(page.next_page_token),
        )

    async def RetryProcessRequest(
        self, request: pb.RetryProcessRequestRequest, context: Context
    ) -> pb.RetryProcessRequestResponse:
        async with self._sessions.begin() as session:
            retried = await retry_process_request(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                task_queue=self._queue,
                provider_id=request.provider_id,
                process_request_id=request.process_request_id,
            )
        self._started()
        return pb.RetryProcessRequestResponse(process_request=request_to_proto(retried))

    # --- internal: recording -------------------------------------------------------------------

    async def RecordClients(
        self, request: pb.RecordClientsRequest, context: Context
    ) -> pb.RecordClientsResponse:
        clients = [
            ClientInput(
                id=c.id,
                name=c.name,
                program_accounts=[
                    ProgramAccountInput(
                        id=a.id, number=a.number, status=name_of(a.status, ACCOUNT_FROM)
                    )
                    for a in c.program_accounts
                ],
            )
            for c in request.clients
        ]
        async with self._sessions.begin() as session:
            recorded = await record_clients(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                task_queue=self._queue,
                clients=clients,
            )
        if recorded.requests:
            self._started()
        return pb.RecordClientsResponse(
            clients_recorded=recorded.clients,
            program_accounts_recorded=recorded.program_accounts,
            process_request_ids=[str(r.id) for r in recorded.requests],
        )

    async def RecordRelationships(
        self, request: pb.RecordRelationshipsRequest, context: Context
    ) -> pb.RecordRelationshipsResponse:
        records = [
            RelationshipInput(
                provider_id=r.provider_id,
                client_id=r.client_id,
                status=name_of(r.status, RELATIONSHIP_FROM),
                expires_at=r.expire_time.ToDatetime(tzinfo=UTC)
                if r.HasField("expire_time")
                else None,
            )
            for r in request.relationships
        ]
        async with self._sessions.begin() as session:
            views = await record_relationships(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                task_queue=self._queue,
                relationships=records,
            )
        self._started()
        return pb.RecordRelationshipsResponse(
            relationships=[relationship_to_proto(v) for v in views]
        )

    # --- internal: the worker ------------------------------------------------------------------

    async def ApplyDelegationBatch(
        self, request: pb.ApplyDelegationBatchRequest, context: Context
    ) -> pb.ApplyDelegationBatchResponse:
        async with self._sessions.begin() as session:
            result = await apply_batch(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                process_request_id=request.process_request_id,
                attempt=request.attempt,
                after_cursor=request.after_cursor,
                limit=request.limit,
            )
        _observe_finished(result)
        return pb.ApplyDelegationBatchResponse(progress=progress_to_proto(result))

    async def FailDelegationBatch(
        self, request: pb.FailDelegationBatchRequest, context: Context
    ) -> pb.FailDelegationBatchResponse:
        async with self._sessions.begin() as session:
            result = await fail_batch(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                process_request_id=request.process_request_id,
                attempt=request.attempt,
                after_cursor=request.after_cursor,
                limit=request.limit,
                message=request.message,
            )
        _observe_finished(result)
        return pb.FailDelegationBatchResponse(progress=progress_to_proto(result))

    async def ExpireRelationship(
        self, request: pb.ExpireRelationshipRequest, context: Context
    ) -> pb.ExpireRelationshipResponse:
        async with self._sessions.begin() as session:
            requests = await expire_relationship(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                task_queue=self._queue,
                relationship_id=request.relationship_id,
                term=request.term,
            )
        if requests:
            self._started()
        return pb.ExpireRelationshipResponse(
            expired=requests is not None,
            process_request_ids=[str(r.id) for r in requests or []],
        )


async def build(context: ServiceContext, *, clock: Clock | None = None) -> Wiring:
    """Wires the servicer to identity (tokens are verified with its JWKS; employees read there)."""
    clock = clock or context.clock
    settings = context.settings
    if not isinstance(settings, GroupsSettings):
        raise TypeError("groups needs GroupsSettings")
    identity = connect_identity(settings)
    context.exit_stack.push_async_callback(identity.close)
    servicer = GroupsServicer(
        sessions=context.sessions,
        settings=settings,
        directory=IdentityDirectory(identity.stub),
        relay=context.relay,
        clock=clock,
    )

    def register(server: grpc.aio.Server) -> None:
        groups_pb2_grpc.add_GroupsServiceServicer_to_server(servicer, server)

    return Wiring(register=register, service_names=[SERVICE_NAME], verifier=identity.verifier)


SPEC = ServiceSpec(
    name="groups",
    settings_class=GroupsSettings,
    migrations_dir=Path(__file__).parent / "migrations",
    build=build,
    outbox=outbox_table,
)


def _observe_finished(result: BatchResult) -> None:
    """docs/slo.md: how long a process request took from its recording to its end, by size."""
    if result.finished and result.took_seconds is not None:
        workflow_metrics().finished(
            "Delegation", size_class(result.total), result.status, result.took_seconds
        )
