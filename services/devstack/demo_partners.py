"""Partners' demo data for `make dev`, loaded through partners' public contract (gRPC).

Pizzeria Napoli (DP-NAPOLI, user napoli.manager): a menu, two orders in progress (one to try the
out-of-stock escalation on), a few weeks of history with cancelled and refunded orders, an active
promotion. Supérette du Port (DP-PORT, user port.manager): 100,000 orders in its history, bulk-
imported through ImportOrders (COPY inside the service) in batches of 20,000.

Idempotent: stores and products are looked up first, orders are keyed by their code (a re-import
skips them), and the bulk history is skipped at once when its newest order is already there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from guichet.common.v1 import common_pb2
from guichet.identity.v1 import identity_pb2, identity_pb2_grpc
from guichet.partners.v1 import partners_pb2 as pb, partners_pb2_grpc

log = logging.getLogger("devstack")

Metadata = tuple[tuple[str, str], ...]
NAPOLI = "DP-NAPOLI"
PORT = "DP-PORT"
BULK_ORDERS = 100_000
SMALL_BULK = 500
BATCH = 20_000

MENU = (
    ("Margherita", "Tomate, mozzarella fior di latte, basilic", 950),
    ("Regina", "Tomate, mozzarella, jambon, champignons", 1150),
    ("Quattro formaggi", "Mozzarella, gorgonzola, parmesan, chèvre", 1290),
    ("Diavola", "Tomate, mozzarella, salami piquant", 1250),
    ("Calzone", "Pizza pliée, jambon, œuf, mozzarella", 1350),
    ("Tiramisu", "Mascarpone, café, cacao", 590),
    ("Panna cotta", "Coulis de fruits rouges", 550),
    ("Eau pétillante 50 cl", "", 250),
)
CANCEL_REASONS = (
    "customer cancelled",
    "restaurant closed early",
    "no courier available",
    "address unreachable",
)
REFUND_REASONS = ("cold food", "missing item", "order never delivered", "wrong order")


def _stamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


async def load_partners_demo(
    partners_addr: str,
    identity: identity_pb2_grpc.IdentityServiceStub,
    auth: Metadata,
    organisations: Mapping[str, str],
    password: str,
    *,
    large: bool = True,
) -> None:
    """`organisations` maps demo organisation codes to their ids; `auth` is the ops admin's."""
    async with grpc.aio.insecure_channel(partners_addr) as channel:
        stub = partners_pb2_grpc.PartnersServiceStub(channel)
        napoli = organisations[NAPOLI]
        await _store(stub, auth, napoli, "operations@napoli.example.com")
        products = await _menu(stub, auth, napoli)
        await _napoli_orders(stub, auth, napoli, products)
        manager = await identity.Login(
            identity_pb2.LoginRequest(username="napoli.manager", password=password), timeout=10
        )
        await _promotion(
            stub, (("authorization", f"Bearer {manager.tokens.access_token}"),), napoli, products
        )
        if PORT in organisations:
            port = organisations[PORT]
            await _store(stub, auth, port, "operations@port.example.com")
            started = time.monotonic()
            count = BULK_ORDERS if large else SMALL_BULK
            imported = await _bulk_history(stub, auth, port, count)
            log.info(
                "partners demo: %d orders imported for DP-PORT in %.1f s",
                imported,
                time.monotonic() - started,
            )


async def _store(
    stub: partners_pb2_grpc.PartnersServiceStub, auth: Metadata, store_id: str, email: str
) -> None:
    try:
        await stub.RegisterStore(
            pb.RegisterStoreRequest(store_id=store_id, operations_email=email, phone="+33 4 91 00"),
            metadata=auth,
            timeout=10,
        )
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise


async def _menu(
    stub: partners_pb2_grpc.PartnersServiceStub, auth: Metadata, store_id: str
) -> dict[str, str]:
    listed = await stub.ListProducts(
        pb.ListProductsRequest(store_id=store_id, page=common_pb2.PageRequest(page_size=500)),
        metadata=auth,
        timeout=10,
    )
    products = {p.name: p.id for p in listed.products}
    for name, description, price in MENU:
        if name not in products:
            made = await stub.CreateProduct(
                pb.CreateProductRequest(
                    store_id=store_id, name=name, description=description, price_cents=price
                ),
                metadata=auth,
                timeout=10,
            )
            products[name] = made.product.id
    return products


async def _napoli_orders(
    stub: partners_pb2_grpc.PartnersServiceStub,
    auth: Metadata,
    store_id: str,
    products: Mapping[str, str],
) -> None:
    """Two orders in progress (entered like the platform would), and three weeks of history."""
    now = datetime.now(UTC)
    for code, items, paid in (
        ("NAP-1001", (("Margherita", 2), ("Tiramisu", 1)), True),
        ("NAP-1002", (("Quattro formaggi", 1), ("Eau pétillante 50 cl", 2)), False),
    ):
        await stub.SubmitOrder(
            pb.SubmitOrderRequest(
                store_id=store_id,
                code=code,
                items=[pb.SubmittedItem(product_id=products[n], quantity=q) for n, q in items],
                customer_name="Claire Dubois" if paid else "Hugo Lefèvre",
                customer_phone="+33 6 12 00 00 01",
                courier_name="Karim",
                courier_phone="+33 6 55 66 77 88",
                paid=paid,
            ),
            metadata=auth,
            timeout=10,
        )
    history = list(_orders("NAP-", 60, now - timedelta(days=21), now - timedelta(hours=2)))
    await stub.ImportOrders(
        pb.ImportOrdersRequest(store_id=store_id, orders=history), metadata=auth, timeout=30
    )


