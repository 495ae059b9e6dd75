"""Delegation end to end on the real Temporal dev server: outbox → workflow → batches in groups.

The worker that starts the run is a real `python -m workflows.worker` process, killed with
SIGKILL in the middle; a replacement finishes the request with exactly the right grants. The
volume is small (300 accounts in batches of 10): what it checks is the kill, the resumption and
the continue-as-new, not volume; the 100,000-account kill is `make chaos`'s
(tests/chaos/test_delegation_faults.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from guichet.groups.v1 import groups_pb2 as pb
from temporalio.client import WorkflowExecution, WorkflowExecutionStatus, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from services.kit.smtpsink import SmtpSink
from services.kit.temporal import GROUP, PROCESS_REQUEST_ID
from services.kit.testing import DatabaseServer, scaled, wait_until
from tests.groups.harness import COMPLETED, WORKER_CLIENT, World, running_world
from tests.workflows.readable import activity_summaries
from workflows.delegation import Delegation, RelationshipExpiry

HISTORIES = Path(__file__).parents[1] / "histories"


@pytest.fixture(scope="module")
async def world(
    pg: DatabaseServer, temporal_env: WorkflowEnvironment, smtp_sink: SmtpSink
) -> AsyncIterator[World]:
    async with running_world(pg, temporal_env.client, smtp_sink, with_worker=False) as running:
        yield running


async def _worker_process(world: World, **settings: str) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": world.temporal.service_client.config.target_host,
        "TEMPORAL_TASK_QUEUE": world.task_queue,
        "GROUPS_ADDR": world.groups_addr,
        "IDENTITY_ADDR": world.identity_addr,
        "SERVICE_CLIENT_ID": WORKER_CLIENT[0],
        "SERVICE_CLIENT_SECRET": WORKER_CLIENT[1],
        "MAIL_SEALING_KEY": world.worker_settings.mail_sealing_key,
        "LOG_JSON": "true",
        **settings,
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "workflows.worker",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


@pytest.mark.slow  # a kill: make chaos (beside the 100,000-account kill of tests/chaos)
async def test_a_worker_killed_mid_run_is_replaced_and_grants_are_exact(world: World) -> None:
    provider = await world.provider()
    clients = await world.clients(provider, 30, accounts=10)
    group = await world.group(provider, clients)
    editor = provider.employees["editor"]
    # Tiny batches, one per activity: 30 activities, so heartbeats and (20 activities a run) a
    # continue-as-new to see.
    process = await _worker_process(
        world, DELEGATION_BATCH_SIZE="10", DELEGATION_BATCHES_PER_ACTIVITY="1"
    )
    try:
        saved = await world.assign(provider, group, editor)
        [request] = saved.process_requests

        async def first_worker_progressed() -> bool:
            assert process.returncode is None, "the worker died by itself"
            return (await world.request(provider, request.id)).done >= 60

        await wait_until(
            first_worker_progressed,
            what="the first worker to apply 60 of the 300 accounts",
            within=60,
            every=0.02,
        )
        process.send_signal(signal.SIGKILL)
        await process.wait()
        stalled = (await world.request(provider, request.id)).done
        assert stalled < 300
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    async with world.worker(delegation_batch_size=10, delegation_batches_per_activity=1):
        finished = await world.finished(provider, request.id, within=60)
    assert finished.status == COMPLETED
    assert (finished.done, finished.total, finished.failed) == (300, 300, 0)
    grants = await world.grants(employee=editor.id)
    assert len(grants) == 300 and set(grants.values()) == {"editor"}
    # The operator finds the run by its process request id and by its group's name.

    async def runs_listed() -> list[WorkflowExecution] | None:
        runs = [
            w
            async for w in world.temporal.list_workflows(
                f"GuichetProcessRequestId = '{request.id}'"
            )
        ]
        return runs if len(runs) >= 2 else None

    runs = await wait_until(
        runs_listed, what=f"two runs listed for request {request.id}", within=10, every=0.2
    )
    assert {w.id for w in runs} == {f"delegation/{request.id}"}
    assert WorkflowExecutionStatus.CONTINUED_AS_NEW in {w.status for w in runs}
    handle = world.temporal.get_workflow_handle(f"delegation/{request.id}")
    description = await handle.describe()
    assert description.typed_search_attributes.get(PROCESS_REQUEST_ID) == request.id
    assert description.typed_search_attributes.get(GROUP) == request.group_name
    result = await asyncio.wait_for(handle.result(), timeout=scaled(30))
    assert result["status"] == "completed"


async def test_replay_of_a_saved_history_is_deterministic() -> None:
    """Histories recorded by earlier versions must replay on the current workflow code."""
    replayer = Replayer(workflows=[Delegation, RelationshipExpiry])
    files = sorted(HISTORIES.glob("delegation*.json"))
    assert files, "no saved history"
    for path in files:
        history = WorkflowHistory.from_json(path.stem, path.read_text())
        await replayer.replay_workflow(history)


async def test_a_request_waits_for_a_worker_and_is_not_lost(world: World) -> None:
    """The request and its outbox row commit together; the run waits for a worker to poll."""
    provider = await world.provider()
    clients = await world.clients(provider, 3, accounts=2)
    group = await world.group(provider, clients)
    editor = provider.employees["read_only"]
    saved = await world.assign(provider, group, editor, pb.DELEGATED_ROLE_READ_ONLY)
    [request] = saved.process_requests
    # No worker polls this module's queue yet: the request waits, recorded and started.
    await asyncio.sleep(0.5)
    assert (await world.request(provider, request.id)).status == pb.PROCESS_REQUEST_STATUS_PENDING
    async with world.worker():
        assert (await world.finished(provider, request.id)).status == COMPLETED
    assert await world.grant_count(editor.id) == 6
    # The operator finds the run by the group's name and by the provider, and its history says
    # what each activity did.
    query = f"GuichetGroup = '{request.group_name}' AND GuichetTenant = '{provider.id}'"

    async def listed() -> list[str] | None:
        return [w.id async for w in world.temporal.list_workflows(query)] or None

    found = await wait_until(listed, what=f"a run listed by {query}", within=10, every=0.2)
    assert found == [f"delegation/{request.id}"]
    history = await world.temporal.get_workflow_handle(f"delegation/{request.id}").fetch_history()
    assert activity_summaries(history) == [
        f"apply batches of group {request.group_name!r}, attempt 1, from the first account"
    ]
