"""Temporal and PostgreSQL taken away under the running system.

- Temporal stopped while requests arrive: the services accept and record them (outbox rows in
  the same transaction as the change); when Temporal is back their workflows start, a delegation
  completes exactly, a ticket gets its SLA workflow.
- PostgreSQL restarted under load: requests during the outage answer 503 problem details
  (RFC 9457, no stack trace, no hang), and succeed again once it is back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest
from guichet.identity.v1 import identity_pb2
from guichet.support.v1 import support_pb2 as spb
from temporalio.client import Client, WorkflowExecutionStatus

from tests.chaos.harness import Chaos, eventually, organisation, record_fault, short_plan

pytestmark = pytest.mark.slow


async def _pending_start(chaos: Chaos, service: str, workflow_id: str) -> bool:
    """The outbox holds the workflow's start, not yet done."""
    rows = await chaos.fetch(
        service, "SELECT started_at FROM outbox WHERE workflow_id = $1", workflow_id
    )
    return len(rows) == 1 and rows[0]["started_at"] is None


@pytest.mark.timeout(600)
async def test_requests_while_temporal_is_down_start_their_workflows_when_it_is_back(
    chaos: Chaos, record_property: Callable[[str, object], None]
) -> None:
    size = 5_000
    provider, employee = await chaos.provider_and_employee()
    group = await chaos.record_group(provider, size)
    bois = await organisation(chaos, "ERP-BOIS", identity_pb2.ORGANISATION_KIND_ERP_CUSTOMER)
    category = await short_plan(chaos, bois)
    customer = await chaos.metadata("bois.user")

    await chaos.stack.stop_temporal()
    try:
        request = await chaos.assign(provider, group, employee)
        opened = await chaos.support.OpenTicket(
            spb.OpenTicketRequest(
                category_id=category,
                title="Chaos: opened while Temporal is down",
                description="Opened by tests/chaos",
                screen_code="CHAOS02",
                example_record="record 2",
            ),
            metadata=customer,
            timeout=30,
        )
        ticket = opened.ticket.id
        await asyncio.sleep(5)  # relays retry and back off meanwhile
        assert await _pending_start(chaos, "groups", f"delegation/{request}")
        assert await _pending_start(chaos, "support", f"ticket-sla/{ticket}")
        assert (await chaos.request_row(request))["status"] == "pending"
    finally:
        await chaos.stack.start_temporal()

    lost, seen = await chaos.delegation_outcome(request, group, employee, size, within=180)
    client = await Client.connect(chaos.stack.temporal_address)

    async def sla_running() -> bool:
        try:
            described = await client.get_workflow_handle(f"ticket-sla/{ticket}").describe()
        except Exception:
            return False
        return described.status == WorkflowExecutionStatus.RUNNING

    try:
        await eventually(sla_running, within=120, every=0.5)
    except AssertionError:
        lost += 1
    worker = next(r for r in chaos.stack.running if r.component.name == "worker")
    record_fault(record_property, "Temporal down while requests arrive", tried=2, lost=lost)
    assert lost == 0, {**seen, "worker exit code": worker.process.returncode}


@dataclass
class Answers:
    """Every answer the load saw, by phase."""

    ok: int = 0
    unavailable: int = 0
    bad: list[str] = field(default_factory=list)
    last_ok: dict[str, float] = field(default_factory=dict)


def _judge(answers: Answers, route: str, response: httpx.Response) -> None:
    if response.status_code < 400:
        answers.ok += 1
        answers.last_ok[route] = time.monotonic()
        return
    problem = response.headers.get("content-type", "").startswith("application/problem+json")
    body = response.json() if problem else {}
    clean = (
        response.status_code == 503
        and problem
        and body.get("status") == 503
        and body.get("type", "").endswith("/unavailable")
        and "Traceback" not in response.text
        and "asyncpg" not in response.text
        and "sqlalchemy" not in response.text.lower()
        and response.headers.get("retry-after")
    )
    if clean:
        answers.unavailable += 1
    else:
        answers.bad.append(f"{route} → {response.status_code} {response.text[:300]}")


@pytest.mark.timeout(600)
async def test_database_restart_under_load_answers_503_then_recovers(
    chaos: Chaos, record_property: Callable[[str, object], None]
) -> None:
    provider, _ = await chaos.provider_and_employee()
    bam = await chaos.headers("dupont.jean")
    customer = await chaos.headers("bois.user")
    napoli = await chaos.headers("napoli.manager")
    store = await organisation(chaos, "DP-NAPOLI", identity_pb2.ORGANISATION_KIND_DELIVERY_PARTNER)
    routes = {
        "groups": (f"/v1/providers/{provider}/groups", bam),
        "support": ("/v1/support/tickets", customer),
        "me": ("/v1/me", bam),
        "partners": (f"/v1/partners/{store}/orders/in-progress", napoli),
    }
    for path, headers in routes.values():
        response = await chaos.http.get(path, headers=headers)
        assert response.status_code == 200, (path, response.text)

    answers = Answers()
    stop = asyncio.Event()

    async def load(route: str) -> None:
        path, headers = routes[route]
        async with httpx.AsyncClient(base_url=chaos.stack.gateway_url, timeout=20) as http:
            while not stop.is_set():
                try:
                    response = await http.get(path, headers=headers)
                except httpx.HTTPError as error:
                    answers.bad.append(f"{route} → {type(error).__name__} (no answer)")
                else:
                    _judge(answers, route, response)
                await asyncio.sleep(0.05)

    workers = [asyncio.create_task(load(route)) for route in routes for _ in range(2)]
    try:
        await asyncio.sleep(3)
        before = answers.ok
        await chaos.stack.stop_postgres()
        down_at = time.monotonic()
        await asyncio.sleep(8)
        during_ok = answers.ok - before
        await chaos.stack.start_postgres()
        back_at = time.monotonic()

        async def recovered() -> bool:
            return all(answers.last_ok.get(route, 0) > back_at for route in routes)

        await eventually(recovered, within=60, every=0.5)
        recovery = time.monotonic() - back_at
        await asyncio.sleep(2)
    finally:
        stop.set()
        await asyncio.gather(*workers, return_exceptions=True)
    tried = answers.ok + answers.unavailable + len(answers.bad)
    record_fault(
        record_property, "PostgreSQL restart under load", tried=tried, lost=len(answers.bad)
    )
    assert answers.unavailable > 0, "the outage was not seen"
    assert not answers.bad, {
        "bad answers": len(answers.bad),
        "first": answers.bad[:10],
        "unavailable": answers.unavailable,
        "ok": answers.ok,
        "ok during outage": during_ok,
        "outage s": back_at - down_at,
        "recovery s": recovery,
    }
