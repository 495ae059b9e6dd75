"""JSON shapes of the client-groups routes (`/v1/providers/{provider_id}/…`) and their proto
conversions.

As in `schemas.py`, request models check shape only (UUIDs, sizes, known fields); the rules
(availability, confirmation words, who may be assigned) are the groups service's and come back
as problems naming the field. Enums are lower-case strings, timestamps ISO 8601.
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from guichet.groups.v1 import groups_pb2 as pb
from pydantic import BaseModel, ConfigDict, Field

from services.gateway.fields import StrictBool, UniqueIds, optional_text, text, unique_ids

# Ids per call at the edge: a body stays under the gateway's MAX_BODY_BYTES (64 KiB); larger
# groups are built over several saves (the gRPC contract takes up to 10,000 at once).
MAX_IDS = 1_500
# groups' limits (services/groups/domain/common.py; tests/gateway/test_limits.py compares them).
NAME_MAX = 100
MAX_EMPLOYEES = 500
EXAMPLE_CLIENT_ID = "3b2f6c1d-7e8a-4b9c-8d0e-1f2a3b4c5d6e"
EXAMPLE_GROUP_ID = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
EXAMPLE_EMPLOYEE_ID = "6f1c2a4e-8b3d-4c5e-9f70-1a2b3c4d5e6f"


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


def next_token() -> Any:
    return Field(
        default=None,
        examples=[None],
        description="Pass as page_token for the next page; null on the last.",
    )


_TIME = "2025-03-14T09:26:53Z"
_REQUEST_EXAMPLE: dict[str, Any] = {
    "id": "2c9d1e7f-3a4b-4c5d-8e6f-7a8b9c0d1e2f",
    "provider_id": "0d9e8f7a-6b5c-4d3e-8f1a-2b3c4d5e6f70",
    "group_id": EXAMPLE_GROUP_ID,
    "group_name": "Importateurs du Québec",
    "operation": "assign_employees",
    "initiator_id": "6f1c2a4e-8b3d-4c5e-9f70-1a2b3c4d5e6f",
    "initiator_name": "dupont.jean",
    "status": "in_progress",
    "create_time": _TIME,
    "update_time": _TIME,
    "finish_time": None,
    "done": 7500,
    "total": 10000,
    "failed": 0,
    "attempt": 1,
    "workflow_id": "delegation/2c9d1e7f-3a4b-4c5d-8e6f-7a8b9c0d1e2f",
    "summary": "Assign martin.claire (editor)",
}
_GROUP_EXAMPLE: dict[str, Any] = {
    "id": EXAMPLE_GROUP_ID,
    "provider_id": "0d9e8f7a-6b5c-4d3e-8f1a-2b3c4d5e6f70",
    "name": "Importateurs du Québec",
    "client_count": 3,
    "program_account_count": 12,
    "assignments": [
        {
            "employee_id": EXAMPLE_EMPLOYEE_ID,
            "username": "martin.claire",
            "role": "editor",
            "group_id": EXAMPLE_GROUP_ID,
            "group_name": "Importateurs du Québec",
        }
    ],
    "create_time": _TIME,
    "update_time": _TIME,
}
_SUMMARY_EXAMPLE: dict[str, Any] = {
    "changes": [
        {
            "employee_id": EXAMPLE_EMPLOYEE_ID,
            "username": "martin.claire",
            "role_before": None,
            "role_after": "editor",
            "program_accounts_before": 0,
            "program_accounts_after": 12,
            "granted": 12,
            "revoked": 0,
            "role_changed": 0,
        }
    ],
    "clients_added": 0,
    "clients_removed": 0,
    "program_accounts_added": 0,
    "program_accounts_removed": 0,
}


def _time(value: Timestamp, present: bool) -> dt.datetime | None:
    return value.ToDatetime(tzinfo=dt.UTC) if present else None


class _ProtoEnum(StrEnum):
    """A lower-case string enum mirroring a proto enum `<PREFIX>_<NAME>`."""

    @classmethod
    def _proto(cls) -> Any:
        raise NotImplementedError

    @classmethod
    def _prefix(cls) -> str:
        raise NotImplementedError

    def to_proto(self) -> Any:
        return self._proto().Value(f"{self._prefix()}{self.name}")

    @classmethod
    def from_proto(cls, value: int) -> Any:
        name = cls._proto().Name(value)
        return None if name.endswith("_UNSPECIFIED") else cls[name.removeprefix(cls._prefix())]


class RelationshipStatus(_ProtoEnum):
    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"

    @classmethod
    def _proto(cls) -> Any:
        return pb.RelationshipStatus

    @classmethod
    def _prefix(cls) -> str:
        return "RELATIONSHIP_STATUS_"


class DelegatedRole(_ProtoEnum):
    """The role an employee holds on every program account of a group's clients."""

    PROGRAM_ACCOUNT_MANAGER = "program_account_manager"
    EDITOR = "editor"
    READ_ONLY = "read_only"

    @classmethod
    def _proto(cls) -> Any:
        return pb.DelegatedRole

    @classmethod
    def _prefix(cls) -> str:
        return "DELEGATED_ROLE_"


