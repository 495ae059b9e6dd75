"""Support's SLA gauges, scraped over HTTP as Prometheus would, follow one ticket's SLA state.

A support service of its own (tests/support/harness.py, a fresh database so that counts are
exact), its own registry and metrics endpoint on port 0. The warning and the breach are reported
with the RPC the TicketSla workflow uses, as the worker; the plan's targets are long enough that
the workflow itself reports nothing meanwhile.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from guichet.support.v1 import support_pb2 as pb
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

from services.kit.metrics import register
from services.kit.smtpsink import SmtpSink
from services.kit.testing import DatabaseServer, wait_until
from services.support.gauges import sla_gauges
from services.support.servicer import SPEC
from tests.identity.harness import Identity
from tests.support.harness import Support, eventually, support_service


@pytest.fixture(scope="module")
async def fresh_support(
    pg: DatabaseServer,
    identity_stack: tuple[Identity, int],
    smtp_sink: SmtpSink,
    temporal_env: WorkflowEnvironment,
) -> AsyncIterator[Support]:
    url = await pg.migrated_database(SPEC.migrations_dir, "support_gauges")
    identity, port = identity_stack
    async with support_service(
        identity=identity,
        identity_port=port,
        database_url=url,
        client=temporal_env.client,
        smtp=smtp_sink,
    ) as (running, _worker):
        yield running


async def states(port: int) -> dict[str, float]:
    """Open tickets by SLA state, summed over priorities, and the signal backlog."""
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{port}/metrics")
    response.raise_for_status()
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "guichet_support_open_tickets":
                key = sample.labels["sla_state"]
                found[key] = found.get(key, 0.0) + sample.value
            elif sample.name in ("guichet_support_sla_signals_pending", "guichet_db_gauges_up"):
                found[sample.name] = sample.value
    return found


def state(within: int = 0, warned: int = 0, breached: int = 0, paused: int = 0) -> dict[str, float]:
    return {"within": within, "warned": warned, "breached": breached, "paused": paused}


async def test_open_ticket_gauges_move_with_its_sla_state(fresh_support: Support) -> None:
    support = fresh_support
    registry = CollectorRegistry()
    register(sla_gauges(support.sessions, max_age=0), registry)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    port = int(server.server_port)

    async def sla_states() -> dict[str, float]:
        """The states of the next scrape whose read succeeded. A read gives up after its 2 s
        (the endpoint then answers guichet_db_gauges_up 0, by design): on a loaded machine one
        did, so a scrape without the gauges is taken again, within a deadline."""

        async def read() -> dict[str, float] | None:
            scraped = await states(port)
            if scraped["guichet_db_gauges_up"] != 1:
                return None
            keys = ("within", "warned", "breached", "paused")
            return {k: v for k, v in scraped.items() if k in keys}

        return await wait_until(read, what="a scrape with the gauges read", within=20)

    try:
        assert await sla_states() == state()
        plan = await support.plan(minutes=(2400, 2400, 9600))
        category = await support.category()
        _, _, customer = await support.customer(plan.id)
        ticket = await support.open(customer, category.id)
        assert await sla_states() == state(within=1)

        worker = await support.service("worker")
        for kind, expected in (
            (pb.SLA_EVENT_KIND_WARNING, state(warned=1)),
            (pb.SLA_EVENT_KIND_BREACH, state(breached=1)),
        ):
            due = Timestamp()
            due.FromDatetime(datetime.now(UTC))
            recorded = await support.stub.RecordSlaEvent(
                pb.RecordSlaEventRequest(
                    ticket_id=ticket.id,
                    kind=kind,
                    clock=pb.SLA_CLOCK_FIRST_RESPONSE,
                    cycle=1,
                    due_time=due,
                ),
                metadata=worker,
            )
            assert recorded.recorded
            assert await sla_states() == expected

        _, agent = await support.agent()
        await support.stub.ReplyToTicket(
            pb.ReplyToTicketRequest(
                ticket_id=ticket.id,
                body="Pouvez-vous préciser ?",
                set_status=pb.TICKET_STATUS_WAITING_ON_CUSTOMER,
            ),
            metadata=agent,
        )
        assert await sla_states() == state(paused=1)

        await support.stub.ChangeTicketStatus(
            pb.ChangeTicketStatusRequest(ticket_id=ticket.id, status=pb.TICKET_STATUS_FINISHED),
            metadata=agent,
        )
        assert await sla_states() == state()

        async def delivered() -> bool:  # the signal relay drains what the changes recorded
            return (await states(port))["guichet_support_sla_signals_pending"] == 0

        await eventually(delivered)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
