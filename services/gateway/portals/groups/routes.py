"""Client groups and delegated access: `/v1/providers/{provider_id}/…`.

Every route forwards the caller's token; the groups service decides (only the provider's
business_account_manager may see or manage its groups: others get 403 on provider-level lists and
404 on a group). Changes that move access answer 202 with the process requests that apply them;
their progress is read at `/process-requests/{id}`.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated

import grpc
from fastapi import APIRouter, Depends, Path, Query, Response, status
from google.protobuf.message import Message
from guichet.groups.v1 import groups_pb2 as pb, groups_pb2_grpc

from services.gateway.auth import CurrentCaller
from services.gateway.openapi import errors
from services.gateway.portals.groups.schemas import (
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
from services.gateway.problems import Problem, problem_from_rpc_error
from services.gateway.rpc import (
    ChangeConfirmation,
    DeleteConfirmation,
    Operations,
    Page,
    background,
    one,
    operation_id,
    page_of,
    process_request_path,
    service_stub,
)

router = APIRouter(tags=["client groups"], generate_unique_id_function=operation_id)
groups_stub = service_stub("groups", groups_pb2_grpc.GroupsServiceStub)
Groups = Annotated[groups_pb2_grpc.GroupsServiceStub, Depends(groups_stub)]
ops = Operations(router, pb.DESCRIPTOR.services_by_name["GroupsService"], Groups)

ProviderId = Annotated[uuid.UUID, Path(description="The service provider (organisation id).")]
GroupId = Annotated[uuid.UUID, Path(description="The client group's id.")]
RequestId = Annotated[uuid.UUID, Path(description="The process request's id.")]
Search = Annotated[
    str | None, Query(max_length=200, description="Part of the client's name (accents ignored).")
]


PREFIX = "/v1/providers/{provider_id}"

_NOTHING_IN_BACKGROUND: dict[int | str, dict[str, object]] = {
    200: {
        "model": GroupChanges,
        "description": "Nothing moves access (a rename, a dry run): no process request.",
    }
}


def first_process_request(params: dict[str, object], answer: GroupChanges) -> str | None:
    if not answer.process_requests:
        return None
    return process_request_path(params["provider_id"], answer.process_requests[0].id)


def the_process_request(params: dict[str, object], answer: ProcessRequest) -> str:
    return process_request_path(params["provider_id"], answer.id)


def with_body(*codes: int) -> dict[int | str, dict[str, object]]:
    """`errors(...)` of a route taking a list of ids: a body past MAX_BODY_BYTES is a 413."""
    return {
        **errors(*codes),
        413: {"model": Problem, "description": "The body is too large: send fewer ids at once."},
    }


# --- relationships and clients ----------------------------------------------------------------


@ops.get(
    f"{PREFIX}/relationships",
    rpc="ListRelationships",
    answer=page_of(RelationshipPage, Relationship, "relationships"),
    summary="The provider's business relationships with its clients",
    responses=errors(400, 401, 403),
)
def list_relationships(
    provider_id: ProviderId,
    page: Page,
    status_: Annotated[
        RelationshipStatus | None, Query(alias="status", description="Only this status.")
    ] = None,
) -> pb.ListRelationshipsRequest:
    return pb.ListRelationshipsRequest(
        provider_id=str(provider_id),
        status=status_.to_proto() if status_ else 0,  # type: ignore[arg-type]
        page=page,
    )


@ops.get(
    f"{PREFIX}/available-clients",
    rpc="ListAvailableClients",
    answer=page_of(ClientPage, Client, "clients"),
    summary="Clients that may join a group (active relationship, in none of the groups)",
    responses=errors(400, 401, 403),
)
def list_available_clients(
    provider_id: ProviderId, page: Page, q: Search = None
) -> pb.ListAvailableClientsRequest:
    return pb.ListAvailableClientsRequest(provider_id=str(provider_id), query=q or "", page=page)


# --- groups ----------------------------------------------------------------------------------


@ops.get(
    f"{PREFIX}/groups",
    rpc="ListGroups",
    answer=page_of(GroupPage, Group, "groups"),
    summary="The provider's client groups",
    responses=errors(400, 401, 403),
)
def list_groups(provider_id: ProviderId, page: Page) -> pb.ListGroupsRequest:
    return pb.ListGroupsRequest(provider_id=str(provider_id), page=page)


@ops.post(
    f"{PREFIX}/groups",
    rpc="CreateGroup",
    answer=one(Group, "group"),
    summary="Create a client group with at least one available client",
    status_code=status.HTTP_201_CREATED,
    responses=with_body(400, 401, 403, 409),
)
def create_group(provider_id: ProviderId, body: CreateGroupBody) -> pb.CreateGroupRequest:
    """409 when the name is taken (`group_name_taken`) or belongs to a deleted group
    (`group_name_deleted`), or when a client is already in a group (`client_already_grouped`)."""
    return pb.CreateGroupRequest(
        provider_id=str(provider_id),
        name=body.name,
        client_ids=[str(c) for c in body.client_ids],
    )


@ops.get(
    f"{PREFIX}/groups/{{group_id}}",
    rpc="GetGroup",
    answer=one(Group, "group"),
    summary="One client group",
    responses=errors(400, 401, 404),
)
def get_group(provider_id: ProviderId, group_id: GroupId) -> pb.GetGroupRequest:
    return pb.GetGroupRequest(provider_id=str(provider_id), group_id=str(group_id))


@ops.get(
    f"{PREFIX}/groups/{{group_id}}/clients",
    rpc="ListGroupClients",
    answer=page_of(ClientPage, Client, "clients"),
    summary="The clients of a group, searchable by name",
    responses=errors(400, 401, 404),
)
def list_group_clients(
    provider_id: ProviderId, group_id: GroupId, page: Page, q: Search = None
) -> pb.ListGroupClientsRequest:
    return pb.ListGroupClientsRequest(
        provider_id=str(provider_id), group_id=str(group_id), query=q or "", page=page
    )


@ops.post(
    f"{PREFIX}/groups/{{group_id}}/access-summary",
    rpc="UpdateGroup",
    answer=one(AccessSummary, "summary"),
    summary="What saving these changes would do to each employee's access (nothing is written)",
    responses=with_body(400, 401, 404, 409),
)
def access_summary(provider_id: ProviderId, group_id: GroupId, body: GroupChangesBody) -> Message:
    return body.to_proto(provider_id, group_id, dry_run=True, confirmation=None)


@ops.post(
    f"{PREFIX}/groups/{{group_id}}/changes",
    rpc="UpdateGroup",
    answer=one(GroupChanges),
    summary="Save changes to a group (confirmation CONFIRMER)",
    status_code=status.HTTP_202_ACCEPTED,
    location=first_process_request,
    responses={**with_body(400, 401, 404, 409), **_NOTHING_IN_BACKGROUND},
)
def save_group_changes(
    provider_id: ProviderId,
    group_id: GroupId,
    body: GroupChangesBody,
    confirmation: ChangeConfirmation = None,
) -> Message:
    """Rename, add or remove clients, assign or unassign employees, together. The access they
    move is applied by the process requests answered (202, `Location` naming the first); follow
    them at `/process-requests/{id}`. A rename alone needs none: 200."""
    return body.to_proto(provider_id, group_id, dry_run=False, confirmation=confirmation)


@ops.delete(
    f"{PREFIX}/groups/{{group_id}}",
    rpc="DeleteGroup",
    answer=one(ProcessRequest, "process_request"),
    summary="Delete a group (confirmation SUPPRIMER); its access is revoked",
    status_code=status.HTTP_202_ACCEPTED,
    location=the_process_request,
    responses=errors(400, 401, 404),
)
def delete_group(
    provider_id: ProviderId, group_id: GroupId, confirmation: DeleteConfirmation
) -> pb.DeleteGroupRequest:
    """The group's clients become available again; its employees' access is revoked by the
    process request answered (202, `Location`)."""
    return pb.DeleteGroupRequest(
        provider_id=str(provider_id), group_id=str(group_id), confirmation=confirmation
    )


# --- employees -------------------------------------------------------------------------------


@ops.get(
    f"{PREFIX}/employees",
    rpc="ListEmployees",
    answer=page_of(EmployeePage, Employee, "employees"),
    summary="Employees who may be assigned to groups, with their assignments",
    responses=errors(400, 401, 403),
)
def list_employees(provider_id: ProviderId, page: Page) -> pb.ListEmployeesRequest:
    return pb.ListEmployeesRequest(provider_id=str(provider_id), page=page)


@router.post(
    f"{PREFIX}/employees/assignments",
    summary="Assign employees to a group with a role (dry_run: the access summary only)",
    status_code=status.HTTP_202_ACCEPTED,
    responses={**with_body(400, 401, 404, 409), **_NOTHING_IN_BACKGROUND},
)
async def assign_employees(
    provider_id: ProviderId,
    body: AssignEmployeesBody,
    caller: CurrentCaller,
    groups: Groups,
    response: Response,
    confirmation: ChangeConfirmation = None,
) -> GroupChanges:
    """Gives each employee the role in the group. Like saving a group's changes, the access
    moves in the background: 202 with the process request (`Location`); a dry run answers 200
    with the access summary only. Errors name the request's own fields (`employee_ids[0]`)."""
    changes = GroupChangesBody(
        assign=[EmployeeRoleBody(employee_id=e, role=body.role) for e in body.employee_ids]
    )
    try:
        reply = await groups.UpdateGroup(
            changes.to_proto(
                provider_id, body.group_id, dry_run=body.dry_run, confirmation=confirmation
            ),
            metadata=caller.metadata,
        )
    except grpc.aio.AioRpcError as error:
        raise problem_from_rpc_error(error, rename=_assign_field) from None
    answer = GroupChanges.from_proto(reply)
    background(response, first_process_request({"provider_id": provider_id}, answer))
    return answer