class ProcessRequestStatus(_ProtoEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    FAILED = "failed"
    COMPLETED = "completed"

    @classmethod
    def _proto(cls) -> Any:
        return pb.ProcessRequestStatus

    @classmethod
    def _prefix(cls) -> str:
        return "PROCESS_REQUEST_STATUS_"


class Operation(_ProtoEnum):
    ASSIGN_EMPLOYEES = "assign_employees"
    UNASSIGN_EMPLOYEES = "unassign_employees"
    ADD_CLIENTS = "add_clients"
    REMOVE_CLIENTS = "remove_clients"
    DELETE_GROUP = "delete_group"
    RELATIONSHIP_EXPIRED = "relationship_expired"
    PROGRAM_ACCOUNTS_ADDED = "program_accounts_added"

    @classmethod
    def _proto(cls) -> Any:
        return pb.Operation

    @classmethod
    def _prefix(cls) -> str:
        return "OPERATION_"


# --- responses ---------------------------------------------------------------------------------


class Client(BaseModel):
    id: uuid.UUID = Field(examples=[EXAMPLE_CLIENT_ID])
    name: str = Field(examples=["Importations Laval"])
    program_account_count: int = Field(examples=[4])

    @classmethod
    def from_proto(cls, client: pb.Client) -> Client:
        return cls(
            id=uuid.UUID(client.id),
            name=client.name,
            program_account_count=client.program_account_count,
        )


class ClientPage(BaseModel):
    items: list[Client]
    next_page_token: str | None = next_token()


class Relationship(BaseModel):
    id: uuid.UUID
    provider_id: uuid.UUID
    client: Client
    status: RelationshipStatus
    expire_time: dt.datetime | None = None
    group_id: uuid.UUID | None = Field(
        default=None, description="The provider's group the client is in, if any."
    )

    @classmethod
    def from_proto(cls, r: pb.Relationship) -> Relationship:
        return cls(
            id=uuid.UUID(r.id),
            provider_id=uuid.UUID(r.provider_id),
            client=Client.from_proto(r.client),
            status=RelationshipStatus.from_proto(r.status),
            expire_time=_time(r.expire_time, r.HasField("expire_time")),
            group_id=uuid.UUID(r.group_id) if r.group_id else None,
        )


class RelationshipPage(BaseModel):
    items: list[Relationship]
    next_page_token: str | None = next_token()


class Assignment(BaseModel):
    employee_id: uuid.UUID
    username: str = Field(examples=["martin.claire"])
    role: DelegatedRole
    group_id: uuid.UUID
    group_name: str = Field(examples=["Importateurs du Québec"])

    @classmethod
    def from_proto(cls, a: pb.Assignment) -> Assignment:
        return cls(
            employee_id=uuid.UUID(a.employee_id),
            username=a.username,
            role=DelegatedRole.from_proto(a.role),
            group_id=uuid.UUID(a.group_id),
            group_name=a.group_name,
        )


class Group(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_GROUP_EXAMPLE]})

    id: uuid.UUID = Field(examples=[EXAMPLE_GROUP_ID])
    provider_id: uuid.UUID
    name: str = Field(examples=["Importateurs du Québec"])
    client_count: int
    program_account_count: int
    assignments: list[Assignment]
    create_time: dt.datetime | None = None
    update_time: dt.datetime | None = None

    @classmethod
    def from_proto(cls, g: pb.Group) -> Group:
        return cls(
            id=uuid.UUID(g.id),
            provider_id=uuid.UUID(g.provider_id),
            name=g.name,
            client_count=g.client_count,
            program_account_count=g.program_account_count,
            assignments=[Assignment.from_proto(a) for a in g.assignments],
            create_time=_time(g.create_time, g.HasField("create_time")),
            update_time=_time(g.update_time, g.HasField("update_time")),
        )


