"""Delegation under faults: the worker SIGKILLed in the middle of a 100,000-account request, and the
groups service restarted while the activities call it. Either way the request completes with
exactly one grant per program account (access_grants in the groups database)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tests.chaos.harness import Chaos, eventually, record_fault

pytestmark = pytest.mark.slow

BIG = 100_000


async def _started(chaos: Chaos, request_id: str, *, at_least: int, below: int) -> int:
    """Waits until the request has applied at least `at_least` accounts (and not all)."""

    async def check() -> int | None:
        row = await chaos.request_row(request_id)
        assert row["status"] not in ("completed", "failed"), (
            f"the request finished before the fault could be injected: {dict(row)}"
        )
        return int(row["done"]) if row["done"] >= at_least else None

    done = await eventually(check, within=120, every=0.02)
    assert done < below, done
    return done


@pytest.mark.timeout(900)
async def test_worker_sigkilled_mid_delegation_of_100000_accounts(
    chaos: Chaos, record_property: Callable[[str, object], None]
) -> None:
    provider, employee = await chaos.provider_and_employee()
    group = await chaos.record_group(provider, BIG)
    assert await chaos.expected_accounts(group) == BIG
    request = await chaos.assign(provider, group, employee)

    done_at_kill = await _started(chaos, request, at_least=10_000, below=BIG)
    await chaos.stack.kill("worker")
    # Nothing moves while no worker runs: the request waits, half applied.
    await asyncio.sleep(2)
    row = await chaos.request_row(request)
    assert row["status"] == "in_progress" and row["done"] < BIG, dict(row)
    await chaos.stack.restart("worker")

    lost, seen = await chaos.delegation_outcome(request, group, employee, BIG, within=600)
    record_fault(record_property, "worker SIGKILL mid 100k delegation", tried=BIG, lost=lost)
    assert lost == 0, {"done_at_kill": done_at_kill, **seen}


@pytest.mark.timeout(600)
async def test_groups_restarted_while_activities_call_it(
    chaos: Chaos, record_property: Callable[[str, object], None]
) -> None:
    size = 40_000
    provider, employee = await chaos.provider_and_employee()
    group = await chaos.record_group(provider, size)
    request = await chaos.assign(provider, group, employee)

    done_at_kill = await _started(chaos, request, at_least=4_000, below=size)
    await chaos.stack.restart("groups")

    lost, seen = await chaos.delegation_outcome(request, group, employee, size, within=300)
    record_fault(record_property, "groups SIGKILL+restart mid delegation", tried=size, lost=lost)
    assert lost == 0, {"done_at_kill": done_at_kill, **seen}
