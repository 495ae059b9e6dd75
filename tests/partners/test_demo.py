"""The `make dev` demo data of partners: Pizzeria Napoli to try every feature, and a store with
100,000 orders in its history, loaded fast through ImportOrders and idempotently."""

from __future__ import annotations

import time
import uuid

from guichet.common.v1 import common_pb2
from guichet.partners.v1 import partners_pb2 as pb
from sqlalchemy import func, select

from services.devstack.demo_partners import BULK_ORDERS, NAPOLI, PORT, load_partners_demo
from services.partners.models import Order
from tests.identity.harness import DELIVERY_PARTNER, PASSWORD, Account
from tests.partners.harness import Partners


async def test_demo_data_loads_fast_and_twice_the_same(partners: Partners) -> None:
    napoli = await partners.identity.organisation(DELIVERY_PARTNER, "Pizzeria Napoli")
    port = await partners.identity.organisation(DELIVERY_PARTNER, "Supérette du Port")
    await partners.identity.account(napoli, "partner_manager", username="napoli.manager")
    organisations = {NAPOLI: napoli, PORT: port}

    started = time.monotonic()
    await load_partners_demo(
        partners.address, partners.identity.stub, partners.admin, organisations, PASSWORD
    )
    first = time.monotonic() - started
    # The issue asks for a fast load (under 15 s on a developer machine); the bound here leaves
    # room for a loaded CI runner, and the figure is printed for the record.
    print(f"\npartners demo loaded in {first:.1f} s")
    assert first < 60

    async with partners.sessions.begin() as session:
        counts = dict(
            (
                await session.execute(select(Order.store_id, func.count()).group_by(Order.store_id))
            ).all()
        )
    assert counts[uuid.UUID(port)] == BULK_ORDERS
    assert counts[uuid.UUID(napoli)] == 62

    started = time.monotonic()
    await load_partners_demo(
        partners.address, partners.identity.stub, partners.admin, organisations, PASSWORD
    )
    assert time.monotonic() - started < 10
    async with partners.sessions.begin() as session:
        total = await session.scalar(select(func.count()).select_from(Order))
    assert total is not None and total >= BULK_ORDERS + 62

    manager = await partners.identity.token(Account("", "napoli.manager", PASSWORD, None, napoli))
    in_progress = await partners.stub.ListOrdersInProgress(
        pb.ListOrdersInProgressRequest(store_id=napoli), metadata=manager
    )
    assert {o.code for o in in_progress.orders} == {"NAP-1001", "NAP-1002"}
    active = await partners.stub.ListPromotions(
        pb.ListPromotionsRequest(store_id=napoli, status=pb.PROMOTION_STATUS_ACTIVE),
        metadata=manager,
    )
    assert len(active.promotions) == 1
    history = await partners.stub.ListOrderHistory(
        pb.ListOrderHistoryRequest(
            store_id=port,
            status=pb.ORDER_STATUS_REFUNDED,
            page=common_pb2.PageRequest(page_size=5),
        ),
        metadata=partners.admin,
    )
    assert all(o.refund_reason and o.refund_funded_by for o in history.orders)
