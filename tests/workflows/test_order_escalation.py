"""OrderEscalation end to end on Temporal's time-skipping server: the four paths (accepted,
refused, no answer, support cancels), each with real identity, support and partners services, the
real worker, and partners' outbox starting the workflow. Minutes of deadlines pass in seconds.

An escalation closes what it opened: the support ticket it opened carries the escalation's own
deadline as its SLA, is linked both ways (the order's view names it, the ticket names the order),
and is closed with the outcome whichever way the escalation ends.

Each fresh history is also replayed against the current code; `GUICHET_RECORD_HISTORIES=1`
saves them under tests/histories/ for the replay test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, timedelta
from pathlib import Path

import grpc
import pytest
from guichet.partners.v1 import partners_pb2 as pb
from guichet.support.v1 import support_pb2
from temporalio.api.enums.v1 import EventType, IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from services.kit.clock import PinnedClock
from services.kit.smtpsink import SmtpSink
from services.kit.temporal import ORDER, ORDER_CODE, SEARCH_ATTRIBUTES
from services.kit.testing import DatabaseServer, skip_time
from tests.identity.harness import Identity
from tests.partners.harness import (
    Partners,
    StoreFixture,
    eventually,
    fails,
    identity_service,
    partners_service,
    support_service,
    worker,
)
from workflows.contracts.partners import STOCKOUT_REASON, escalation_workflow_id
from workflows.order_escalation import OrderEscalation, OrderEscalationResult

HISTORIES = Path(__file__).resolve().parents[1] / "histories"


@pytest.fixture(scope="module")
async def identity_stack(
    pg: DatabaseServer, smtp_sink: SmtpSink, temporal_env: WorkflowEnvironment
) -> AsyncIterator[tuple[Identity, int]]:
    async with identity_service(
        pg, smtp_sink, temporal_env.client.service_client.config.target_host
    ) as running:
        yield running


@dataclass
class Escalating:
    env: WorkflowEnvironment
    partners: Partners


@pytest.fixture
async def escalating(
    pg: DatabaseServer,
    smtp_sink: SmtpSink,
    time_skipping_env: WorkflowEnvironment,
    identity_stack: tuple[Identity, int],
) -> AsyncIterator[Escalating]:
    """Partners whose outbox starts workflows on the time-skipping server, and the worker."""
    env = time_skipping_env
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in SEARCH_ATTRIBUTES
            },
        )
    )
    identity, identity_port = identity_stack
    queue = f"escalation-{uuid.uuid4()}"
    target = env.client.service_client.config.target_host
    # Support's clock follows the server's (skipped) time, as a wall clock follows a cluster's:
    # the ticket's deadline is the workflow's, its opening time support's.
    clock = PinnedClock((await env.get_current_time()).astimezone(UTC))

    async def follow() -> None:
        while True:
            clock.pin((await env.get_current_time()).astimezone(UTC))
            await asyncio.sleep(0.02)

    following = asyncio.create_task(follow())
    async with (
        support_service(
            pg, identity_port=identity_port, temporal_address=target, queue=queue, clock=clock
        ) as (support, support_port),
        partners_service(
            pg,
            identity=identity,
            identity_port=identity_port,
            temporal_address=target,
            queue=queue,
            support=support,
            support_port=support_port,
        ) as running,
        worker(env.client, running, smtp_sink, queue),
    ):
        await running.set_up_support()
        try:
            yield Escalating(env, running)
        finally:
            following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await following


async def _report(
    escalating: Escalating, *, paid: bool
) -> tuple[StoreFixture, pb.OrderDetail, WorkflowHandle[OrderEscalation, OrderEscalationResult]]:
    partners = escalating.partners
    store = await partners.store()
    order = await partners.order(store, items=[(0, 2), (1, 1)], paid=paid)
    await partners.stub.ReportOutOfStock(
        pb.ReportOutOfStockRequest(
            store_id=store.id,
            order_id=order.order.id,
            item_id=order.items[0].id,
            note="Plus de mozzarella",
        ),
        metadata=store.token,
    )
    handle = escalating.env.client.get_workflow_handle_for(
        OrderEscalation.run, escalation_workflow_id(order.order.id)
    )

    async def waiting() -> bool:
        try:
            return await handle.query(OrderEscalation.stage) == "awaiting_answer"
        except Exception:
            return False  # not started by the relay yet, or no worker answered yet

    await eventually(waiting, within=30)
    return store, order, handle


async def _check_history(
    handle: WorkflowHandle[OrderEscalation, OrderEscalationResult], name: str
) -> list[str]:
    """Replays the run against the code; optionally saves it; returns the signals it got."""
    history = await handle.fetch_history()
    await Replayer(workflows=[OrderEscalation]).replay_workflow(history)
    if os.environ.get("GUICHET_RECORD_HISTORIES"):
        HISTORIES.mkdir(exist_ok=True)
        (HISTORIES / f"order_escalation_{name}.json").write_text(history.to_json())
    return [
        e.workflow_execution_signaled_event_attributes.signal_name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]


async def _result(
    env: WorkflowEnvironment, handle: WorkflowHandle[OrderEscalation, OrderEscalationResult]
) -> OrderEscalationResult:
    """Waits for the result with time skipping on (a handle the test did not start itself does
    not unlock it on its own)."""
    unlocked = env.time_skipping_unlocked  # type: ignore[attr-defined]
    async with unlocked():
        return await handle.result()


def _kinds(detail: pb.OrderDetail) -> list[str]:
    """The order's events, the support ticket's aside (its opening races the deadline)."""
    return [e.kind for e in detail.events if not e.kind.startswith("support_ticket.")]


async def _ticket_opened(
    escalating: Escalating, store: StoreFixture, order: pb.OrderDetail
) -> pb.Escalation:
    """Waits (time not skipping) until support opened the escalation's ticket, as it does at
    once when it is up: the order's view then names it."""

    async def opened() -> pb.Escalation | None:
        detail = await escalating.partners.detail(store, order.order.id)
        return detail.escalation if detail.escalation.ticket_id else None

    escalation: pb.Escalation = await eventually(opened, within=30)
    return escalation