class GroupPage(BaseModel):
    items: list[Group]
    next_page_token: str | None = next_token()


class ProcessRequest(BaseModel):
    """One row of the process requests table, with live progress."""

    model_config = ConfigDict(json_schema_extra={"examples": [_REQUEST_EXAMPLE]})

    id: uuid.UUID = Field(description="Quote it when asking for technical assistance.")
    provider_id: uuid.UUID
    group_id: uuid.UUID
    group_name: str
    operation: Operation
    initiator_id: str | None = None
    initiator_name: str = Field(examples=["dupont.jean"])
    status: ProcessRequestStatus
    create_time: dt.datetime | None = None
    update_time: dt.datetime | None = None
    finish_time: dt.datetime | None = None
    done: int = Field(description="Program accounts processed so far in this attempt.")
    total: int = Field(description="Program accounts this attempt walks through.")
    failed: int = Field(description="Program accounts that could not be updated.")
    attempt: int
    workflow_id: str = Field(examples=["delegation/2c9d…"])
    summary: str

    @classmethod
    def from_proto(cls, r: pb.ProcessRequest) -> ProcessRequest:
        return cls(
            id=uuid.UUID(r.id),
            provider_id=uuid.UUID(r.provider_id),
            group_id=uuid.UUID(r.group_id),
            group_name=r.group_name,
            operation=Operation.from_proto(r.operation),
            initiator_id=r.initiator_id or None,
            initiator_name=r.initiator_name,
            status=ProcessRequestStatus.from_proto(r.status),
            create_time=_time(r.create_time, r.HasField("create_time")),
            update_time=_time(r.update_time, r.HasField("update_time")),
            finish_time=_time(r.finish_time, r.HasField("finish_time")),
            done=r.done,
            total=r.total,
            failed=r.failed,
            attempt=r.attempt,
            workflow_id=r.workflow_id,
            summary=r.summary,
        )


class ProcessRequestPage(BaseModel):
    items: list[ProcessRequest]
    next_page_token: str | None = next_token()


class ProcessRequestFailure(BaseModel):
    program_account_id: uuid.UUID
    program_account_number: str = Field(examples=["123456789RM0001"])
    client_id: uuid.UUID
    client_name: str
    reason: str = Field(examples=["program_account_closed"])
    message: str

    @classmethod
    def from_proto(cls, f: pb.ProcessRequestFailure) -> ProcessRequestFailure:
        return cls(
            program_account_id=uuid.UUID(f.program_account_id),
            program_account_number=f.program_account_number,
            client_id=uuid.UUID(f.client_id),
            client_name=f.client_name,
            reason=f.reason,
            message=f.message,
        )


class ProcessRequestFailurePage(BaseModel):
    items: list[ProcessRequestFailure]
    next_page_token: str | None = next_token()


class AccessChange(BaseModel):
    """What the change does to one employee's access through the group."""

    employee_id: uuid.UUID
    username: str
    role_before: DelegatedRole | None = None
    role_after: DelegatedRole | None = None
    program_accounts_before: int
    program_accounts_after: int
    granted: int = Field(description="Program accounts on which the employee gains access.")
    revoked: int = Field(description="Program accounts on which the employee loses access.")
    role_changed: int = Field(description="Program accounts kept with a different role.")

    @classmethod
    def from_proto(cls, c: pb.AccessChange) -> AccessChange:
        return cls(
            employee_id=uuid.UUID(c.employee_id),
            username=c.username,
            role_before=DelegatedRole.from_proto(c.role_before),
            role_after=DelegatedRole.from_proto(c.role_after),
            program_accounts_before=c.program_accounts_before,
            program_accounts_after=c.program_accounts_after,
            granted=c.granted,
            revoked=c.revoked,
            role_changed=c.role_changed,
        )


class AccessSummary(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_SUMMARY_EXAMPLE]})

    changes: list[AccessChange]
    clients_added: int
    clients_removed: int
    program_accounts_added: int
    program_accounts_removed: int

    @classmethod
    def from_proto(cls, s: pb.AccessSummary) -> AccessSummary:
        return cls(
            changes=[AccessChange.from_proto(c) for c in s.changes],
            clients_added=s.clients_added,
            clients_removed=s.clients_removed,
            program_accounts_added=s.program_accounts_added,
            program_accounts_removed=s.program_accounts_removed,
        )