async def _promotion(
    stub: partners_pb2_grpc.PartnersServiceStub,
    manager: Metadata,
    store_id: str,
    products: Mapping[str, str],
) -> None:
    listed = await stub.ListPromotions(
        pb.ListPromotionsRequest(store_id=store_id), metadata=manager, timeout=10
    )
    if listed.promotions:
        return
    now = datetime.now(UTC)
    draft = await stub.CreatePromotion(
        pb.CreatePromotionRequest(
            store_id=store_id, name="-20 % sur la Margherita", kind=pb.PROMOTION_KIND_PERCENT_OFF
        ),
        metadata=manager,
        timeout=10,
    )
    await stub.ConfigurePromotion(
        pb.ConfigurePromotionRequest(
            store_id=store_id,
            promotion_id=draft.promotion.id,
            percent_off=20,
            product_ids=[products["Margherita"]],
            start_time=_stamp(now - timedelta(days=1)),
            end_time=_stamp(now + timedelta(days=30)),
        ),
        metadata=manager,
        timeout=10,
    )
    await stub.ActivatePromotion(
        pb.ActivatePromotionRequest(store_id=store_id, promotion_id=draft.promotion.id),
        metadata=manager,
        timeout=10,
    )


def _orders(prefix: str, count: int, first: datetime, last: datetime) -> Iterator[pb.ImportedOrder]:
    """`count` orders evenly spread over [first, last], the newest with the highest number;
    statuses and amounts vary deterministically (a re-run produces the same codes)."""
    start = int(first.timestamp() * 1_000_000)
    step = int((last - first) / timedelta(microseconds=1)) // max(count - 1, 1)
    for index in range(count):
        number = index + 1
        placed = start + step * index  # microseconds since the epoch
        closed = placed + 35 * 60 * 1_000_000
        total = 900 + (number * 137) % 4500
        roll = (number * 7919) % 100
        order = pb.ImportedOrder(
            code=f"{prefix}{number:06d}",
            create_time=Timestamp(seconds=placed // 1_000_000, nanos=placed % 1_000_000 * 1000),
            close_time=Timestamp(seconds=closed // 1_000_000, nanos=closed % 1_000_000 * 1000),
            total_cents=total,
            paid_cents=total,
            customer_name="Client",
            courier_name="Coursier",
        )
        if roll < 80:
            order.status = pb.ORDER_STATUS_DELIVERED
        elif roll < 90:
            order.status = pb.ORDER_STATUS_COLLECTED
        elif roll < 96:
            order.status = pb.ORDER_STATUS_CANCELLED
            order.cancellation_reason = CANCEL_REASONS[number % len(CANCEL_REASONS)]
            if number % 2:
                order.paid_cents = 0  # cancelled before payment
        else:
            order.status = pb.ORDER_STATUS_REFUNDED
            order.refund_reason = REFUND_REASONS[number % len(REFUND_REASONS)]
            order.refund_funded_by = (
                pb.REFUND_FUNDER_PLATFORM if number % 3 else pb.REFUND_FUNDER_PARTNER
            )
        yield order


async def _bulk_history(
    stub: partners_pb2_grpc.PartnersServiceStub, auth: Metadata, store_id: str, count: int
) -> int:
    """Imports `count` orders over the last two years, unless the newest is already there."""
    prefix = "PORT-"
    newest = await stub.ListOrderHistory(
        pb.ListOrderHistoryRequest(store_id=store_id, page=common_pb2.PageRequest(page_size=1)),
        metadata=auth,
        timeout=10,
    )
    if newest.orders and newest.orders[0].code == f"{prefix}{count:06d}":
        return 0
    now = datetime.now(UTC)
    orders = _orders(prefix, count, now - timedelta(days=730), now - timedelta(hours=1))
    imported = 0
    batch: list[pb.ImportedOrder] = []
    for order in orders:
        batch.append(order)
        if len(batch) == BATCH:
            imported += await _import(stub, auth, store_id, batch)
            batch = []
    if batch:
        imported += await _import(stub, auth, store_id, batch)
    return imported


async def _import(
    stub: partners_pb2_grpc.PartnersServiceStub,
    auth: Metadata,
    store_id: str,
    batch: list[pb.ImportedOrder],
) -> int:
    response = await stub.ImportOrders(
        pb.ImportOrdersRequest(store_id=store_id, orders=batch), metadata=auth, timeout=120
    )
    return int(response.imported)