async def _closed_ticket(
    escalating: Escalating, store: StoreFixture, order: pb.OrderDetail, outcome: str
) -> support_pb2.GetTicketResponse:
    """The escalation's ticket, as the partner's order view and support both show it: linked
    both ways, due at the escalation's own deadline, closed with the outcome."""
    partners = escalating.partners
    assert partners.support is not None
    detail = await partners.detail(store, order.order.id)
    escalation = detail.escalation
    assert escalation.ticket_id and escalation.ticket_number >= 1000
    assert escalation.HasField("ticket_close_time")
    events = [e.kind for e in detail.events]
    assert events.count("support_ticket.opened") == 1
    assert events[-1] == "support_ticket.closed"
    ticket: support_pb2.GetTicketResponse = await partners.support.GetTicket(
        support_pb2.GetTicketRequest(ticket_id=escalation.ticket_id), metadata=partners.admin
    )
    assert ticket.ticket.number == escalation.ticket_number
    assert (ticket.ticket.link.kind, ticket.ticket.link.id, ticket.ticket.link.label) == (
        "order",
        order.order.id,
        order.order.code,
    )
    # The SLA is the escalation's deadline (20 minutes), not the plan's first response (60).
    deadline = escalation.support_deadline.ToDatetime()
    assert ticket.ticket.respond_by.ToDatetime() == deadline
    first = next(c for c in ticket.clocks if c.clock == support_pb2.SLA_CLOCK_FIRST_RESPONSE)
    # Opened a moment after the escalation: just under its 20 minutes.
    allowed = partners.settings.escalation_support_timeout_seconds // 60
    assert allowed - 1 <= first.target_minutes <= allowed
    assert ticket.ticket.status == support_pb2.TICKET_STATUS_FINISHED
    closing = ticket.messages[-1]
    assert closing.author_name == "Guichet" and outcome in closing.body
    assert order.order.code in closing.body
    return ticket