class GroupChanges(BaseModel):
    """The saved group, what the change does to access, and the process requests applying it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "group": _GROUP_EXAMPLE,
                    "summary": _SUMMARY_EXAMPLE,
                    "process_requests": [_REQUEST_EXAMPLE],
                }
            ]
        }
    )

    group: Group
    summary: AccessSummary
    process_requests: list[ProcessRequest]

    @classmethod
    def from_proto(cls, r: pb.UpdateGroupResponse) -> GroupChanges:
        return cls(
            group=Group.from_proto(r.group),
            summary=AccessSummary.from_proto(r.summary),
            process_requests=[ProcessRequest.from_proto(p) for p in r.process_requests],
        )


class Employee(BaseModel):
    id: uuid.UUID
    username: str
    first_name: str | None = None
    last_name: str | None = None
    roles: list[str] = Field(description="The employee's roles in the provider.")
    assignments: list[Assignment]

    @classmethod
    def from_proto(cls, e: pb.Employee) -> Employee:
        return cls(
            id=uuid.UUID(e.id),
            username=e.username,
            first_name=e.first_name or None,
            last_name=e.last_name or None,
            roles=list(e.roles),
            assignments=[Assignment.from_proto(a) for a in e.assignments],
        )


class EmployeePage(BaseModel):
    items: list[Employee]
    next_page_token: str | None = next_token()


# --- requests ----------------------------------------------------------------------------------


class CreateGroupBody(_Request):
    name: str = text(
        NAME_MAX, "Importateurs du Québec", description="Unique among the provider's groups."
    )
    client_ids: UniqueIds = unique_ids(
        MAX_IDS,
        EXAMPLE_CLIENT_ID,
        min_length=1,
        description="Available clients of the provider (422 when one is not).",
    )


class EmployeeRoleBody(_Request):
    employee_id: uuid.UUID = Field(examples=[EXAMPLE_EMPLOYEE_ID])
    role: DelegatedRole = Field(examples=["editor"])


class GroupChangesBody(_Request):
    """Changes to save together (the `confirmation` query parameter says CONFIRMER)."""

    name: str | None = optional_text(NAME_MAX, "Importateurs QC", description="A new name.")
    add_client_ids: UniqueIds = unique_ids(MAX_IDS, EXAMPLE_CLIENT_ID, default_factory=list)
    remove_client_ids: UniqueIds = unique_ids(
        MAX_IDS,
        "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a",
        default_factory=list,
        description="The clients to remove (effacer); none also in add_client_ids (422).",
    )
    assign: list[EmployeeRoleBody] = Field(
        default_factory=list,
        max_length=MAX_EMPLOYEES,
        description="Each employee once (422 `unique_items`), none also unassigned.",
    )
    unassign_employee_ids: UniqueIds = unique_ids(
        MAX_EMPLOYEES, "7e6d5c4b-3a29-4810-9f8e-7d6c5b4a3928", default_factory=list
    )

    def to_proto(
        self,
        provider_id: uuid.UUID,
        group_id: uuid.UUID,
        *,
        dry_run: bool,
        confirmation: str | None,
    ) -> pb.UpdateGroupRequest:
        return pb.UpdateGroupRequest(
            provider_id=str(provider_id),
            group_id=str(group_id),
            name=self.name or "",
            add_client_ids=[str(c) for c in self.add_client_ids],
            remove_client_ids=[str(c) for c in self.remove_client_ids],
            assign=[
                pb.EmployeeRole(employee_id=str(a.employee_id), role=a.role.to_proto())
                for a in self.assign
            ],
            unassign_employee_ids=[str(e) for e in self.unassign_employee_ids],
            confirmation=confirmation or "",
            dry_run=dry_run,
        )


class AssignEmployeesBody(_Request):
    """The Employees page: some employees, one group, one role."""

    group_id: uuid.UUID = Field(examples=[EXAMPLE_GROUP_ID])
    role: DelegatedRole = Field(examples=["read_only"])
    employee_ids: UniqueIds = unique_ids(
        MAX_EMPLOYEES,
        EXAMPLE_EMPLOYEE_ID,
        min_length=1,
        description="Assignable employees of the provider (422 `unknown_user`, "
        "`not_an_assignable_employee` or `business_account_manager` for one that is not).",
    )
    dry_run: StrictBool = Field(
        default=False, description="Only answer the access summary.", examples=[False]
    )
