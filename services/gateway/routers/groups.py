"""Client groups and delegated access: `/v1/providers/{provider_id}/…`.

Every route forwards the caller's token; the groups service decides (only the provider's
business_account_manager may see or manage its groups: others get 403 on provider-level lists and
404 on a group). Changes that move access answer 202 with the process requests that apply them;
their progress is read at `/process-requests/{id}`.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import grpc
from fastapi import APIRouter, Depends, Path, Query, Request, status
from guichet.common.v1 import common_pb2
from guichet.groups.v1 import groups_pb2 as pb, groups_pb2_grpc

from services.gateway.auth import CurrentCaller
from services.gateway.openapi import errors
from services.gateway.problems import Problem
from services.gateway.schemas_groups import (
    AccessSummary,
    AssignEmployeesBody,
    Client,
    ClientPage,
    CreateGroupBody,
    Employee,
    EmployeePage,
    EmployeeRoleBody,
    Group,
    GroupChanges,
    GroupChangesBody,
    GroupPage,
    ProcessRequest,
    ProcessRequestFailure,
    ProcessRequestFailurePage,
    ProcessRequestPage,
    ProcessRequestStatus,
    Relationship,
    RelationshipPage,
    RelationshipStatus,
)
from services.kit.grpcclient import create_channel

router = APIRouter(tags=["client groups"])

ProviderId = Annotated[uuid.UUID, Path(description="The service provider (organisation id).")]
GroupId = Annotated[uuid.UUID, Path(description="The client group's id.")]
RequestId = Annotated[uuid.UUID, Path(description="The process request's id.")]
Search = Annotated[
    str | None, Query(max_length=200, description="Part of the client's name (accents ignored).")
]


async def groups_stub(request: Request) -> groups_pb2_grpc.GroupsServiceStub:
    """The channel to groups, made on first use (deadlines from the gateway's settings)."""
    state = request.app.state
    stub: groups_pb2_grpc.GroupsServiceStub | None = getattr(state, "groups", None)
    if stub is None:
        settings = state.settings
        channel = create_channel(
            settings.groups_addr, default_timeout=settings.grpc_default_timeout
        )
        state.groups_channel = channel
        stub = state.groups = groups_pb2_grpc.GroupsServiceStub(channel)
    return stub


Groups = Annotated[groups_pb2_grpc.GroupsServiceStub, Depends(groups_stub)]


def page_request(
    page_size: Annotated[
        int | None, Query(ge=1, le=500, description="Items per page (default 50).")
    ] = None,
    page_token: Annotated[
        str | None, Query(max_length=1024, description="next_page_token of the previous page.")
    ] = None,
) -> common_pb2.PageRequest:
    return common_pb2.PageRequest(page_size=page_size or 0, page_token=page_token or "")


Page = Annotated[common_pb2.PageRequest, Depends(page_request)]


def _next(page: common_pb2.PageResponse) -> str | None:
    return page.next_page_token or None


PREFIX = "/v1/providers/{provider_id}"


def with_body(*codes: int) -> dict[int | str, dict[str, object]]:
    """`errors(...)` of a route taking a list of ids: a body past MAX_BODY_BYTES is a 413."""
    return {
        **errors(*codes),
        413: {"model": Problem, "description": "The body is too large: send fewer ids at once."},
    }


# --- relationships and clients ----------------------------------------------------------------


@router.get(
    f"{PREFIX}/relationships",
    summary="The provider's business relationships with its clients",
    responses=errors(400, 401, 403),
)
async def list_relationships(
    provider_id: ProviderId,
    caller: CurrentCaller,
    groups: Groups,
    page: Page,
    status_: Annotated[
        RelationshipStatus | None, Query(alias="status", description="Only this status.")
    ] = None,
) -> RelationshipPage:
    response = await groups.ListRelationships(
        pb.ListRelationshipsRequest(
            provider_id=str(provider_id),
            status=status_.to_proto() if status_ else 0,  # type: ignore[arg-type]
            page=page,
        ),
        metadata=caller.metadata,
    )
    return RelationshipPage(
        items=[Relationship.from_proto(r) for r in response.relationships],
        next_page_token=_next(response.page),
    )


@router.get(
    f"{PREFIX}/available-clients",
    summary="Clients that may join a group (active relationship, in none of the groups)",
    responses=errors(400, 401, 403),
)
async def list_available_clients(
    provider_id: ProviderId, caller: CurrentCaller, groups: Groups, page: Page, q: Search = None
) -> ClientPage:
    response = await groups.ListAvailableClients(
        pb.ListAvailableClientsRequest(provider_id=str(provider_id), query=q or "", page=page),
        metadata=caller.metadata,
    )
    return ClientPage(
        items=[Client.from_proto(c) for c in response.clients],
        next_page_token=_next(response.page),
    )


# --- groups ----------------------------------------------------------------------------------


@router.get(
    f"{PREFIX}/groups", summary="The provider's client groups", responses=errors(400, 401, 403)
)
async def list_groups(
    provider_id: ProviderId, caller: CurrentCaller, groups: Groups, page: Page
) -> GroupPage:
    response = await groups.ListGroups(
        pb.ListGroupsRequest(provider_id=str(provider_id), page=page), metadata=caller.metadata
    )
    return GroupPage(
        items=[Group.from_proto(g) for g in response.groups], next_page_token=_next(response.page)
    )


@router.post(
    f"{PREFIX}/groups",
    summary="Create a client group with at least one available client",
    status_code=status.HTTP_201_CREATED,
    responses=with_body(400, 401, 403, 409),
)
async def create_group(
    provider_id: ProviderId, body: CreateGroupBody, caller: CurrentCaller, groups: Groups
) -> Group:
    """409 when the name is taken (`group_name_taken`) or belongs to a deleted group
    (`group_name_deleted`), or when a client is already in a group (`client_already_grouped`)."""
    response = await groups.CreateGroup(
        pb.CreateGroupRequest(
            provider_id=str(provider_id),
            name=body.name,
            client_ids=[str(c) for c in body.client_ids],
        ),
        metadata=caller.metadata,
    )
    return Group.from_proto(response.group)


@router.get(
    f"{PREFIX}/groups/{{group_id}}", summary="One client group", responses=errors(400, 401, 404)
)
async def get_group(
    provider_id: ProviderId, group_id: GroupId, caller: CurrentCaller, groups: Groups
) -> Group:
    response = await groups.GetGroup(
        pb.GetGroupRequest(provider_id=str(provider_id), group_id=str(group_id)),
        metadata=caller.metadata,
    )
    return Group.from_proto(response.group)


@router.get(
    f"{PREFIX}/groups/{{group_id}}/clients",
    summary="The clients of a group, searchable by name",
    responses=errors(400, 401, 404),
)
async def list_group_clients(
    provider_id: ProviderId,
    group_id: GroupId,
    caller: CurrentCaller,
    groups: Groups,
    page: Page,
    q: Search = None,
) -> ClientPage:
    response = await groups.ListGroupClients(
        pb.ListGroupClientsRequest(
            provider_id=str(provider_id), group_id=str(group_id), query=q or "", page=page
        ),
        metadata=caller.metadata,
    )
    return ClientPage(
        items=[Client.from_proto(c) for c in response.clients],
        next_page_token=_next(response.page),
    )


@router.post(
    f"{PREFIX}/groups/{{group_id}}/access-summary",
    summary="What saving these changes would do to each employee's access (nothing is written)",
    responses=with_body(400, 401, 404, 409),
)
async def access_summary(
    provider_id: ProviderId,
    group_id: GroupId,
    body: GroupChangesBody,
    caller: CurrentCaller,
    groups: Groups,
) -> AccessSummary:
    response = await groups.UpdateGroup(
        body.to_proto(provider_id, group_id, dry_run=True), metadata=caller.metadata
    )
    return AccessSummary.from_proto(response.summary)


@router.post(
    f"{PREFIX}/groups/{{group_id}}/changes",
    summary="Save changes to a group (confirmation CONFIRMER)",
    status_code=status.HTTP_202_ACCEPTED,
    responses=with_body(400, 401, 404, 409),
)
async def save_changes(
    provider_id: ProviderId,
    group_id: GroupId,
    body: GroupChangesBody,
    caller: CurrentCaller,
    groups: Groups,
) -> GroupChanges:
    """Rename, add or remove clients, assign or unassign employees, together. The access they
    move is applied by the process requests answered (202); follow them at
    `/process-requests/{id}`."""
    response = await groups.UpdateGroup(
        body.to_proto(provider_id, group_id, dry_run=False), metadata=caller.metadata
    )
    return GroupChanges.from_proto(response)


@router.delete(
    f"{PREFIX}/groups/{{group_id}}",
    summary="Delete a group (confirmation SUPPRIMER); its access is revoked",
    status_code=status.HTTP_202_ACCEPTED,
    responses=errors(400, 401, 404),
)
async def delete_group(
    provider_id: ProviderId,
    group_id: GroupId,
    caller: CurrentCaller,
    groups: Groups,
    confirmation: Annotated[
        str | None, Query(max_length=40, description="SUPPRIMER (or DELETE).")
    ] = None,
) -> ProcessRequest:
    response = await groups.DeleteGroup(
        pb.DeleteGroupRequest(
            provider_id=str(provider_id), group_id=str(group_id), confirmation=confirmation or ""
        ),
        metadata=caller.metadata,
    )
    return ProcessRequest.from_proto(response.process_request)


# --- employees -------------------------------------------------------------------------------


@router.get(
    f"{PREFIX}/employees",
    summary="Employees who may be assigned to groups, with their assignments",
    responses=errors(400, 401, 403),
)
async def list_employees(
    provider_id: ProviderId, caller: CurrentCaller, groups: Groups, page: Page
) -> EmployeePage:
    response = await groups.ListEmployees(
        pb.ListEmployeesRequest(provider_id=str(provider_id), page=page), metadata=caller.metadata
    )
    return EmployeePage(
        items=[Employee.from_proto(e) for e in response.employees],
        next_page_token=_next(response.page),
    )


@router.post(
    f"{PREFIX}/employees/assignments",
    summary="Assign employees to a group with a role (dry_run: the access summary only)",
    responses=with_body(400, 401, 404, 409),
)
async def assign_employees(
    provider_id: ProviderId, body: AssignEmployeesBody, caller: CurrentCaller, groups: Groups
) -> GroupChanges:
    changes = GroupChangesBody(
        assign=[EmployeeRoleBody(employee_id=e, role=body.role) for e in body.employee_ids],
        confirmation=body.confirmation,
    )
    response = await groups.UpdateGroup(
        changes.to_proto(provider_id, body.group_id, dry_run=body.dry_run),
        metadata=caller.metadata,
    )
    return GroupChanges.from_proto(response)


# --- process requests ---------------------------------------------------------------------------


@router.get(
    f"{PREFIX}/process-requests",
    summary="The process requests table, newest first",
    responses=errors(400, 401, 403),
)
async def list_process_requests(
    provider_id: ProviderId,
    caller: CurrentCaller,
    groups: Groups,
    page: Page,
    status_: Annotated[
        ProcessRequestStatus | None, Query(alias="status", description="Only this status.")
    ] = None,
    group_id: Annotated[uuid.UUID | None, Query(description="Only this group.")] = None,
    group_name: Annotated[
        str | None, Query(max_length=200, description="Only this group name (deleted too).")
    ] = None,
) -> ProcessRequestPage:
    response = await groups.ListProcessRequests(
        pb.ListProcessRequestsRequest(
            provider_id=str(provider_id),
            status=status_.to_proto() if status_ else 0,  # type: ignore[arg-type]
            group_id=str(group_id) if group_id else "",
            group_name=group_name or "",
            page=page,
        ),
        metadata=caller.metadata,
    )
    return ProcessRequestPage(
        items=[ProcessRequest.from_proto(r) for r in response.process_requests],
        next_page_token=_next(response.page),
    )


@router.get(
    f"{PREFIX}/process-requests/{{process_request_id}}",
    summary="One process request with its progress",
    responses=errors(400, 401, 403, 404),
)
async def get_process_request(
    provider_id: ProviderId, process_request_id: RequestId, caller: CurrentCaller, groups: Groups
) -> ProcessRequest:
    response = await groups.GetProcessRequest(
        pb.GetProcessRequestRequest(
            provider_id=str(provider_id), process_request_id=str(process_request_id)
        ),
        metadata=caller.metadata,
    )
    return ProcessRequest.from_proto(response.process_request)


@router.get(
    f"{PREFIX}/process-requests/{{process_request_id}}/failures",
    summary="The program accounts the request could not update (latest attempt)",
    responses=errors(400, 401, 403, 404),
)
async def list_failures(
    provider_id: ProviderId,
    process_request_id: RequestId,
    caller: CurrentCaller,
    groups: Groups,
    page: Page,
) -> ProcessRequestFailurePage:
    response = await groups.ListProcessRequestFailures(
        pb.ListProcessRequestFailuresRequest(
            provider_id=str(provider_id), process_request_id=str(process_request_id), page=page
        ),
        metadata=caller.metadata,
    )
    return ProcessRequestFailurePage(
        items=[ProcessRequestFailure.from_proto(f) for f in response.failures],
        next_page_token=_next(response.page),
    )


@router.post(
    f"{PREFIX}/process-requests/{{process_request_id}}/retry",
    summary="Retry a failed request for the program accounts that failed only",
    status_code=status.HTTP_202_ACCEPTED,
    responses=errors(400, 401, 403, 404, 409),
)
async def retry_process_request(
    provider_id: ProviderId, process_request_id: RequestId, caller: CurrentCaller, groups: Groups
) -> ProcessRequest:
    response = await groups.RetryProcessRequest(
        pb.RetryProcessRequestRequest(
            provider_id=str(provider_id), process_request_id=str(process_request_id)
        ),
        metadata=caller.metadata,
    )
    return ProcessRequest.from_proto(response.process_request)


async def close_channel(state: object) -> None:
    """Closes the groups channel if one was made (the app's lifespan calls it at shutdown)."""
    channel: grpc.aio.Channel | None = getattr(state, "groups_channel", None)
    if channel is not None:
        await channel.close()
