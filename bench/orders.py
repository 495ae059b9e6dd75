"""A store's order history over a million orders: first page and a deep page, through the
gateway, beside the same query run straight in SQL (the floor).

Starts identity, partners, the worker and the gateway as separate processes (as `make dev` does)
on free ports, registers Pizzeria Napoli, imports 1,000,000 orders into its history through
partners' ImportOrders (COPY inside the service), then measures, one request at a time after a
warm-up:

* the gateway: `GET /v1/partners/{store}/orders/history` (50 per page), first page and a page
  900,000 orders deep (its keyset token built for that position);
* partners over gRPC directly (where the gateway's share shows);
* the floor: the statement partners sends, prepared and run with asyncpg on the same server;
* for scale, the same deep page read with OFFSET (what the keyset avoids);
* the hops alone: the gateway's `/readyz`, one HTTP request into FastAPI and one gRPC call to
  identity with no token and no SQL: what the service shape costs before any work.

Done when: p99 through the gateway < 50 ms, and within 3x the SQL floor.
Run: `make bench` (or `python -m bench.orders --orders 1000000 --requests 400`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import httpx
from guichet.common.v1 import common_pb2
from guichet.identity.v1 import identity_pb2, identity_pb2_grpc
from guichet.partners.v1 import partners_pb2 as pb, partners_pb2_grpc
from temporalio.testing import WorkflowEnvironment

from services.devstack.components import DEFAULT_PORTS, GATEWAY, IDENTITY, PARTNERS, WORKER
from services.devstack.demo import DEMO_PASSWORD, load_demo_data
from services.devstack.demo_partners import BATCH, _orders
from services.devstack.stack import ADMIN_USERNAME, Stack
from services.kit.binaries import temporal_cli
from services.kit.paging import page_token as encode_page_token
from services.kit.ports import free_port
from services.kit.temporal import dev_server_args
from services.kit.testing import database_server

P99_BUDGET_MS = 50.0
FLOOR_RATIO = 3.0
PAGE = 50
DEEP = 900_000

# The statement partners sends for a history page (services.partners.domain.orders._order_rows).
COLUMNS = (
    "id, store_id, code, status, created_at, closed_at, total_cents, currency, paid_cents, "
    "cancellation_reason, refund_reason, refund_funded_by, escalation_status"
)
FIRST_SQL = (
    f"SELECT {COLUMNS} FROM orders WHERE store_id = $1 AND status <> 'accepted' "
    "ORDER BY created_at DESC, id DESC LIMIT $2"
)
DEEP_SQL = (
    f"SELECT {COLUMNS} FROM orders WHERE store_id = $1 AND status <> 'accepted' "
    "AND (created_at, id) < ($3, $4) ORDER BY created_at DESC, id DESC LIMIT $2"
)
OFFSET_SQL = (
    f"SELECT {COLUMNS} FROM orders WHERE store_id = $1 AND status <> 'accepted' "
    "ORDER BY created_at DESC, id DESC OFFSET $3 LIMIT $2"
)


def _quantiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * len(ordered)) - 1)]
    return p50 * 1000, p99 * 1000


async def _measure(call: Callable[[], Awaitable[Any]], requests: int) -> tuple[float, float]:
    for _ in range(max(requests // 10, 20)):  # warm-up: connections, caches, prepared plans
        await call()
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return _quantiles(samples)


async def _import(
    stub: partners_pb2_grpc.PartnersServiceStub, auth: Any, store_id: str, count: int
) -> float:
    now = datetime.now(UTC)
    started = time.perf_counter()
    batch: list[pb.ImportedOrder] = []
    for order in _orders("H-", count, now - timedelta(days=3 * 365), now - timedelta(hours=1)):
        batch.append(order)
        if len(batch) == BATCH:
            await stub.ImportOrders(
                pb.ImportOrdersRequest(store_id=store_id, orders=batch), metadata=auth, timeout=300
            )
            batch = []
    if batch:
        await stub.ImportOrders(
            pb.ImportOrdersRequest(store_id=store_id, orders=batch), metadata=auth, timeout=300
        )
    return time.perf_counter() - started


async def main(count: int, requests: int) -> None:
    with database_server() as pg, tempfile.TemporaryDirectory() as state:
        temporal = await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_cli(),
            dev_server_extra_args=["--log-level", "error", *dev_server_args()],
        )
        stack = Stack(
            Path(state),
            {name: free_port() for name in DEFAULT_PORTS},
            database_admin_url=pg.admin_url,
            temporal_address=temporal.client.service_client.config.target_host,
            echo=False,
            extra_env={"AUTH_RATE_LIMIT_PER_MINUTE": "100000000", "LOG_LEVEL": "WARNING"},
        )
        try:
            await stack.start_infrastructure()
            for component in (IDENTITY, PARTNERS, WORKER, GATEWAY):
                await stack.start_component(component)
            await load_demo_data(
                stack.grpc_address("identity"),
                ADMIN_USERNAME,
                stack.secrets.admin_password,
                stack.smtp,
                admin_totp_secret=stack.secrets.admin_totp_secret,
                large=False,
            )
            await _run(stack, count, requests)
        finally:
            await stack.stop()
            await temporal.shutdown()


async def _run(stack: Stack, count: int, requests: int) -> None:
    async with (
        grpc.aio.insecure_channel(stack.grpc_address("identity")) as identity_channel,
        grpc.aio.insecure_channel(stack.grpc_address("partners")) as partners_channel,
    ):
        identity = identity_pb2_grpc.IdentityServiceStub(identity_channel)
        partners = partners_pb2_grpc.PartnersServiceStub(partners_channel)
        admin = await stack.admin_token()  # the ops admin answers its TOTP
        admin_auth = (("authorization", f"Bearer {admin}"),)
        page = await identity.ListOrganisations(
            identity_pb2.ListOrganisationsRequest(page=common_pb2.PageRequest(page_size=500)),
            metadata=admin_auth,
        )
        store_id = next(o.id for o in page.organisations if o.code == "DP-NAPOLI")
        await partners.RegisterStore(
            pb.RegisterStoreRequest(store_id=store_id, operations_email="ops@napoli.example.com"),
            metadata=admin_auth,
        )
        loaded = await _import(partners, admin_auth, store_id, count)

        database = await asyncpg.connect(stack.database_urls["partners"].replace("+asyncpg", ""))
        try:
            await database.execute("VACUUM ANALYZE orders")
            total = await database.fetchval(
                "SELECT count(*) FROM orders WHERE store_id = $1", store_id
            )
            deep = await database.fetchrow(
                "SELECT created_at, id FROM orders WHERE store_id = $1 AND status <> 'accepted' "
                "ORDER BY created_at DESC, id DESC OFFSET $2 LIMIT 1",
                store_id,
                min(DEEP, count - PAGE - 1),
            )
            token = encode_page_token("history", (deep["created_at"].isoformat(), deep["id"]), "||")

            first_sql = await database.prepare(FIRST_SQL)
            deep_sql = await database.prepare(DEEP_SQL)
            offset_sql = await database.prepare(OFFSET_SQL)
            store = uuid.UUID(store_id)
            floor_first = await _measure(lambda: first_sql.fetch(store, PAGE + 1), requests)
            floor_deep = await _measure(
                lambda: deep_sql.fetch(store, PAGE + 1, deep["created_at"], deep["id"]), requests
            )
            offset = await _measure(
                lambda: offset_sql.fetch(store, PAGE + 1, min(DEEP, count - PAGE - 1)), 10
            )
        finally:
            await database.close()

        manager = await identity.Login(
            identity_pb2.LoginRequest(username="napoli.manager", password=DEMO_PASSWORD)
        )
        user_auth = (("authorization", f"Bearer {manager.tokens.access_token}"),)

        def grpc_page(page_token: str) -> Callable[[], Awaitable[Any]]:
            request = pb.ListOrderHistoryRequest(
                store_id=store_id,
                page=common_pb2.PageRequest(page_size=PAGE, page_token=page_token),
            )
            return lambda: partners.ListOrderHistory(request, metadata=user_auth)

        grpc_first = await _measure(grpc_page(""), requests)
        grpc_deep = await _measure(grpc_page(token), requests)

        headers = {"authorization": f"Bearer {manager.tokens.access_token}"}
        path = f"/v1/partners/{store_id}/orders/history"
        async with httpx.AsyncClient(base_url=stack.gateway_url, headers=headers) as http:
            check = await http.get(path, params={"page_size": PAGE, "page_token": token})
            check.raise_for_status()
            assert len(check.json()["items"]) == PAGE

            async def gateway_call(params: dict[str, Any]) -> None:
                response = await http.get(path, params=params)
                if response.status_code != 200:
                    raise RuntimeError(response.text)

            gateway_first = await _measure(lambda: gateway_call({"page_size": PAGE}), requests)
            gateway_deep = await _measure(
                lambda: gateway_call({"page_size": PAGE, "page_token": token}), requests
            )

            async def hops_only() -> None:
                (await http.get("/readyz")).raise_for_status()

            # The shape's own floor: the gateway's readiness check crosses the same two hops
            # (HTTP into FastAPI, one gRPC call) and does no work at all: no token, no SQL.
            hops = await _measure(hops_only, requests)

    load = os.getloadavg()
    print(f"cores / load average          {os.cpu_count()} / {load[0]:.2f} {load[1]:.2f}")
    print(f"orders in the store           {total:,} (imported in {loaded:.1f} s)")
    print(f"requests per series           {requests} (one at a time), page of {PAGE}")
    print(f"{'':30}{'p50 ms':>10}{'p99 ms':>10}")
    rows = (
        ("SQL floor, first page", floor_first),
        ("SQL floor, deep page", floor_deep),
        ("partners gRPC, first page", grpc_first),
        ("partners gRPC, deep page", grpc_deep),
        ("gateway, first page", gateway_first),
        ("gateway, deep page", gateway_deep),
        (f"(OFFSET {DEEP:,}, for scale)", offset),
        ("gateway /readyz (hops, no work)", hops),
    )
    for name, (p50, p99) in rows:
        print(f"{name:30}{p50:10.2f}{p99:10.2f}")
    for name, gateway, floor in (
        ("first page", gateway_first, floor_first),
        ("deep page", gateway_deep, floor_deep),
    ):
        ratio = gateway[1] / floor[1]
        verdict = "met" if gateway[1] < P99_BUDGET_MS and ratio <= FLOOR_RATIO else "NOT met"
        print(
            f"{name}: gateway p99 / SQL p99 = {ratio:.1f}x "
            f"(p50 {gateway[0] / floor[0]:.1f}x); p99 < {P99_BUDGET_MS:.0f} ms "
            f"{'yes' if gateway[1] < P99_BUDGET_MS else 'NO'}; done-when {verdict}"
        )
    print(
        f"the two hops alone, doing nothing: p50 {hops[0] / floor_first[0]:.1f}x and "
        f"p99 {hops[1] / floor_first[1]:.1f}x the first page's SQL floor"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=400)
    options = parser.parse_args()
    asyncio.run(main(options.orders, options.requests))
    os._exit(0)