async def test_accepted_alternative_replaces_the_item(escalating: Escalating) -> None:
    partners = escalating.partners
    store, order, handle = await _report(escalating, paid=True)
    await partners.stub.AnswerOutOfStock(
        pb.AnswerOutOfStockRequest(
            store_id=store.id,
            order_id=order.order.id,
            customer_accepted=True,
            replacement_product_id=store.products[2].id,
            note="Le client prend la 4 fromages",
        ),
        metadata=store.token,
    )
    result = await _result(escalating.env, handle)
    assert (result.outcome, result.refunded) == ("item_replaced", False)
    detail = await partners.detail(store, order.order.id)
    assert _kinds(detail) == [
        "order.accepted",
        "payment.recorded",
        "out_of_stock.reported",
        "product.deactivated",
        "customer_call.requested",
        "alternative.accepted",
        "item.replaced",
    ]
    statuses = [(i.name, i.status, i.quantity) for i in detail.items]
    assert statuses == [
        ("Pizza 1", pb.ORDER_ITEM_STATUS_REPLACED, 2),
        ("Pizza 2", pb.ORDER_ITEM_STATUS_ACTIVE, 1),
        ("Pizza 3", pb.ORDER_ITEM_STATUS_ACTIVE, 2),
    ]
    assert detail.items[2].replaces_item_id == detail.items[0].id
    assert detail.order.total_cents == 1100 + 2 * 1200
    assert detail.order.status == pb.ORDER_STATUS_ACCEPTED
    assert detail.escalation.status == pb.ESCALATION_STATUS_ITEM_REPLACED
    products = await partners.stub.ListProducts(
        pb.ListProductsRequest(store_id=store.id), metadata=store.token
    )
    assert {p.name: p.active for p in products.products}["Pizza 1"] is False
    description = await handle.describe()
    assert description.typed_search_attributes.get(ORDER) == order.order.id
    assert description.typed_search_attributes.get(ORDER_CODE) == order.order.code
    # Never escalated: no ticket to open or close.
    assert result.ticket == "" and not detail.escalation.ticket_id
    assert await _check_history(handle, "accepted") == ["partner_answered"]


async def test_refused_alternative_is_escalated_then_cancelled_and_refunded(
    escalating: Escalating,
) -> None:
    partners = escalating.partners
    store, order, handle = await _report(escalating, paid=True)
    await partners.stub.AnswerOutOfStock(
        pb.AnswerOutOfStockRequest(
            store_id=store.id, order_id=order.order.id, customer_accepted=False
        ),
        metadata=store.token,
    )
    opened = await _ticket_opened(escalating, store, order)
    assert opened.status == pb.ESCALATION_STATUS_ESCALATED and opened.ticket_number >= 1000
    result = await _result(escalating.env, handle)
    assert (result.outcome, result.refunded) == ("cancelled_at_deadline", True)
    detail = await partners.detail(store, order.order.id)
    assert _kinds(detail)[5:] == [
        "alternative.refused",
        "escalated_to_support",
        "order.cancelled",
        "order.refunded",
    ]
    line = detail.order
    assert line.status == pb.ORDER_STATUS_REFUNDED
    assert (line.cancellation_reason, line.refund_reason) == (STOCKOUT_REASON, STOCKOUT_REASON)
    assert line.refund_funded_by == pb.REFUND_FUNDER_PARTNER
    assert [p.amount_cents for p in detail.payments] == [3100, 3100]
    assert detail.escalation.cancelled_by == "deadline"
    # Support was told: a message (its ticket is opened by a workflow once support answers).
    messages = await partners.stub.ListSupportMessages(
        pb.ListSupportMessagesRequest(store_id=store.id), metadata=store.token
    )
    [message] = messages.messages
    assert (message.subject_kind, message.subject_id) == ("escalation", order.order.id)
    assert message.order_code == order.order.code
    assert result.ticket == "closed"
    await _closed_ticket(escalating, store, order, "cancelled at the support deadline")
    await _check_history(handle, "refused_ticket_closed")


