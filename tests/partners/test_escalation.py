"""The out-of-stock escalation's rules on the real service and the Temporal dev server (the
deadline paths are in tests/workflows/test_order_escalation.py, on the time-skipping server)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import grpc
from guichet.partners.v1 import partners_pb2 as pb
from temporalio.testing import WorkflowEnvironment

from services.kit.errors import RemoteProblem
from tests.partners.harness import Partners, StoreFixture, eventually, fails
from workflows.contracts.partners import escalation_workflow_id
from workflows.order_escalation import OrderEscalation


def _fields(error: grpc.aio.AioRpcError) -> set[str]:
    return {name for name, _ in RemoteProblem.from_rpc_error(error).violations}


async def _reported(
    partners: Partners, *, paid: bool = True
) -> tuple[StoreFixture, pb.OrderDetail]:
    store = await partners.store()
    order = await partners.order(store, paid=paid)
    reported = await partners.stub.ReportOutOfStock(
        pb.ReportOutOfStockRequest(
            store_id=store.id, order_id=order.order.id, item_id=order.items[0].id
        ),
        metadata=store.token,
    )
    assert reported.order.escalation.status == pb.ESCALATION_STATUS_AWAITING_ANSWER
    return store, reported.order


async def test_only_an_item_of_an_order_in_progress_is_reported(partners: Partners) -> None:
    store = await partners.store()
    order = await partners.order(store)
    other = await partners.order(store)
    wrong_item = await fails(
        partners.stub.ReportOutOfStock(
            pb.ReportOutOfStockRequest(
                store_id=store.id, order_id=order.order.id, item_id=other.items[0].id
            ),
            metadata=store.token,
        )
    )
    assert _fields(wrong_item) == {"item_id"}
    await partners.stub.UpdateOrderStatus(
        pb.UpdateOrderStatusRequest(order_id=other.order.id, status=pb.ORDER_STATUS_DELIVERED),
        metadata=partners.platform,
    )
    closed = await fails(
        partners.stub.ReportOutOfStock(
            pb.ReportOutOfStockRequest(
                store_id=store.id, order_id=other.order.id, item_id=other.items[0].id
            ),
            metadata=store.token,
        )
    )
    assert closed.code() == grpc.StatusCode.FAILED_PRECONDITION
    await partners.stub.ReportOutOfStock(
        pb.ReportOutOfStockRequest(
            store_id=store.id, order_id=order.order.id, item_id=order.items[0].id
        ),
        metadata=store.token,
    )
    twice = await fails(
        partners.stub.ReportOutOfStock(
            pb.ReportOutOfStockRequest(
                store_id=store.id, order_id=order.order.id, item_id=order.items[1].id
            ),
            metadata=store.token,
        )
    )
    assert twice.code() == grpc.StatusCode.FAILED_PRECONDITION
    # While it runs, the platform may not close the order as if nothing happened.
    blocked = await fails(
        partners.stub.UpdateOrderStatus(
            pb.UpdateOrderStatusRequest(order_id=order.order.id, status=pb.ORDER_STATUS_COLLECTED),
            metadata=partners.platform,
        )
    )
    assert blocked.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_accepted_answer_replaces_the_item_at_once(
    partners: Partners, temporal_env: WorkflowEnvironment
) -> None:
    """On the dev server, in real time: the signal wakes the workflow, no deadline needed."""
    store, order = await _reported(partners)
    same = await fails(
        partners.stub.AnswerOutOfStock(
            pb.AnswerOutOfStockRequest(
                store_id=store.id,
                order_id=order.order.id,
                customer_accepted=True,
                replacement_product_id=store.products[0].id,
            ),
            metadata=store.token,
        )
    )
    assert _fields(same) == {"replacement_product_id"}
    other = await partners.store()
    foreign = await fails(
        partners.stub.AnswerOutOfStock(
            pb.AnswerOutOfStockRequest(
                store_id=store.id,
                order_id=order.order.id,
                customer_accepted=True,
                replacement_product_id=other.products[1].id,
            ),
            metadata=store.token,
        )
    )
    assert _fields(foreign) == {"replacement_product_id"}
    answered = await partners.stub.AnswerOutOfStock(
        pb.AnswerOutOfStockRequest(
            store_id=store.id,
            order_id=order.order.id,
            customer_accepted=True,
            replacement_product_id=store.products[2].id,
            replacement_quantity=1,
        ),
        metadata=store.token,
    )
    assert answered.order.escalation.status == pb.ESCALATION_STATUS_ACCEPTED
    handle = temporal_env.client.get_workflow_handle_for(
        OrderEscalation.run, escalation_workflow_id(order.order.id)
    )
    result = await asyncio.wait_for(handle.result(), timeout=30)
    assert result.outcome == "item_replaced"
    detail = await partners.detail(store, order.order.id)
    assert detail.escalation.status == pb.ESCALATION_STATUS_ITEM_REPLACED
    assert detail.order.total_cents == 1100 + 1200  # Pizza 2 (1) kept, Pizza 3 (1) for Pizza 1 (2)


async def test_an_answer_after_the_deadline_is_refused(partners: Partners) -> None:
    store, order = await _reported(partners)
    partners.clock.offset = timedelta(
        seconds=partners.settings.escalation_answer_timeout_seconds + 1
    )
    try:
        late = await fails(
            partners.stub.AnswerOutOfStock(
                pb.AnswerOutOfStockRequest(
                    store_id=store.id, order_id=order.order.id, customer_accepted=False
                ),
                metadata=store.token,
            )
        )
    finally:
        partners.clock.offset = timedelta(0)
    assert late.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert RemoteProblem.from_rpc_error(late).reason == "answer_deadline_passed"


async def test_two_operators_cancelling_at_once_cancel_and_refund_once(
    partners: Partners, temporal_env: WorkflowEnvironment
) -> None:
    store, order = await _reported(partners, paid=True)
    # Two support agents (an ops admin without a second factor holds its role back).
    (_, first), (_, second) = await partners.operator(), await partners.operator()
    results = await asyncio.gather(
        partners.stub.CancelEscalatedOrder(
            pb.CancelEscalatedOrderRequest(order_id=order.order.id), metadata=first
        ),
        partners.stub.CancelEscalatedOrder(
            pb.CancelEscalatedOrderRequest(order_id=order.order.id), metadata=second
        ),
        return_exceptions=True,
    )
    won = [r for r in results if isinstance(r, pb.CancelEscalatedOrderResponse)]
    lost = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(won) == 1 and len(lost) == 1, results
    assert lost[0].code() == grpc.StatusCode.FAILED_PRECONDITION
    # The workflow's own cancellation step (internal) answers the same, and changes nothing.
    again = await partners.stub.CancelEscalatedOrder(
        pb.CancelEscalatedOrderRequest(order_id=order.order.id), metadata=partners.worker
    )
    assert again.escalation.cancelled_by == "support"
    detail = await partners.detail(store, order.order.id)
    assert [p.kind for p in detail.payments] == [pb.PAYMENT_KIND_PAYMENT, pb.PAYMENT_KIND_REFUND]
    assert [e.kind for e in detail.events].count("order.cancelled") == 1
    handle = temporal_env.client.get_workflow_handle_for(
        OrderEscalation.run, escalation_workflow_id(order.order.id)
    )
    result = await asyncio.wait_for(handle.result(), timeout=30)
    assert (result.outcome, result.refunded) == ("cancelled_by_support", True)


async def test_the_platform_cancelling_ends_the_escalation(
    partners: Partners, temporal_env: WorkflowEnvironment
) -> None:
    store, order = await _reported(partners, paid=False)
    await partners.stub.UpdateOrderStatus(
        pb.UpdateOrderStatusRequest(
            order_id=order.order.id,
            status=pb.ORDER_STATUS_CANCELLED,
            cancellation_reason="customer cancelled",
        ),
        metadata=partners.platform,
    )
    handle = temporal_env.client.get_workflow_handle_for(
        OrderEscalation.run, escalation_workflow_id(order.order.id)
    )
    result = await asyncio.wait_for(handle.result(), timeout=30)
    assert result.outcome == "closed"
    detail = await partners.detail(store, order.order.id)
    assert detail.escalation.status == pb.ESCALATION_STATUS_CANCELLED
    assert detail.order.cancellation_reason == "customer cancelled"


async def test_the_workflow_steps_are_internal(partners: Partners) -> None:
    store, order = await _reported(partners)
    _, agent = await partners.operator()
    for metadata in (store.token, agent):
        for call in (
            partners.stub.DeactivateEscalatedProduct(
                pb.DeactivateEscalatedProductRequest(order_id=order.order.id), metadata=metadata
            ),
            partners.stub.SettleOutOfStockAnswer(
                pb.SettleOutOfStockAnswerRequest(order_id=order.order.id), metadata=metadata
            ),
            partners.stub.ReplaceEscalatedItem(
                pb.ReplaceEscalatedItemRequest(order_id=order.order.id), metadata=metadata
            ),
        ):
            error = await fails(call)
            assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    denied = await fails(
        partners.stub.CancelEscalatedOrder(
            pb.CancelEscalatedOrderRequest(order_id=order.order.id), metadata=store.token
        )
    )
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED

    async def deactivated() -> bool:
        detail = await partners.detail(store, order.order.id)
        return "customer_call.requested" in [e.kind for e in detail.events]

    # Meanwhile the workflow (with the worker's token) did its first step.
    await eventually(deactivated)
    listed = await partners.stub.ListProducts(
        pb.ListProductsRequest(store_id=store.id, active_only=True), metadata=store.token
    )
    assert store.products[0].id not in {p.id for p in listed.products}
    escalations = await partners.stub.ListEscalations(
        pb.ListEscalationsRequest(status=pb.ESCALATION_STATUS_AWAITING_ANSWER), metadata=agent
    )
    assert order.order.id in {e.order_id for e in escalations.escalations}
    hidden = await fails(
        partners.stub.ListEscalations(pb.ListEscalationsRequest(), metadata=store.token)
    )
    assert hidden.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_retried_workflow_steps_change_nothing_twice(partners: Partners) -> None:
    """Activities retry: each step, run again, answers the same and records nothing new."""
    store, order = await _reported(partners, paid=True)
    for _ in range(2):
        await partners.stub.DeactivateEscalatedProduct(
            pb.DeactivateEscalatedProductRequest(order_id=order.order.id), metadata=partners.worker
        )
    await partners.stub.AnswerOutOfStock(
        pb.AnswerOutOfStockRequest(
            store_id=store.id,
            order_id=order.order.id,
            customer_accepted=True,
            replacement_product_id=store.products[1].id,
        ),
        metadata=store.token,
    )
    for _ in range(2):
        settled = await partners.stub.SettleOutOfStockAnswer(
            pb.SettleOutOfStockAnswerRequest(order_id=order.order.id), metadata=partners.worker
        )
        assert settled.escalation.answer == pb.ESCALATION_ANSWER_ACCEPTED
        replaced = await partners.stub.ReplaceEscalatedItem(
            pb.ReplaceEscalatedItemRequest(order_id=order.order.id), metadata=partners.worker
        )
        assert replaced.escalation.status == pb.ESCALATION_STATUS_ITEM_REPLACED
    detail = await partners.detail(store, order.order.id)
    kinds = [e.kind for e in detail.events]
    assert kinds.count("product.deactivated") == 1
    assert kinds.count("item.replaced") == 1
    assert len(detail.items) == 3  # two ordered, one replacement
