"""Delegation: applies one process request of the groups service, and RelationshipExpiry.

`Delegation` (id `delegation/<process_request_id>`, `/attempt-<n>` for a retry) is started by
the groups service's outbox. It pages through the request's program accounts by cursor inside
activities (never the accounts themselves in history), each activity applying many batches and
heartbeating its cursor; it continues-as-new every few activities, and finishes when the groups
service reports the request completed or failed. A batch that keeps failing is recorded as failed
for its accounts and the rest goes on, so the request ends failed with the accounts listed, and a
retry redoes exactly those.

An operator finds a run in the Temporal UI by `GuichetProcessRequestId`, `GuichetGroup` (the
group's name) or `GuichetTenant` (the provider); each activity's summary says which attempt and
where it starts, the pending activity's heartbeat shows the cursor and done/total, and the
workflow's current details the progress after each activity.

`RelationshipExpiry` (id `relationship-expiry/<relationship_id>/<term>`) sleeps until a
relationship's expiry date and then takes the client out of the provider's groups.

The type names, ids and inputs the groups service starts these with are in
`workflows/contracts/groups.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from services.kit.temporal import GROUP, PROCESS_REQUEST_ID
    from workflows.contracts.groups import (
        DELEGATION_WORKFLOW,
        EXPIRY_WORKFLOW,
        DelegationInput,
        ExpiryInput,
    )
    from workflows.groups_activities import (
        REFUSED,
        SUPERSEDED,
        BatchesInput,
        BatchesResult,
        FailBatchInput,
        GroupsActivities,
    )


@dataclass
class DelegationResult:
    process_request_id: str
    attempt: int
    status: str
    done: int
    total: int
    failed: int


@dataclass
class Progress:
    done: int = 0
    total: int = 0
    failed: int = 0
    status: str = "pending"
    cursor: str = ""


@workflow.defn(name=DELEGATION_WORKFLOW)
class Delegation:
    def __init__(self) -> None:
        self._progress = Progress()

    @workflow.query
    def progress(self) -> Progress:
        return self._progress

    @workflow.run
    async def run(self, request: DelegationInput) -> DelegationResult:
        workflow.upsert_search_attributes(
            [
                PROCESS_REQUEST_ID.value_set(request.process_request_id),
                GROUP.value_set(request.group_name),
            ]
        )
        self._progress.cursor = request.cursor
        for _ in range(request.activities_per_run):
            result = await self._apply(request)
            if result is None:
                return self._result(request, "superseded")
            self._update(result)
            if result.finished:
                return self._result(request, result.status)
        workflow.continue_as_new(
            DelegationInput(
                process_request_id=request.process_request_id,
                attempt=request.attempt,
                group_name=request.group_name,
                cursor=self._progress.cursor,
                activities_per_run=request.activities_per_run,
                batch_attempts=request.batch_attempts,
                heartbeat_timeout_seconds=request.heartbeat_timeout_seconds,
                runs=request.runs + 1,
            )
        )

    async def _apply(self, request: DelegationInput) -> BatchesResult | None:
        """Applies batches; when they keep failing, records the next one as failed instead."""
        where = _where(self._progress)
        try:
            return await workflow.execute_activity_method(
                GroupsActivities.apply_delegation_batches,
                BatchesInput(request.process_request_id, request.attempt, self._progress.cursor),
                summary=f"apply batches of group {request.group_name!r}, attempt "
                f"{request.attempt}, {where}",
                start_to_close_timeout=timedelta(minutes=30),
                heartbeat_timeout=timedelta(seconds=request.heartbeat_timeout_seconds),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=1),
                    backoff_coefficient=2.0,
                    maximum_interval=timedelta(seconds=30),
                    maximum_attempts=request.batch_attempts,
                    non_retryable_error_types=[SUPERSEDED, REFUSED],
                ),
            )
        except ActivityError as error:
            if _cause_type(error) == SUPERSEDED:
                return None
            message = str(error.cause or error)
        # Recording a failure must happen: retried until the groups service answers.
        try:
            return await workflow.execute_activity_method(
                GroupsActivities.fail_delegation_batch,
                FailBatchInput(
                    request.process_request_id, request.attempt, self._progress.cursor, message
                ),
                summary=f"record the batch {where} as failed after {request.batch_attempts} tries",
                start_to_close_timeout=timedelta(minutes=5),
                retry_policy=RetryPolicy(
                    maximum_interval=timedelta(minutes=1),
                    non_retryable_error_types=[SUPERSEDED, REFUSED],
                ),
            )
        except ActivityError as error:
            if _cause_type(error) == SUPERSEDED:
                return None
            raise

    def _update(self, result: BatchesResult) -> None:
        self._progress = Progress(
            result.done, result.total, result.failed, result.status, result.cursor
        )
        workflow.set_current_details(
            f"{result.status}: {result.done}/{result.total} program accounts, "
            f"{result.failed} failed"
        )

    def _result(self, request: DelegationInput, status: str) -> DelegationResult:
        p = self._progress
        return DelegationResult(
            request.process_request_id, request.attempt, status, p.done, p.total, p.failed
        )


def _where(progress: Progress) -> str:
    if not progress.cursor:
        return "from the first account"
    return f"after {progress.done}/{progress.total} accounts"


def _cause_type(error: ActivityError) -> str | None:
    cause = error.cause
    return cause.type if isinstance(cause, ApplicationError) else None


@workflow.defn(name=EXPIRY_WORKFLOW)
class RelationshipExpiry:
    """Sleeps until the expiry date (a durable Temporal timer), then expires the relationship.

    The groups service checks the term: a relationship renewed or changed since has a newer term
    (and its own timer), and this one then ends without doing anything.
    """

    @workflow.run
    async def run(self, expiry: ExpiryInput) -> int:
        expire_at = datetime.fromisoformat(expiry.expire_time)
        delay = (expire_at - workflow.now()).total_seconds()
        if delay > 0:
            await workflow.sleep(
                delay,
                summary=f"relationship expiry at {expire_at.isoformat()} (term {expiry.term})",
            )
        return await workflow.execute_activity_method(
            GroupsActivities.expire_relationship,
            expiry,
            summary=f"take the client out of the provider's groups (term {expiry.term})",
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=RetryPolicy(
                maximum_interval=timedelta(minutes=5), non_retryable_error_types=[REFUSED]
            ),
        )
