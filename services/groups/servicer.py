"""The groups gRPC servicer (thin: request → transaction → domain → proto) and its SPEC.

Each method opens one transaction and calls one domain function. Changes that record process
requests also record their workflow starts (outbox) in that transaction; after the commit the
relay is woken so that the Delegation workflow starts at once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeAlias

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from guichet.common.v1 import common_pb2
from guichet.groups.v1 import groups_pb2 as pb, groups_pb2_grpc
from guichet.identity.v1 import identity_pb2, identity_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.groups import domain
from services.groups.models import ProcessRequest, outbox as outbox_table
from services.groups.settings import GroupsSettings
from services.kit.auth import current_principal
from services.kit.identity_client import connect_identity
from services.kit.outbox import OutboxRelay
from services.kit.runtime import ServiceContext, ServiceSpec, Wiring

Context: TypeAlias = Any  # grpc.aio.ServicerContext (grpc ships no type stubs)
Clock = Callable[[], datetime]

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["GroupsService"].full_name


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- enums between the domain's strings and the contract --------------------------------------


def _enum_maps(enum: Any, prefix: str) -> tuple[dict[str, int], dict[int, str]]:
    to_proto = {
        name.removeprefix(prefix).lower(): value
        for name, value in enum.items()
        if not name.endswith("_UNSPECIFIED")
    }
    return to_proto, {value: name for name, value in to_proto.items()}


_RELATIONSHIP_TO, _RELATIONSHIP_FROM = _enum_maps(pb.RelationshipStatus, "RELATIONSHIP_STATUS_")
_ROLE_TO, _ROLE_FROM = _enum_maps(pb.DelegatedRole, "DELEGATED_ROLE_")
_STATUS_TO, _STATUS_FROM = _enum_maps(pb.ProcessRequestStatus, "PROCESS_REQUEST_STATUS_")
_OPERATION_TO, _ = _enum_maps(pb.Operation, "OPERATION_")
_ACCOUNT_TO, _ACCOUNT_FROM = _enum_maps(pb.ProgramAccountStatus, "PROGRAM_ACCOUNT_STATUS_")


def _name_of(value: int, names: dict[int, str]) -> str:
    """The domain's name of a proto enum value: "" when unspecified, a non-name when unknown."""
    return "" if value == 0 else names.get(value, f"#{value}")


def _timestamp(moment: datetime | None) -> Timestamp | None:
    if moment is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _page(token: str) -> common_pb2.PageResponse:
    return common_pb2.PageResponse(next_page_token=token)


def client_to_proto(client: domain.ClientView) -> pb.Client:
    return pb.Client(
        id=str(client.id), name=client.name, program_account_count=client.program_accounts
    )


def relationship_to_proto(view: domain.RelationshipView) -> pb.Relationship:
    r = view.relationship
    return pb.Relationship(
        id=str(r.id),
        provider_id=str(r.provider_id),
        client=client_to_proto(view.client),
        status=_RELATIONSHIP_TO[r.status],  # type: ignore[arg-type]
        expire_time=_timestamp(r.expires_at),
        group_id=str(view.group_id) if view.group_id else "",
    )


def assignment_to_proto(a: domain.AssignmentView) -> pb.Assignment:
    return pb.Assignment(
        employee_id=str(a.employee_id),
        username=a.username,
        role=_ROLE_TO[a.role],  # type: ignore[arg-type]
        group_id=str(a.group_id),
        group_name=a.group_name,
    )


def group_to_proto(view: domain.GroupView) -> pb.Group:
    g = view.group
    return pb.Group(
        id=str(g.id),
        provider_id=str(g.provider_id),
        name=g.name,
        client_count=view.clients,
        program_account_count=view.program_accounts,
        assignments=[assignment_to_proto(a) for a in view.assignments],
        create_time=_timestamp(g.created_at),
        update_time=_timestamp(g.updated_at),
    )


def request_to_proto(r: ProcessRequest) -> pb.ProcessRequest:
    return pb.ProcessRequest(
        id=str(r.id),
        provider_id=str(r.provider_id),
        group_id=str(r.group_id),
        group_name=r.group_name,
        operation=_OPERATION_TO[r.operation],  # type: ignore[arg-type]
        initiator_id=r.initiator_id,
        initiator_name=r.initiator_name,
        status=_STATUS_TO[r.status],  # type: ignore[arg-type]
        create_time=_timestamp(r.created_at),
        update_time=_timestamp(r.updated_at),
        finish_time=_timestamp(r.finished_at),
        done=r.done,
        total=r.total,
        failed=r.failed,
        attempt=r.attempt,
        workflow_id=r.workflow_id,
        summary=r.summary,
    )