async def test_no_answer_escalates_and_the_deadline_cancels(escalating: Escalating) -> None:
    partners = escalating.partners
    store, order, handle = await _report(escalating, paid=False)
    await skip_time(
        escalating.env, timedelta(seconds=partners.settings.escalation_answer_timeout_seconds)
    )
    await _ticket_opened(escalating, store, order)
    result = await _result(escalating.env, handle)
    assert (result.outcome, result.refunded) == ("cancelled_at_deadline", False)
    detail = await partners.detail(store, order.order.id)
    assert _kinds(detail)[3:] == [
        "customer_call.requested",
        "customer_answer.missing",
        "escalated_to_support",
        "order.cancelled",
    ]
    assert detail.order.status == pb.ORDER_STATUS_CANCELLED
    assert (detail.order.cancellation_reason, detail.order.payment_made) == (
        STOCKOUT_REASON,
        False,
    )
    assert detail.escalation.answer == pb.ESCALATION_ANSWER_NONE
    # Too late now: the partner's answer is refused.
    late = await fails(
        partners.stub.AnswerOutOfStock(
            pb.AnswerOutOfStockRequest(
                store_id=store.id, order_id=order.order.id, customer_accepted=False
            ),
            metadata=store.token,
        )
    )
    assert late.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert result.ticket == "closed"
    ticket = await _closed_ticket(escalating, store, order, "cancelled at the support deadline")
    assert "Nothing had been paid" in ticket.messages[-1].body
    await _check_history(handle, "no_answer_ticket_closed")


async def test_support_cancels_before_its_deadline(escalating: Escalating) -> None:
    partners = escalating.partners
    store, order, handle = await _report(escalating, paid=True)
    await skip_time(
        escalating.env, timedelta(seconds=partners.settings.escalation_answer_timeout_seconds)
    )

    async def escalated() -> bool:
        detail = await partners.detail(store, order.order.id)
        return detail.escalation.status == pb.ESCALATION_STATUS_ESCALATED

    await eventually(escalated, within=30)
    _, agent = await partners.operator()
    listed = await partners.stub.ListEscalations(pb.ListEscalationsRequest(), metadata=agent)
    assert order.order.id in {e.order_id for e in listed.escalations}
    cancelled = await partners.stub.CancelEscalatedOrder(
        pb.CancelEscalatedOrderRequest(order_id=order.order.id, note="Client prévenu"),
        metadata=agent,
    )
    assert cancelled.escalation.cancelled_by == "support"
    assert cancelled.order.status == pb.ORDER_STATUS_REFUNDED
    again = await fails(
        partners.stub.CancelEscalatedOrder(
            pb.CancelEscalatedOrderRequest(order_id=order.order.id), metadata=agent
        )
    )
    assert again.code() == grpc.StatusCode.FAILED_PRECONDITION
    result = await _result(escalating.env, handle)
    assert (result.outcome, result.refunded) == ("cancelled_by_support", True)
    detail = await partners.detail(store, order.order.id)
    assert _kinds(detail).count("order.refunded") == 1
    assert len([p for p in detail.payments if p.kind == pb.PAYMENT_KIND_REFUND]) == 1
    assert result.ticket == "closed"
    ticket = await _closed_ticket(escalating, store, order, "cancelled by support")
    assert "The payment was refunded" in ticket.messages[-1].body
    assert "support_decided" in await _check_history(handle, "support_cancels_ticket_closed")