def _assign_field(name: str) -> str:
    """UpdateGroup's `assign[3].employee_id` is this request's `employee_ids[3]`."""
    match = re.fullmatch(r"assign\[(\d+)\]\.(employee_id|role)", name)
    if match is None:
        return name
    return f"employee_ids[{match[1]}]" if match[2] == "employee_id" else "role"


# --- process requests ---------------------------------------------------------------------------


@ops.get(
    f"{PREFIX}/process-requests",
    rpc="ListProcessRequests",
    answer=page_of(ProcessRequestPage, ProcessRequest, "process_requests"),
    summary="The process requests table, newest first",
    responses=errors(400, 401, 403),
)
def list_process_requests(
    provider_id: ProviderId,
    page: Page,
    status_: Annotated[
        ProcessRequestStatus | None, Query(alias="status", description="Only this status.")
    ] = None,
    group_id: Annotated[uuid.UUID | None, Query(description="Only this group.")] = None,
    group_name: Annotated[
        str | None, Query(max_length=200, description="Only this group name (deleted too).")
    ] = None,
) -> pb.ListProcessRequestsRequest:
    return pb.ListProcessRequestsRequest(
        provider_id=str(provider_id),
        status=status_.to_proto() if status_ else 0,  # type: ignore[arg-type]
        group_id=str(group_id) if group_id else "",
        group_name=group_name or "",
        page=page,
    )


