"""Between the domain's strings and views and the contract's messages (groups.proto), both ways:
enum names, timestamps, and one `*_to_proto` per view the servicer answers with.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from guichet.common.v1 import common_pb2
from guichet.groups.v1 import groups_pb2 as pb

from services.groups.domain.batches import BatchResult
from services.groups.domain.client_groups import GroupView
from services.groups.domain.common import ClientView
from services.groups.domain.employees import AssignmentView
from services.groups.domain.group_changes import AccessSummary
from services.groups.domain.relationships import RelationshipView
from services.groups.models import ProcessRequest


def _enum_maps(enum: Any, prefix: str) -> tuple[dict[str, int], dict[int, str]]:
    to_proto = {
        name.removeprefix(prefix).lower(): value
        for name, value in enum.items()
        if not name.endswith("_UNSPECIFIED")
    }
    return to_proto, {value: name for name, value in to_proto.items()}


_RELATIONSHIP_TO, RELATIONSHIP_FROM = _enum_maps(pb.RelationshipStatus, "RELATIONSHIP_STATUS_")
_ROLE_TO, ROLE_FROM = _enum_maps(pb.DelegatedRole, "DELEGATED_ROLE_")
_STATUS_TO, STATUS_FROM = _enum_maps(pb.ProcessRequestStatus, "PROCESS_REQUEST_STATUS_")
_OPERATION_TO, _ = _enum_maps(pb.Operation, "OPERATION_")
_ACCOUNT_TO, ACCOUNT_FROM = _enum_maps(pb.ProgramAccountStatus, "PROGRAM_ACCOUNT_STATUS_")


def name_of(value: int, names: dict[int, str]) -> str:
    """The domain's name of a proto enum value: "" when unspecified, a non-name when unknown."""
    return "" if value == 0 else names.get(value, f"#{value}")


def _timestamp(moment: datetime | None) -> Timestamp | None:
    if moment is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def page_response(token: str) -> common_pb2.PageResponse:
    return common_pb2.PageResponse(next_page_token=token)


def client_to_proto(client: ClientView) -> pb.Client:
    return pb.Client(
        id=str(client.id), name=client.name, program_account_count=client.program_accounts
    )


def relationship_to_proto(view: RelationshipView) -> pb.Relationship:
    r = view.relationship
    return pb.Relationship(
        id=str(r.id),
        provider_id=str(r.provider_id),
        client=client_to_proto(view.client),
        status=_RELATIONSHIP_TO[r.status],  # type: ignore[arg-type]
        expire_time=_timestamp(r.expires_at),
        group_id=str(view.group_id) if view.group_id else "",
    )


def assignment_to_proto(a: AssignmentView) -> pb.Assignment:
    return pb.Assignment(
        employee_id=str(a.employee_id),
        username=a.username,
        role=_ROLE_TO[a.role],  # type: ignore[arg-type]
        group_id=str(a.group_id),
        group_name=a.group_name,
    )


def group_to_proto(view: GroupView) -> pb.Group:
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


def summary_to_proto(summary: AccessSummary) -> pb.AccessSummary:
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


def progress_to_proto(result: BatchResult) -> pb.DelegationProgress:
    return pb.DelegationProgress(
        next_cursor=result.next_cursor,
        finished=result.finished,
        processed=result.processed,
        done=result.done,
        total=result.total,
        failed=result.failed,
        status=_STATUS_TO[result.status],  # type: ignore[arg-type]
    )
