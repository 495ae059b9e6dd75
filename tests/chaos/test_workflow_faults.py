"""The worker SIGKILLed while workflows wait on durable timers and signals: a ticket's SLA wait
(the warning falls while no worker runs) and an order escalation waiting for the partner's answer
(the answer, or the deadline, arrives while no worker runs). After a replacement worker starts,
each outcome is recorded exactly once, and never before it is due."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from guichet.identity.v1 import identity_pb2
from guichet.partners.v1 import partners_pb2 as ppb
from guichet.support.v1 import support_pb2 as spb

from services.devstack.stack import ADMIN_USERNAME
from tests.chaos.harness import (
    Chaos,
    Metadata,
    eventually,
    organisation,
    record_fault,
    short_plan,
    workflow_started,
)

pytestmark = pytest.mark.slow


@pytest.mark.timeout(600)
async def test_worker_sigkilled_during_an_sla_wait(
    chaos: Chaos, record_property: Callable[[str, object], None]
) -> None:
    bois = await organisation(chaos, "ERP-BOIS", identity_pb2.ORGANISATION_KIND_ERP_CUSTOMER)
    category = await short_plan(chaos, bois)
    opened = await chaos.support.OpenTicket(
        spb.OpenTicketRequest(
            category_id=category,
            title="Chaos: worker killed during the SLA wait",
            description="Opened by tests/chaos",
            screen_code="CHAOS01",
            example_record="record 1",
        ),
        metadata=await chaos.metadata("bois.user"),
        timeout=30,
    )
    ticket = opened.ticket.id
    await workflow_started(chaos, "support", f"ticket-sla/{ticket}")
    # The workflow now sleeps until the warning (30 s after opening). Kill its worker, and keep
    # every worker away until the warning's instant has passed.
    await asyncio.sleep(5)
    await chaos.stack.kill("worker")
    killed_at = time.monotonic()
    await asyncio.sleep(35)
    await chaos.stack.restart("worker")
    outage = time.monotonic() - killed_at

    query = (
        "SELECT kind, at, due_at FROM sla_events WHERE ticket_id = $1 "
        "AND clock = 'first_response' AND kind IN ('warning', 'breach') ORDER BY seq"
    )

    async def breached() -> list[object] | None:
        rows = await chaos.fetch("support", query, uuid.UUID(ticket))
        return list(rows) if any(r["kind"] == "breach" for r in rows) else None

    await eventually(breached, within=120, every=0.5)
    # Give a duplicate every chance to show up (the breach re-plans the workflow).
    await asyncio.sleep(5)
    rows = await chaos.fetch("support", query, uuid.UUID(ticket))
    kinds = [r["kind"] for r in rows]
    priority = await chaos.fetchval(
        "support", "SELECT priority FROM tickets WHERE id = $1", uuid.UUID(ticket)
    )
    lost = abs(kinds.count("warning") - 1) + abs(kinds.count("breach") - 1)
    lost += priority != "high"  # the breach escalates exactly one step, normal → high
    early = [r for r in rows if r["at"] < r["due_at"]]
    late_warning = [
        r for r in rows if r["kind"] == "warning" and r["at"] - r["due_at"] > timedelta(seconds=60)
    ]
    # The breach falls once the replacement worker runs: recorded within seconds of its instant.
    late_breach = [
        r for r in rows if r["kind"] == "breach" and r["at"] - r["due_at"] > timedelta(seconds=10)
    ]
    lost += len(early) + len(late_warning) + len(late_breach)
    record_fault(record_property, "worker SIGKILL during SLA wait", tried=2, lost=lost)
    assert lost == 0, {"events": [dict(r) for r in rows], "priority": priority, "outage": outage}


async def _active_products(chaos: Chaos, store: str, platform: Metadata) -> list[str]:
    products = await chaos.partners.ListProducts(
        ppb.ListProductsRequest(store_id=store, active_only=True), metadata=platform
    )
    return [p.id for p in products.products if p.active]


async def _order(
    chaos: Chaos, store: str, platform: Metadata, products: tuple[str, str]
) -> ppb.OrderDetail:
    """An accepted, paid order of two products."""
    response = await chaos.partners.SubmitOrder(
        ppb.SubmitOrderRequest(
            store_id=store,
            code=f"CHAOS-{uuid.uuid4().hex[:8].upper()}",
            items=[
                ppb.SubmittedItem(product_id=products[0], quantity=2),
                ppb.SubmittedItem(product_id=products[1], quantity=1),
            ],
            customer_name="Alice Martin",
            customer_phone="+33 6 11 22 33 44",
            courier_name="Karim",
            courier_phone="+33 6 55 66 77 88",
            paid=True,
        ),
        metadata=platform,
    )
    order: ppb.OrderDetail = response.order
    return order


async def _events(chaos: Chaos, store: str, order_id: str, manager: Metadata) -> list[str]:
    detail = await chaos.partners.GetOrder(
        ppb.GetOrderRequest(store_id=store, order_id=order_id), metadata=manager
    )
    return [event.kind for event in detail.order.events]


async def _escalation_waiting(
    chaos: Chaos, store: str, platform: Metadata, manager: Metadata, products: tuple[str, str]
) -> tuple[ppb.OrderDetail, str]:
    """An order whose first product ran out (it leaves the menu); the workflow waits for the
    answer. Answers the order and the replacement to offer (its second product)."""
    order = await _order(chaos, store, platform, products)
    await chaos.partners.ReportOutOfStock(
        ppb.ReportOutOfStockRequest(
            store_id=store, order_id=order.order.id, item_id=order.items[0].id
        ),
        metadata=manager,
    )

    async def asked() -> bool:
        kinds = await _events(chaos, store, order.order.id, manager)
        return "customer_call.requested" in kinds

    await eventually(asked, within=60)
    return order, products[1]


@pytest.mark.timeout(600)
async def test_worker_sigkilled_while_an_escalation_waits_for_the_answer(
    chaos: Chaos, record_property: Callable[[str, object], None]
) -> None:
    """Path 1: the partner answers (accepted) while no worker runs: the item is replaced once.
    Path 2: nobody answers and the deadline passes while no worker runs: escalated to support
    once, then the support deadline cancels and refunds the order once."""
    napoli = await organisation(chaos, "DP-NAPOLI", identity_pb2.ORGANISATION_KIND_DELIVERY_PARTNER)
    platform = await chaos.metadata(ADMIN_USERNAME)
    manager = await chaos.metadata("napoli.manager")
    menu = await _active_products(chaos, napoli, platform)
    assert len(menu) >= 4, menu
    # Each order runs out of a product of its own: the replacement offered stays on the menu.
    answered, replacement = await _escalation_waiting(
        chaos, napoli, platform, manager, (menu[0], menu[1])
    )
    silent, _ = await _escalation_waiting(chaos, napoli, platform, manager, (menu[2], menu[3]))

    await chaos.stack.kill("worker")
    await chaos.partners.AnswerOutOfStock(
        ppb.AnswerOutOfStockRequest(
            store_id=napoli,
            order_id=answered.order.id,
            customer_accepted=True,
            replacement_product_id=replacement,
        ),
        metadata=manager,
    )
    # The answer deadline is 40 s after the report: let it pass for the silent order.
    await asyncio.sleep(45)
    await chaos.stack.restart("worker")

    async def replaced() -> list[str] | None:
        kinds = await _events(chaos, napoli, answered.order.id, manager)
        return kinds if "item.replaced" in kinds else None

    async def cancelled() -> list[str] | None:
        kinds = await _events(
            chaos, napoli, silent.order.id, await chaos.metadata("napoli.manager")
        )
        return kinds if "order.cancelled" in kinds else None

    await eventually(replaced, within=120, every=0.5)
    # Escalated after the restart, then the 20 s support deadline, then the cancellation.
    await eventually(cancelled, within=180, every=0.5)
    await asyncio.sleep(5)
    manager = await chaos.metadata("napoli.manager")
    first = await _events(chaos, napoli, answered.order.id, manager)
    second = await _events(chaos, napoli, silent.order.id, manager)
    expected_first = {"alternative.accepted": 1, "item.replaced": 1, "escalated_to_support": 0}
    expected_second = {
        "customer_answer.missing": 1,
        "escalated_to_support": 1,
        "order.cancelled": 1,
        "order.refunded": 1,
        "item.replaced": 0,
    }
    lost = sum(abs(first.count(k) - n) for k, n in expected_first.items())
    lost += sum(abs(second.count(k) - n) for k, n in expected_second.items())
    escalation = await chaos.fetch(
        "partners",
        "SELECT status, cancelled_by, refunded, support_message_id FROM escalations "
        "WHERE order_id = $1",
        uuid.UUID(silent.order.id),
    )
    record_fault(record_property, "worker SIGKILL during order escalation wait", tried=2, lost=lost)
    assert lost == 0, {
        "answered": first,
        "silent": second,
        "escalation": [dict(r) for r in escalation],
    }