@ops.get(
    f"{PREFIX}/process-requests/{{process_request_id}}",
    rpc="GetProcessRequest",
    answer=one(ProcessRequest, "process_request"),
    summary="One process request with its progress",
    responses=errors(400, 401, 403, 404),
)
def get_process_request(
    provider_id: ProviderId, process_request_id: RequestId
) -> pb.GetProcessRequestRequest:
    return pb.GetProcessRequestRequest(
        provider_id=str(provider_id), process_request_id=str(process_request_id)
    )


@ops.get(
    f"{PREFIX}/process-requests/{{process_request_id}}/failures",
    rpc="ListProcessRequestFailures",
    answer=page_of(ProcessRequestFailurePage, ProcessRequestFailure, "failures"),
    summary="The program accounts the request could not update (latest attempt)",
    responses=errors(400, 401, 403, 404),
)
def list_process_request_failures(
    provider_id: ProviderId, process_request_id: RequestId, page: Page
) -> pb.ListProcessRequestFailuresRequest:
    return pb.ListProcessRequestFailuresRequest(
        provider_id=str(provider_id), process_request_id=str(process_request_id), page=page
    )


@ops.post(
    f"{PREFIX}/process-requests/{{process_request_id}}/retry",
    rpc="RetryProcessRequest",
    answer=one(ProcessRequest, "process_request"),
    summary="Retry a failed request for the program accounts that failed only",
    status_code=status.HTTP_202_ACCEPTED,
    location=the_process_request,
    responses=errors(400, 401, 403, 404, 409),
)
def retry_process_request(
    provider_id: ProviderId, process_request_id: RequestId
) -> pb.RetryProcessRequestRequest:
    return pb.RetryProcessRequestRequest(
        provider_id=str(provider_id), process_request_id=str(process_request_id)
    )
