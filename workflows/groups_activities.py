"""Activities of the groups workflows: thin calls to the groups service over gRPC.

The work itself (one SQL statement per batch, progress in the same transaction) happens inside
the groups service; an activity pages through a process request batch by batch, heartbeating the
cursor after each one, so that an activity retried on another worker resumes where the last
heartbeat left it (and the service's compare-and-set cursor makes any overlap a no-op).
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from guichet.groups.v1 import groups_pb2 as pb, groups_pb2_grpc
from temporalio import activity
from temporalio.exceptions import ApplicationError

from workflows.contracts.groups import ExpiryInput

# Answers that no retry can change: the workflow is told at once (the type names the reason).
_PERMANENT = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.UNIMPLEMENTED,
}
SUPERSEDED = "Superseded"
REFUSED = "Refused"


@dataclass
class BatchesInput:
    process_request_id: str
    attempt: int
    cursor: str


@dataclass
class BatchesResult:
    cursor: str
    finished: bool
    done: int
    total: int
    failed: int
    status: str


@dataclass
class FailBatchInput:
    process_request_id: str
    attempt: int
    cursor: str
    message: str


def _refusal(error: grpc.aio.AioRpcError) -> Exception:
    if error.code() not in _PERMANENT:
        return ApplicationError(f"groups unavailable: {error.code().name}: {error.details()}")
    superseded = error.code() == grpc.StatusCode.FAILED_PRECONDITION and "superseded" in (
        error.details() or ""
    )
    return ApplicationError(
        f"groups refused: {error.code().name}: {error.details()}",
        type=SUPERSEDED if superseded else REFUSED,
        non_retryable=True,
    )


def _result(progress: pb.DelegationProgress) -> BatchesResult:
    status = pb.ProcessRequestStatus.Name(progress.status)
    return BatchesResult(
        cursor=progress.next_cursor,
        finished=progress.finished,
        done=progress.done,
        total=progress.total,
        failed=progress.failed,
        status=status.removeprefix("PROCESS_REQUEST_STATUS_").lower(),
    )


class GroupsActivities:
    """Built once per worker with a channel to groups that carries the worker's service token."""

    def __init__(
        self,
        stub: groups_pb2_grpc.GroupsServiceStub,
        *,
        batch_size: int = 25_000,
        batches_per_activity: int = 40,
    ) -> None:
        self._stub = stub
        self._batch_size = batch_size
        self._batches_per_activity = batches_per_activity

    @activity.defn(name="apply_delegation_batches")
    async def apply_delegation_batches(self, work: BatchesInput) -> BatchesResult:
        """Applies up to `batches_per_activity` batches; resumes from the last heartbeat."""
        details = activity.info().heartbeat_details
        cursor = str(details[0]) if details else work.cursor
        progress = pb.DelegationProgress()
        for _ in range(self._batches_per_activity):
            try:
                response = await self._stub.ApplyDelegationBatch(
                    pb.ApplyDelegationBatchRequest(
                        process_request_id=work.process_request_id,
                        attempt=work.attempt,
                        after_cursor=cursor,
                        limit=self._batch_size,
                    ),
                    timeout=120,
                )
            except grpc.aio.AioRpcError as error:
                raise _refusal(error) from error
            progress = response.progress
            cursor = progress.next_cursor
            activity.heartbeat(cursor, progress.done, progress.total)
            if progress.finished:
                break
        return _result(progress)

    @activity.defn(name="fail_delegation_batch")
    async def fail_delegation_batch(self, work: FailBatchInput) -> BatchesResult:
        """Records the batch after `cursor` as failed (a no-op if the cursor has moved on)."""
        try:
            response = await self._stub.FailDelegationBatch(
                pb.FailDelegationBatchRequest(
                    process_request_id=work.process_request_id,
                    attempt=work.attempt,
                    after_cursor=work.cursor,
                    limit=self._batch_size,
                    message=work.message,
                ),
                timeout=120,
            )
        except grpc.aio.AioRpcError as error:
            raise _refusal(error) from error
        return _result(response.progress)

    @activity.defn(name="expire_relationship")
    async def expire_relationship(self, work: ExpiryInput) -> int:
        """The client leaves the provider's groups; answers how many requests were recorded
        (-1 when the timer was outdated: the relationship was renewed or changed since)."""
        try:
            response = await self._stub.ExpireRelationship(
                pb.ExpireRelationshipRequest(relationship_id=work.relationship_id, term=work.term),
                timeout=30,
            )
        except grpc.aio.AioRpcError as error:
            raise _refusal(error) from error
        return len(response.process_request_ids) if response.expired else -1
