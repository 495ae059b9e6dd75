"""Groups' process-request gauges, scraped over HTTP as Prometheus would, follow the requests.

A world of its own (tests/groups/harness.py) with no worker at first, so that requests stay
pending until the test lets a worker in; its own registry and metrics endpoint on port 0.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

from services.groups.gauges import process_request_gauges, with_gauges
from services.groups.models import outbox
from services.groups.servicer import SPEC
from services.kit.metrics import outbox_gauges, register
from services.kit.runtime import ServiceContext, Wiring
from services.kit.smtpsink import SmtpSink
from services.kit.testing import DatabaseServer
from tests.groups.harness import COMPLETED, FAILED, READ_ONLY, World, running_world

Scrape = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
async def idle_world(
    pg: DatabaseServer, temporal_env: WorkflowEnvironment, smtp_sink: SmtpSink
) -> AsyncIterator[World]:
    async with running_world(pg, temporal_env.client, smtp_sink, with_worker=False) as world:
        yield world


async def scrape(port: int) -> Scrape:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{port}/metrics")
    response.raise_for_status()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def requests(scraped: Scrape) -> dict[str, float]:
    return {
        dict(labels)["status"]: value
        for (name, labels), value in scraped.items()
        if name == "guichet_groups_process_requests"
    }


async def test_gauges_follow_requests_from_pending_to_failed_and_completed(
    idle_world: World,
) -> None:
    world = idle_world
    registry = CollectorRegistry()
    register(process_request_gauges(world.sessions, max_age=0), registry)
    register(outbox_gauges(world.sessions, outbox, "groups", max_age=0), registry)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    port = int(server.server_port)
    try:
        before = await scrape(port)
        assert requests(before) == {"pending": 0, "in_progress": 0, "failed": 0, "completed": 0}
        assert before[("guichet_db_gauges_up", (("service", "groups"),))] == 1
        assert before[("guichet_groups_in_flight_oldest_seconds", ())] == 0

        provider = await world.provider()
        # One request that will fail (a closed account per client), one that will complete.
        failing = await world.group(provider, await world.clients(provider, 2, closed=1))
        passing = await world.group(provider, await world.clients(provider, 2, accounts=2))
        [doomed] = (
            await world.assign(provider, failing, provider.employees["editor"])
        ).process_requests
        [fine] = (
            await world.assign(provider, passing, provider.employees["read_only"], READ_ONLY)
        ).process_requests
        await asyncio.sleep(0.3)  # no worker polls: both wait, recorded and started
        waiting = await scrape(port)
        assert requests(waiting) == {"pending": 2, "in_progress": 0, "failed": 0, "completed": 0}
        assert waiting[("guichet_groups_in_flight_oldest_seconds", ())] >= 0.3
        assert waiting[("guichet_groups_in_flight_idle_seconds", ())] >= 0.3
        # The outbox relay started both workflows: nothing waits in the outbox.
        assert waiting[("guichet_outbox_pending", (("service", "groups"),))] == 0

        async with world.worker():
            assert (await world.finished(provider, doomed.id)).status == FAILED
            assert (await world.finished(provider, fine.id)).status == COMPLETED
        after = await scrape(port)
        assert requests(after) == {"pending": 0, "in_progress": 0, "failed": 1, "completed": 1}
        in_flight = {
            dict(labels)["state"]: value
            for (name, labels), value in after.items()
            if name == "guichet_groups_in_flight_program_accounts"
        }
        assert in_flight == {"total": 0, "done": 0, "failed": 0}
        assert after[("guichet_groups_in_flight_oldest_seconds", ())] == 0
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def test_gauges_are_registered_only_while_a_service_serves_metrics(
    idle_world: World,
) -> None:
    """`with_gauges` wraps the spec's build: registered on the default registry when the
    service has a metrics port, unregistered when it stops, absent without a port."""

    async def build(context: ServiceContext) -> Wiring:
        return cast(Wiring, None)

    spec = with_gauges(dataclasses.replace(SPEC, build=build))
    name = "guichet_groups_process_requests"
    for port, registered in ((0, True), (None, False)):
        settings: Any = SimpleNamespace(metrics_port=port)  # all the wrapper reads
        async with AsyncExitStack() as stack:
            context = ServiceContext(settings, cast(Any, None), idle_world.sessions, stack)
            await spec.build(context)
            assert (name in _registered()) is registered
        assert name not in _registered()


def _registered() -> set[str]:
    return set(REGISTRY._names_to_collectors)  # the names the registry holds