def _role_or_unspecified(role: str | None) -> int:
    return _ROLE_TO[role] if role else 0


def summary_to_proto(summary: domain.AccessSummary) -> pb.AccessSummary:
    return pb.AccessSummary(
        changes=[
            pb.AccessChange(
                employee_id=str(c.employee_id),
                username=c.username,
                role_before=_role_or_unspecified(c.role_before),  # type: ignore[arg-type]
                role_after=_role_or_unspecified(c.role_after),  # type: ignore[arg-type]
                program_accounts_before=c.accounts_before,
                program_accounts_after=c.accounts_after,
                granted=c.granted,
                revoked=c.revoked,
                role_changed=c.role_changed,
            )
            for c in summary.changes
        ],
        clients_added=summary.clients_added,
        clients_removed=summary.clients_removed,
        program_accounts_added=summary.accounts_added,
        program_accounts_removed=summary.accounts_removed,
    )


def _progress(result: domain.BatchResult) -> pb.DelegationProgress:
    return pb.DelegationProgress(
        next_cursor=result.next_cursor,
        finished=result.finished,
        processed=result.processed,
        done=result.done,
        total=result.total,
        failed=result.failed,
        status=_STATUS_TO[result.status],  # type: ignore[arg-type]
    )


# --- identity as the directory of employees -----------------------------------------------


def _person(user: identity_pb2.User) -> domain.Person:
    memberships: dict[str, set[str]] = {}
    for m in user.memberships:
        memberships.setdefault(m.organisation_id, set()).add(m.role)
    return domain.Person(
        id=uuid.UUID(user.id),
        username=user.username,
        first_name=user.profile.first_name,
        last_name=user.profile.last_name,
        active=user.status == identity_pb2.USER_STATUS_ACTIVE,
        memberships={org: frozenset(roles) for org, roles in memberships.items()},
    )


class IdentityDirectory:
    """Reads people from identity with the caller's own token (the manager's), so identity
    applies its own rules about who may see whom."""

    def __init__(self, stub: identity_pb2_grpc.IdentityServiceStub) -> None:
        self._stub = stub

    async def _one(self, user_id: uuid.UUID) -> domain.Person | None:
        try:
            response = await self._stub.GetUser(identity_pb2.GetUserRequest(user_id=str(user_id)))
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED):
                return None
            raise
        return _person(response.user)

    async def people(self, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, domain.Person]:
        found = await asyncio.gather(*(self._one(user_id) for user_id in user_ids))
        return {person.id: person for person in found if person is not None}

    async def members(
        self, provider_id: uuid.UUID, roles: Sequence[str], page_size: int, page_token: str
    ) -> tuple[list[domain.Person], str]:
        response = await self._stub.ListOrganisationMembers(
            identity_pb2.ListOrganisationMembersRequest(
                organisation_id=str(provider_id),
                roles=list(roles),
                page=common_pb2.PageRequest(page_size=page_size, page_token=page_token),
            )
        )
        return [_person(u) for u in response.users], response.page.next_page_token


