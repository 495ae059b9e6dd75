"""Orders on the real service: intake, the partner's two views, payments and refunds, imports,
and a store never seeing another store's orders."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from guichet.common.v1 import common_pb2
from guichet.partners.v1 import partners_pb2 as pb
from sqlalchemy import event, text

from services.kit.errors import RemoteProblem
from services.kit.paging import page_token as encode_page_token
from tests.partners.harness import Partners, StoreFixture, fails


def _stamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def base_time() -> str:
    return datetime(2026, 1, 1, tzinfo=UTC).isoformat()


def _fields(error: grpc.aio.AioRpcError) -> set[str]:
    return {name for name, _ in RemoteProblem.from_rpc_error(error).violations}


async def _history(
    partners: Partners,
    store: StoreFixture,
    *,
    status: pb.OrderStatus.ValueType = pb.ORDER_STATUS_UNSPECIFIED,
    start: datetime | None = None,
    end: datetime | None = None,
    size: int = 0,
    token: str = "",
) -> pb.ListOrderHistoryResponse:
    request = pb.ListOrderHistoryRequest(
        store_id=store.id,
        status=status,
        page=common_pb2.PageRequest(page_size=size, page_token=token),
    )
    if start is not None:
        request.period_start.CopyFrom(_stamp(start))
    if end is not None:
        request.period_end.CopyFrom(_stamp(end))
    response: pb.ListOrderHistoryResponse = await partners.stub.ListOrderHistory(
        request, metadata=store.token
    )
    return response


async def test_intake_prices_the_order_from_the_menu_and_is_idempotent(
    partners: Partners,
) -> None:
    store = await partners.store()
    order = await partners.order(store, items=[(0, 2), (2, 1)], paid=True)
    assert order.order.total_cents == 2 * 1000 + 1200
    assert order.order.status == pb.ORDER_STATUS_ACCEPTED
    assert order.order.payment_made
    assert [p.kind for p in order.payments] == [pb.PAYMENT_KIND_PAYMENT]
    assert [e.kind for e in order.events] == ["order.accepted", "payment.recorded"]
    retried = await partners.stub.SubmitOrder(
        pb.SubmitOrderRequest(
            store_id=store.id,
            code=order.order.code,
            items=[pb.SubmittedItem(product_id=store.products[0].id, quantity=1)],
        ),
        metadata=partners.platform,
    )
    assert not retried.created
    assert retried.order.order.id == order.order.id


async def test_two_intakes_of_one_code_at_once_make_one_order(partners: Partners) -> None:
    store = await partners.store()
    request = pb.SubmitOrderRequest(
        store_id=store.id,
        code="RACE-1",
        items=[pb.SubmittedItem(product_id=store.products[0].id, quantity=1)],
    )
    first, second = await asyncio.gather(
        partners.stub.SubmitOrder(request, metadata=partners.platform),
        partners.stub.SubmitOrder(request, metadata=partners.platform),
    )
    assert first.order.order.id == second.order.order.id
    assert sorted([first.created, second.created]) == [False, True]


async def test_intake_is_internal_and_checks_every_item(partners: Partners) -> None:
    store = await partners.store()
    other = await partners.store()
    request = pb.SubmitOrderRequest(
        store_id=store.id,
        code="A-1",
        items=[pb.SubmittedItem(product_id=store.products[0].id, quantity=1)],
    )
    denied = await fails(partners.stub.SubmitOrder(request, metadata=store.token))
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    # A service token of an untrusted client (the gateway) is refused too.
    from tests.partners.harness import service_token

    gateway = await service_token(partners.identity.stub, "gateway")
    denied = await fails(partners.stub.SubmitOrder(request, metadata=gateway))
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    await partners.stub.DeactivateProduct(
        pb.DeactivateProductRequest(store_id=store.id, product_id=store.products[1].id),
        metadata=store.token,
    )
    bad = await fails(
        partners.stub.SubmitOrder(
            pb.SubmitOrderRequest(
                store_id=store.id,
                code="A-2",
                items=[
                    pb.SubmittedItem(product_id=other.products[0].id, quantity=1),
                    pb.SubmittedItem(product_id=store.products[1].id, quantity=1),
                    pb.SubmittedItem(product_id=store.products[2].id, quantity=0),
                ],
            ),
            metadata=partners.platform,
        )
    )
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _fields(bad) == {"items[2].quantity"}
    bad = await fails(
        partners.stub.SubmitOrder(
            pb.SubmitOrderRequest(
                store_id=store.id,
                code="A-2",
                items=[
                    pb.SubmittedItem(product_id=other.products[0].id, quantity=1),
                    pb.SubmittedItem(product_id=store.products[1].id, quantity=1),
                ],
            ),
            metadata=partners.platform,
        )
    )
    assert _fields(bad) == {"items[0].product_id", "items[1].product_id"}


async def test_in_progress_and_history_views(partners: Partners) -> None:
    store = await partners.store()
    running = await partners.order(store)
    delivered = await partners.order(store)
    cancelled = await partners.order(store, paid=True)
    refunded = await partners.order(store, paid=True)
    await partners.stub.UpdateOrderStatus(
        pb.UpdateOrderStatusRequest(order_id=delivered.order.id, status=pb.ORDER_STATUS_COLLECTED),
        metadata=partners.platform,
    )
    await partners.stub.UpdateOrderStatus(
        pb.UpdateOrderStatusRequest(order_id=delivered.order.id, status=pb.ORDER_STATUS_DELIVERED),
        metadata=partners.platform,
    )
    no_reason = await fails(
        partners.stub.UpdateOrderStatus(
            pb.UpdateOrderStatusRequest(
                order_id=cancelled.order.id, status=pb.ORDER_STATUS_CANCELLED
            ),
            metadata=partners.platform,
        )
    )
    assert _fields(no_reason) == {"cancellation_reason"}
    await partners.stub.UpdateOrderStatus(
        pb.UpdateOrderStatusRequest(
            order_id=cancelled.order.id,
            status=pb.ORDER_STATUS_CANCELLED,
            cancellation_reason="customer cancelled late",
        ),
        metadata=partners.platform,
    )
    await partners.stub.UpdateOrderStatus(
        pb.UpdateOrderStatusRequest(order_id=refunded.order.id, status=pb.ORDER_STATUS_DELIVERED),
        metadata=partners.platform,
    )
    await partners.stub.RefundOrder(
        pb.RefundOrderRequest(
            order_id=refunded.order.id,
            reason="cold food",
            funded_by=pb.REFUND_FUNDER_PLATFORM,
        ),
        metadata=partners.platform,
    )
    back = await fails(
        partners.stub.UpdateOrderStatus(
            pb.UpdateOrderStatusRequest(
                order_id=delivered.order.id, status=pb.ORDER_STATUS_COLLECTED
            ),
            metadata=partners.platform,
        )
    )
    assert back.code() == grpc.StatusCode.FAILED_PRECONDITION

    in_progress = await partners.stub.ListOrdersInProgress(
        pb.ListOrdersInProgressRequest(store_id=store.id), metadata=store.token
    )
    assert [o.id for o in in_progress.orders] == [running.order.id]
    history = await _history(partners, store)
    by_id = {o.id: o for o in history.orders}
    assert list(by_id) == [refunded.order.id, cancelled.order.id, delivered.order.id]
    line = by_id[cancelled.order.id]
    assert line.status == pb.ORDER_STATUS_CANCELLED
    assert (line.cancellation_reason, line.payment_made) == ("customer cancelled late", True)
    line = by_id[refunded.order.id]
    assert line.status == pb.ORDER_STATUS_REFUNDED
    assert (line.refund_reason, line.refund_funded_by) == ("cold food", pb.REFUND_FUNDER_PLATFORM)
    only = await _history(partners, store, status=pb.ORDER_STATUS_CANCELLED)
    assert [o.id for o in only.orders] == [cancelled.order.id]
    wrong = await fails(_history(partners, store, status=pb.ORDER_STATUS_ACCEPTED))
    assert _fields(wrong) == {"status"}
    detail = await partners.detail(store, refunded.order.id)
    assert [p.kind for p in detail.payments] == [pb.PAYMENT_KIND_PAYMENT, pb.PAYMENT_KIND_REFUND]
    twice = await fails(
        partners.stub.RefundOrder(
            pb.RefundOrderRequest(
                order_id=refunded.order.id, reason="again", funded_by=pb.REFUND_FUNDER_PARTNER
            ),
            metadata=partners.platform,
        )
    )
    assert twice.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_history_by_period_with_keyset_pages(partners: Partners) -> None:
    store = await partners.store()
    base = datetime(2026, 1, 1, 12, tzinfo=UTC)
    orders = [
        pb.ImportedOrder(
            code=f"H-{index:03d}",
            status=pb.ORDER_STATUS_DELIVERED if index % 2 else pb.ORDER_STATUS_COLLECTED,
            create_time=_stamp(base + timedelta(hours=index)),
            total_cents=1000 + index,
            paid_cents=1000 + index,
        )
        for index in range(25)
    ]
    # Two orders at the very same instant: the id breaks the tie, no row is lost or repeated.
    orders.append(
        pb.ImportedOrder(
            code="H-TWIN",
            status=pb.ORDER_STATUS_DELIVERED,
            create_time=_stamp(base + timedelta(hours=7)),
            total_cents=1,
        )
    )
    imported = await partners.stub.ImportOrders(
        pb.ImportOrdersRequest(store_id=store.id, orders=orders), metadata=partners.platform
    )
    assert (imported.imported, imported.skipped) == (26, 0)
    again = await partners.stub.ImportOrders(
        pb.ImportOrdersRequest(store_id=store.id, orders=orders), metadata=partners.admin
    )
    assert (again.imported, again.skipped) == (0, 26)

    seen: list[str] = []
    token = ""
    while True:
        page = await _history(partners, store, size=7, token=token)
        seen += [o.code for o in page.orders]
        token = page.page.next_page_token
        if not token:
            break
    assert len(seen) == 26 == len(set(seen))
    times = [int(code[2:]) if code != "H-TWIN" else 7 for code in seen]
    assert times == sorted(times, reverse=True)

    window = await _history(
        partners, store, start=base + timedelta(hours=10), end=base + timedelta(hours=20)
    )
    assert [o.code for o in window.orders] == [f"H-{i:03d}" for i in range(19, 9, -1)]
    delivered = await _history(
        partners,
        store,
        status=pb.ORDER_STATUS_DELIVERED,
        start=base + timedelta(hours=10),
        end=base + timedelta(hours=20),
        size=2,
    )
    assert [o.code for o in delivered.orders] == ["H-019", "H-017"]
    # A page token belongs to its filters: reused with others, it is refused.
    misuse = await fails(
        _history(
            partners, store, status=pb.ORDER_STATUS_COLLECTED, token=delivered.page.next_page_token
        )
    )
    assert _fields(misuse) == {"page.page_token"}
    garbage = await fails(_history(partners, store, token="not-a-token"))
    assert _fields(garbage) == {"page.page_token"}
    inverted = await fails(_history(partners, store, start=base, end=base - timedelta(days=1)))
    assert _fields(inverted) == {"period_end"}


async def test_import_checks_every_order(partners: Partners) -> None:
    store = await partners.store()
    bad = await fails(
        partners.stub.ImportOrders(
            pb.ImportOrdersRequest(
                store_id=store.id,
                orders=[
                    pb.ImportedOrder(code="X 1", status=pb.ORDER_STATUS_DELIVERED),
                    pb.ImportedOrder(
                        code="X-2",
                        status=pb.ORDER_STATUS_REFUNDED,
                        create_time=_stamp(datetime.now(UTC)),
                    ),
                ],
            ),
            metadata=partners.platform,
        )
    )
    assert _fields(bad) == {
        "orders[0].code",
        "orders[0].create_time",
        "orders[1].refund_reason",
        "orders[1].refund_funded_by",
        "orders[1].paid_cents",
    }
    denied = await fails(
        partners.stub.ImportOrders(
            pb.ImportOrdersRequest(store_id=store.id, orders=[pb.ImportedOrder(code="Y")]),
            metadata=store.token,
        )
    )
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_history_query_uses_the_keyset_indexes(partners: Partners) -> None:
    """The plan a deep page gets: an index range in the sort order, never a sort of the store's
    orders (the benchmark measures the same query on a million)."""
    store = await partners.store()
    base = datetime(2025, 1, 1, tzinfo=UTC)
    await partners.stub.ImportOrders(
        pb.ImportOrdersRequest(
            store_id=store.id,
            orders=[
                pb.ImportedOrder(
                    code=f"P-{i}",
                    status=pb.ORDER_STATUS_DELIVERED if i % 4 else pb.ORDER_STATUS_COLLECTED,
                    create_time=_stamp(base + timedelta(minutes=i)),
                    total_cents=100,
                )
                for i in range(3000)
            ],
        ),
        metadata=partners.platform,
    )
    deep = (base + timedelta(minutes=500)).isoformat()
    async with partners.sessions.begin() as session:
        await session.execute(text("ANALYZE orders"))
        plans = []
        for extra in ("status <> 'accepted'", "status = 'delivered'"):
            rows = await session.execute(
                text(
                    "EXPLAIN SELECT id, code, status, created_at FROM orders "
                    f"WHERE store_id = '{store.id}' AND {extra} AND (created_at, id) < "
                    f"('{deep}', 'ffffffff-ffff-ffff-ffff-ffffffffffff') "
                    "ORDER BY created_at DESC, id DESC LIMIT 51"
                )
            )
            plans.append("\n".join(r[0] for r in rows))
    assert "Index Scan Backward using ix_orders_store_history" in plans[0], plans[0]
    for plan in plans:
        # By status, the planner picks either index (by the status's share); both give the
        # rows in order, so a deep page stops after 51 of them.
        assert "Index Scan Backward using ix_orders_store_" in plan, plan
        assert "Sort" not in plan, plan


async def test_the_history_statement_keeps_its_index_in_a_generic_plan(
    partners: Partners,
) -> None:
    """asyncpg prepares statements, and PostgreSQL switches to a generic plan after five runs:
    the statement the service really sends must use the keyset index even then."""
    store = await partners.store()
    captured: list[tuple[str, tuple[object, ...]]] = []

    def capture(
        conn: object, cursor: object, statement: str, parameters: object, *_: object
    ) -> None:
        if "FROM orders" in statement and "ORDER BY orders.created_at DESC" in statement:
            captured.append((statement, tuple(parameters)))  # type: ignore[arg-type]

    engine = partners.context.engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        first = await _history(partners, store, size=1)
        assert not first.orders
        await _history(
            partners,
            store,
            size=1,
            token=encode_page_token("history", (base_time(), uuid.uuid4()), "||"),
        )
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    statement, parameters = captured[-1]
    values = ", ".join(f"'{value}'" for value in parameters)
    async with partners.sessions.begin() as session:
        await session.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
        raw = await (await session.connection()).get_raw_connection()
        driver: Any = raw.driver_connection
        await driver.execute(f"PREPARE history_page AS {statement}")
        rows = await driver.fetch(f"EXPLAIN EXECUTE history_page({values})")
        await driver.execute("DEALLOCATE history_page")
        plan = "\n".join(row[0] for row in rows)
    assert "ix_orders_store_history" in plan, plan
    assert "Sort" not in plan, plan


async def test_a_store_never_sees_another_stores_orders(partners: Partners) -> None:
    mine = await partners.store()
    other = await partners.store()
    theirs = await partners.order(other)
    hidden = await fails(
        partners.stub.GetOrder(
            pb.GetOrderRequest(store_id=mine.id, order_id=theirs.order.id), metadata=mine.token
        )
    )
    assert hidden.code() == grpc.StatusCode.NOT_FOUND
    for call in (
        partners.stub.GetOrder(
            pb.GetOrderRequest(store_id=other.id, order_id=theirs.order.id), metadata=mine.token
        ),
        partners.stub.ListOrdersInProgress(
            pb.ListOrdersInProgressRequest(store_id=other.id), metadata=mine.token
        ),
        partners.stub.ListOrderHistory(
            pb.ListOrderHistoryRequest(store_id=other.id), metadata=mine.token
        ),
        partners.stub.ReportOutOfStock(
            pb.ReportOutOfStockRequest(
                store_id=mine.id, order_id=theirs.order.id, item_id=theirs.items[0].id
            ),
            metadata=mine.token,
        ),
        partners.stub.ContactCourier(
            pb.ContactCourierRequest(store_id=mine.id, order_id=theirs.order.id),
            metadata=mine.token,
        ),
    ):
        error = await fails(call)
        assert error.code() == grpc.StatusCode.NOT_FOUND, error
    mine_only = await partners.stub.ListOrdersInProgress(
        pb.ListOrdersInProgressRequest(store_id=mine.id), metadata=mine.token
    )
    assert list(mine_only.orders) == []


async def test_couriers_reported_from_history_contacted_while_in_progress(
    partners: Partners,
) -> None:
    store = await partners.store()
    order = await partners.order(store)
    early = await fails(
        partners.stub.ReportCourier(
            pb.ReportCourierRequest(
                store_id=store.id, order_id=order.order.id, reason=pb.COURIER_REPORT_REASON_LATE
            ),
            metadata=store.token,
        )
    )
    assert early.code() == grpc.StatusCode.FAILED_PRECONDITION
    contact = await partners.stub.ContactCourier(
        pb.ContactCourierRequest(
            store_id=store.id, order_id=order.order.id, message="La commande est prête"
        ),
        metadata=store.token,
    )
    assert (contact.courier_name, contact.courier_phone) == ("Karim", "+33 6 55 66 77 88")
    await partners.stub.UpdateOrderStatus(
        pb.UpdateOrderStatusRequest(order_id=order.order.id, status=pb.ORDER_STATUS_DELIVERED),
        metadata=partners.platform,
    )
    late = await fails(
        partners.stub.ContactCourier(
            pb.ContactCourierRequest(store_id=store.id, order_id=order.order.id),
            metadata=store.token,
        )
    )
    assert late.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "history" in (late.details() or "")
    no_comment = await fails(
        partners.stub.ReportCourier(
            pb.ReportCourierRequest(
                store_id=store.id, order_id=order.order.id, reason=pb.COURIER_REPORT_REASON_OTHER
            ),
            metadata=store.token,
        )
    )
    assert _fields(no_comment) == {"comment"}
    report = await partners.stub.ReportCourier(
        pb.ReportCourierRequest(
            store_id=store.id,
            order_id=order.order.id,
            reason=pb.COURIER_REPORT_REASON_LATE,
            comment="35 minutes de retard",
        ),
        metadata=store.token,
    )
    assert report.report.reason == pb.COURIER_REPORT_REASON_LATE
    again = await fails(
        partners.stub.ReportCourier(
            pb.ReportCourierRequest(
                store_id=store.id, order_id=order.order.id, reason=pb.COURIER_REPORT_REASON_LATE
            ),
            metadata=store.token,
        )
    )
    assert again.code() == grpc.StatusCode.ALREADY_EXISTS
    detail = await partners.detail(store, order.order.id)
    kinds = [e.kind for e in detail.events]
    assert "courier.contacted" in kinds and "courier.reported" in kinds
    assert detail.courier_report.comment == "35 minutes de retard"