class GroupsServicer(groups_pb2_grpc.GroupsServiceServicer):
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        settings: GroupsSettings,
        directory: domain.Directory,
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
            page = await domain.list_relationships(
                session=session,
                actor=current_principal(),
                provider_id=request.provider_id,
                status=_name_of(request.status, _RELATIONSHIP_FROM),
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListRelationshipsResponse(
            relationships=[relationship_to_proto(r) for r in page.items],
            page=_page(page.next_page_token),
        )

    async def ListAvailableClients(
        self, request: pb.ListAvailableClientsRequest, context: Context
    ) -> pb.ListAvailableClientsResponse:
        async with self._sessions.begin() as session:
            page = await domain.list_available_clients(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                provider_id=request.provider_id,
                query=request.query,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListAvailableClientsResponse(
            clients=[client_to_proto(c) for c in page.items], page=_page(page.next_page_token)
        )

    # --- groups --------------------------------------------------------------------------------

    async def ListGroups(
        self, request: pb.ListGroupsRequest, context: Context
    ) -> pb.ListGroupsResponse:
        async with self._sessions.begin() as session:
            page = await domain.list_groups(
                session=session,
                actor=current_principal(),
                provider_id=request.provider_id,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListGroupsResponse(
            groups=[group_to_proto(g) for g in page.items], page=_page(page.next_page_token)
        )

    async def CreateGroup(
        self, request: pb.CreateGroupRequest, context: Context
    ) -> pb.CreateGroupResponse:
        async with self._sessions.begin() as session:
            view = await domain.create_group(
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
            view = await domain.get_group(
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
            page = await domain.list_group_clients(
                session=session,
                actor=current_principal(),
                provider_id=request.provider_id,
                group_id=request.group_id,
                query=request.query,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListGroupClientsResponse(
            clients=[client_to_proto(c) for c in page.items], page=_page(page.next_page_token)
        )

    async def UpdateGroup(
        self, request: pb.UpdateGroupRequest, context: Context
    ) -> pb.UpdateGroupResponse:
        async with self._sessions.begin() as session:
            result = await domain.update_group(
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
                assign=[(a.employee_id, _name_of(a.role, _ROLE_FROM)) for a in request.assign],
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
            recorded = await domain.delete_group(
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
            page = await domain.list_employees(
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
            page=_page(page.next_page_token),
        )

    # --- process requests ----------------------------------------------------------------------

    async def ListProcessRequests(
        self, request: pb.ListProcessRequestsRequest, context: Context
    ) -> pb.ListProcessRequestsResponse:
        async with self._sessions.begin() as session:
            page = await domain.list_process_requests(
                session=session,
                actor=current_principal(),
                provider_id=request.provider_id,
                status=_name_of(request.status, _STATUS_FROM),
                group_id=request.group_id,
                group_name=request.group_name,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListProcessRequestsResponse(
            process_requests=[request_to_proto(r) for r in page.items],
            page=_page(page.next_page_token),
        )

    async def GetProcessRequest(
        self, request: pb.GetProcessRequestRequest, context: Context
    ) -> pb.GetProcessRequestResponse:
        async with self._sessions.begin() as session:
            found = await domain.get_process_request(
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
            page = await domain.list_failures(
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
            page=_page(page.next_page_token),
        )

    async def RetryProcessRequest(
        self, request: pb.RetryProcessRequestRequest, context: Context
    ) -> pb.RetryProcessRequestResponse:
        async with self._sessions.begin() as session:
            retried = await domain.retry_process_request(
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
            domain.ClientInput(
                id=c.id,
                name=c.name,
                program_accounts=[
                    domain.ProgramAccountInput(
                        id=a.id, number=a.number, status=_name_of(a.status, _ACCOUNT_FROM)
                    )
                    for a in c.program_accounts
                ],
            )
            for c in request.clients
        ]
        async with self._sessions.begin() as session:
            recorded = await domain.record_clients(
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
            domain.RelationshipInput(
                provider_id=r.provider_id,
                client_id=r.client_id,
                status=_name_of(r.status, _RELATIONSHIP_FROM),
                expires_at=r.expire_time.ToDatetime(tzinfo=UTC)
                if r.HasField("expire_time")
                else None,
            )
            for r in request.relationships
        ]
        async with self._sessions.begin() as session:
            views = await domain.record_relationships(
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
            result = await domain.apply_batch(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                process_request_id=request.process_request_id,
                attempt=request.attempt,
                after_cursor=request.after_cursor,
                limit=request.limit,
            )
        return pb.ApplyDelegationBatchResponse(progress=_progress(result))

    async def FailDelegationBatch(
        self, request: pb.FailDelegationBatchRequest, context: Context
    ) -> pb.FailDelegationBatchResponse:
        async with self._sessions.begin() as session:
            result = await domain.fail_batch(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                process_request_id=request.process_request_id,
                attempt=request.attempt,
                after_cursor=request.after_cursor,
                limit=request.limit,
                message=request.message,
            )
        return pb.FailDelegationBatchResponse(progress=_progress(result))

    async def ExpireRelationship(
        self, request: pb.ExpireRelationshipRequest, context: Context
    ) -> pb.ExpireRelationshipResponse:
        async with self._sessions.begin() as session:
            requests = await domain.expire_relationship(
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


async def build(context: ServiceContext, *, clock: Clock = utcnow) -> Wiring:
    """Wires the servicer to identity (tokens are verified with its JWKS; employees read there)."""
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
