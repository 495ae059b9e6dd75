"""The gateway's own cost, against the floor of its shape (a bare FastAPI route over a bare gRPC
server doing the same SQL), in one run on the same machine and the same payload.

Starts PostgreSQL, Temporal, the five services and the gateway as separate processes (as
`make dev` does) on free ports, imports orders into Pizzeria Napoli's history, and beside them:

* the floor: `floor-grpc`, a bare `grpc.aio` server answering `ListOrderHistory` with the
  statement partners sends (asyncpg, prepared), and `floor-http`, a bare FastAPI app on uvicorn
  whose one route calls it and answers the gateway's own `OrderPage`: no middleware, no token, no
  telemetry, no interceptor, no ORM;
* Guichet: the authenticated partner order-history page through the gateway, one authenticated
  read per portal, and `/readyz`.

The load comes from another process (`load`: a keep-alive HTTP/1.1 client on raw sockets, so the
client costs little of the two cores it shares). Latency at concurrency 1 interleaves the series
round by round (the machine is shared: a burst of load hits both sides alike); requests/s at
concurrency 16 and 64 alternate floor and gateway the same way. With `--workers 1,2` the
throughput is measured again with two processes on each side (gateway and partners; floor HTTP
and floor gRPC). `--profile` adds a pyinstrument profile of the gateway under load, broken down
by stage (docs/performance.md).

Done when: gateway p50 <= 2x and p99 <= 3x the floor at concurrency 1, and requests/s at
concurrency 64 >= half the floor's.
Run: `python -m bench.edge` (quick: 20,000 orders), `--orders 1000000 --requests 2000` for volume.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
from guichet.common.v1 import common_pb2
from guichet.identity.v1 import identity_pb2, identity_pb2_grpc
from guichet.partners.v1 import partners_pb2 as pb, partners_pb2_grpc
from temporalio.testing import WorkflowEnvironment

from services.devstack.components import (
    DEFAULT_PORTS,
    GATEWAY,
    GROUPS,
    IDENTITY,
    MEMBERSHIP,
    PARTNERS,
    SUPPORT,
    WORKER,
)
from services.devstack.demo import DEMO_PASSWORD, load_demo_data
from services.devstack.demo_partners import BATCH, _orders
from services.devstack.stack import ADMIN_USERNAME, Stack
from services.gateway.portals.partners.order_schemas import Order, OrderPage
from services.kit.binaries import temporal_cli
from services.kit.ports import free_port
from services.kit.temporal import dev_server_args
from services.kit.testing import database_server

PAGE = 50
P50_RATIO, P99_RATIO, THROUGHPUT_RATIO = 2.0, 3.0, 0.5
COLUMNS = (
    "id, store_id, code, status, created_at, closed_at, total_cents, currency, paid_cents, "
    "cancellation_reason, refund_reason, refund_funded_by, escalation_status"
)
# The statement partners sends for a first history page (services.partners.domain._order_rows).
FIRST_SQL = (
    f"SELECT {COLUMNS} FROM orders WHERE store_id = $1 AND status <> 'accepted' "
    "ORDER BY created_at DESC, id DESC LIMIT $2"
)


# --- the floor: bare gRPC server, bare FastAPI app ------------------------------------------------


def _enum(enum: Any, prefix: str, value: str | None) -> int:
    try:
        return int(enum.Value(f"{prefix}{(value or '').upper()}"))
    except ValueError:
        return 0


def _stamp(moment: datetime | None) -> Any:
    from google.protobuf.timestamp_pb2 import Timestamp

    if moment is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


async def floor_grpc(port: int, dsn: str) -> None:
    """`ListOrderHistory`'s first page: the SQL, the rows to protobuf, nothing else."""
    import asyncpg

    from services.kit.paging import page_token

    pool = await asyncpg.create_pool(dsn, min_size=4, max_size=10)

    class BareHistory(partners_pb2_grpc.PartnersServiceServicer):
        async def ListOrderHistory(
            self, request: pb.ListOrderHistoryRequest, context: Any
        ) -> pb.ListOrderHistoryResponse:
            size = request.page.page_size or PAGE
            rows = await pool.fetch(FIRST_SQL, uuid.UUID(request.store_id), size + 1)
            token = ""
            if len(rows) > size:
                last = rows[size - 1]
                token = page_token("history", (last["created_at"].isoformat(), last["id"]), "||")
            orders = [
                pb.Order(
                    id=str(row["id"]),
                    store_id=str(row["store_id"]),
                    code=row["code"],
                    status=_enum(pb.OrderStatus, "ORDER_STATUS_", row["status"]),  # type: ignore[arg-type]
                    create_time=_stamp(row["created_at"]),
                    close_time=_stamp(row["closed_at"]),
                    total_cents=row["total_cents"],
                    currency=row["currency"],
                    payment_made=row["paid_cents"] > 0,
                    cancellation_reason=row["cancellation_reason"] or "",
                    refund_reason=row["refund_reason"] or "",
                    refund_funded_by=_enum(  # type: ignore[arg-type]
                        pb.RefundFunder, "REFUND_FUNDER_", row["refund_funded_by"]
                    ),
                    escalation_status=_enum(  # type: ignore[arg-type]
                        pb.EscalationStatus, "ESCALATION_STATUS_", row["escalation_status"]
                    ),
                )
                for row in rows[:size]
            ]
            return pb.ListOrderHistoryResponse(
                orders=orders, page=common_pb2.PageResponse(next_page_token=token)
            )

    server = grpc.aio.server(options=[("grpc.so_reuseport", 1)])
    # Only ListOrderHistory is served; the rest answers UNIMPLEMENTED.
    servicer = BareHistory()  # type: ignore[abstract]
    partners_pb2_grpc.add_PartnersServiceServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await _until_signalled()
    await server.stop(1)
    await pool.close()


def floor_http_app(grpc_target: str) -> Any:
    """One route, the gateway's response model, a reused channel; nothing around it."""
    from fastapi import FastAPI

    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        channel = grpc.aio.insecure_channel(grpc_target)
        state["stub"] = partners_pb2_grpc.PartnersServiceStub(channel)
        yield
        await channel.close()

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/v1/partners/{store_id}/orders/history")
    async def history(store_id: uuid.UUID, page_size: int = PAGE) -> OrderPage:
        response = await state["stub"].ListOrderHistory(
            pb.ListOrderHistoryRequest(
                store_id=str(store_id), page=common_pb2.PageRequest(page_size=page_size)
            ),
            timeout=10,
        )
        token = response.page.next_page_token
        return OrderPage(
            items=[Order.from_proto(o) for o in response.orders], next_page_token=token or None
        )

    return app


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening socket several processes can hold on one port (the kernel spreads the load)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


async def floor_http(port: int, grpc_target: str) -> None:
    import uvicorn

    config = uvicorn.Config(
        floor_http_app(grpc_target), log_level="warning", access_log=False, lifespan="on"
    )
    await uvicorn.Server(config).serve(sockets=[reuse_port_socket("127.0.0.1", port)])


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


# --- the load generator (its own process) ---------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    host: str
    port: int
    request: bytes  # the whole HTTP/1.1 request, keep-alive


def _target(name: str, url: str, headers: dict[str, str]) -> Target:
    parsed = httpx.URL(url)
    path = parsed.raw_path.decode()
    lines = [f"GET {path} HTTP/1.1", f"Host: {parsed.host}:{parsed.port}"]
    lines += [f"{key}: {value}" for key, value in headers.items()]
    return Target(
        name, str(parsed.host), int(parsed.port or 80), "\r\n".join(lines).encode() + b"\r\n\r\n"
    )


class Connection:
    """One keep-alive connection: write the prepared request, read one Content-Length response."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, target: Target) -> Connection:
        reader, writer = await asyncio.open_connection(target.host, target.port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def get(self, target: Target) -> int:
        """The status; 0 when the server closed the connection twice in a row. An idle keep-alive
        connection the server closed (uvicorn: after 5 s) is reopened and the request sent again."""
        for _attempt in range(2):
            try:
                return await self._get(target)
            except (ConnectionError, asyncio.IncompleteReadError):
                self.writer.close()
                self.reader, self.writer = await asyncio.open_connection(target.host, target.port)
        return 0

    async def _get(self, target: Target) -> int:
        self.writer.write(target.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def latency(targets: Sequence[Target], requests: int, rounds: int) -> dict[str, Any]:
    """p50/p99 at concurrency 1, the series interleaved round by round."""
    connections = {t.name: await Connection.open(t) for t in targets}
    samples: dict[str, list[float]] = {t.name: [] for t in targets}
    for target in targets:  # warm-up: caches, prepared plans, channels
        for _ in range(max(20, requests // 10)):
            await connections[target.name].get(target)
    per_round = max(1, requests // rounds)
    failures: dict[str, int] = {t.name: 0 for t in targets}
    for _ in range(rounds):
        for target in targets:
            connection = connections[target.name]
            for _ in range(per_round):
                started = time.perf_counter()
                status = await connection.get(target)
                samples[target.name].append(time.perf_counter() - started)
                failures[target.name] += status != 200
    for connection in connections.values():
        connection.close()
    result: dict[str, Any] = {}
    for name, values in samples.items():
        ordered = sorted(values)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * len(ordered)) - 1)]
        result[name] = {
            "p50": statistics.median(ordered) * 1000,
            "p99": p99 * 1000,
            "failed": failures[name],
        }
    return result


async def throughput(target: Target, concurrency: int, seconds: float) -> dict[str, Any]:
    connections = [await Connection.open(target) for _ in range(concurrency)]
    done = failed = 0

    async def drive(connection: Connection) -> None:
        nonlocal done, failed
        while time.perf_counter() < deadline:
            status = await connection.get(target)
            done += 1
            failed += status != 200

    await asyncio.gather(*(c.get(target) for c in connections))  # warm-up
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(drive(c) for c in connections))
    elapsed = time.perf_counter() - started
    for connection in connections:
        connection.close()
    return {"rps": done / elapsed, "failed": failed}


async def load_main(spec: dict[str, Any]) -> dict[str, Any]:
    targets = [_target(t["name"], t["url"], t["headers"]) for t in spec["targets"]]
    if spec["mode"] == "latency":
        return await latency(targets, spec["requests"], spec["rounds"])
    results: dict[str, Any] = {}
    for round_ in range(spec["rounds"]):  # alternate the series: load bursts hit both alike
        for target in targets:
            one = await throughput(target, spec["concurrency"], spec["seconds"] / spec["rounds"])
            if round_ == 0:
                results[target.name] = one
            else:
                results[target.name]["rps"] += one["rps"]
                results[target.name]["failed"] += one["failed"]
    for value in results.values():
        value["rps"] /= spec["rounds"]
    return results


async def run_load(spec: dict[str, Any]) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.edge", "load", json.dumps(spec), stdout=asyncio.subprocess.PIPE
    )
    output, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"the load generator failed ({process.returncode})")
    result: dict[str, Any] = json.loads(output)
    return result


# --- the profile of the gateway -------------------------------------------------------------------

# Stages of a request, by where the time is spent (the innermost matching frame wins).
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("token verification", ("services/kit/auth.py", "/jwt/", "cryptography")),
    ("OpenTelemetry", ("/opentelemetry/",)),
    ("gRPC call", ("/grpc/", "grpc/_cython", "services/kit/grpcclient.py")),
    ("mapping (proto -> model -> JSON)", ("schemas", "serialize_response", "orjson", "/json/")),
    ("validation (params, dependencies)", ("fastapi/dependencies", "fastapi/_compat", "pydantic")),
    ("routing", ("starlette/routing", "fastapi/routing")),
    ("middleware", ("services/gateway/middleware.py", "starlette/middleware", "ratelimit")),
    ("logging, metrics", ("/logging/", "services/kit/logs.py", "prometheus", "metrics.py")),
    ("HTTP server, event loop", ("uvicorn", "uvloop", "httptools", "asyncio", "h11")),
)


def _stage_of(frame: Any, inherited: str) -> str:
    path = (frame.file_path or "") + ":" + (frame.function or "")
    for stage, needles in STAGES:
        if any(needle in path for needle in needles):
            return stage
    return inherited


# Where the event loop waits for sockets (partners' answer, the next request): not CPU.
_IDLE = {"select", "poll", "run_forever", "run_until_complete", "run", "_run_once"}


def breakdown(root: Any) -> dict[str, float]:
    """Self time of every frame, charged to the stage of its innermost recognised ancestor."""
    totals: dict[str, float] = {}
    pending: list[tuple[Any, str]] = [(root, "other")]
    while pending:
        frame, inherited = pending.pop()
        stage = _stage_of(frame, inherited)
        own = frame.time - sum(child.time for child in frame.children)
        idle = frame.function in _IDLE and any(
            part in (frame.file_path or "") for part in ("selectors", "asyncio", "uvloop")
        )
        charged = "idle (waiting on the network)" if idle else stage
        totals[charged] = totals.get(charged, 0.0) + max(own, 0.0)
        pending += [(child, stage) for child in frame.children]
    return totals


async def profile_gateway(output: str) -> None:
    """The real gateway app in this process under pyinstrument until SIGTERM, then the profile."""
    from pyinstrument import Profiler

    from services.gateway.__main__ import DrainingServer, uvicorn_config
    from services.gateway.app import create_app
    from services.gateway.settings import GatewaySettings
    from services.kit.logs import configure_logging
    from services.kit.settings import load_settings
    from services.kit.telemetry import setup_telemetry

    settings = load_settings(GatewaySettings)
    configure_logging(settings.service_name, level=settings.log_level, json_lines=True)
    setup_telemetry(settings.service_name, otlp_endpoint=settings.otel_exporter_otlp_endpoint)
    server = DrainingServer(uvicorn_config(create_app(settings), settings))
    profiler = Profiler(interval=0.0005, async_mode="disabled")
    profiler.start()
    await server.serve()
    session = profiler.stop()
    root = session.root_frame()
    totals = breakdown(root) if root is not None else {}
    Path(output).write_text(
        json.dumps({"totals": totals, "text": profiler.output_text(unicode=False, show_all=False)})
    )


# --- the run --------------------------------------------------------------------------------------


async def _wait_http(url: str) -> None:
    async with httpx.AsyncClient(timeout=1) as client:
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code < 500:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


async def _spawn(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.edge", *args, env=env, start_new_session=True
    )


async def _stop(processes: Sequence[asyncio.subprocess.Process], grace: float = 20) -> None:
    for process in processes:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            process.kill()


async def _import(stub: Any, auth: Any, store_id: str, count: int) -> None:
    now = datetime.now(UTC)
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


async def _login(identity: Any, username: str, password: str) -> str:
    answer = await identity.Login(identity_pb2.LoginRequest(username=username, password=password))
    return str(answer.tokens.access_token)


async def _portal_reads(
    stack: Stack, identity: Any, codes: dict[str, str]
) -> list[tuple[str, str, str]]:
    """One authenticated read per portal: (name, path, token); kept only if it answers 200."""
    wanted = [
        (
            "groups: relationships",
            "dupont.jean",
            f"/v1/providers/{codes['SP-DUPONT']}/relationships",
        ),
        ("support: tickets", "laval.paul", "/v1/support/tickets"),
        (
            "workshops: technicians",
            "garage.owner",
            f"/v1/workshops/{codes['WS-CENTRE']}/technicians",
        ),
        ("associations: members", "assoc.admin", f"/v1/associations/{codes['75']}/members"),
        ("identity: /v1/me", "bois.user", "/v1/me"),
    ]
    kept = []
    async with httpx.AsyncClient(base_url=stack.gateway_url) as http:
        for name, user, path in wanted:
            token = await _login(identity, user, DEMO_PASSWORD)
            answer = await http.get(path, headers={"authorization": f"Bearer {token}"})
            if answer.status_code == 200:
                kept.append((name, path, token))
            else:
                print(f"(skipped {name}: {answer.status_code} {answer.text[:120]})")
    return kept


@dataclass
class Floor:
    processes: list[asyncio.subprocess.Process]
    url: str


async def start_floor(dsn: str, workers: int) -> Floor:
    grpc_port, http_port = free_port(), free_port()
    processes = [await _spawn("floor-grpc", str(grpc_port), dsn) for _ in range(workers)]
    await asyncio.sleep(1.0)
    target = f"127.0.0.1:{grpc_port}"
    processes += [await _spawn("floor-http", str(http_port), target) for _ in range(workers)]
    url = f"http://127.0.0.1:{http_port}"
    await _wait_http(url + "/healthz")
    return Floor(processes, url)


async def main(options: argparse.Namespace) -> None:
    worker_counts = [int(n) for n in options.workers.split(",")]
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
            # Tokens outlive a slow run (the default is 5 minutes).
            extra_env={
                "AUTH_RATE_LIMIT_PER_MINUTE": "100000000",
                "LOG_LEVEL": "WARNING",
                "ACCESS_TOKEN_TTL_SECONDS": "7200",
            },
        )
        try:
            await stack.start_infrastructure()
            for component in (IDENTITY, GROUPS, SUPPORT, MEMBERSHIP, PARTNERS, WORKER, GATEWAY):
                await stack.start_component(component)
            addresses = {c.name: stack.grpc_address(c.name) for c in (GROUPS, SUPPORT, MEMBERSHIP)}
            await load_demo_data(
                stack.grpc_address("identity"),
                ADMIN_USERNAME,
                stack.secrets.admin_password,
                stack.smtp,
                admin_totp_secret=stack.secrets.admin_totp_secret,
                large=False,
                addresses=addresses,
            )
            await _run(stack, options, worker_counts)
        finally:
            await stack.stop()
            await temporal.shutdown()


async def _run(stack: Stack, options: argparse.Namespace, worker_counts: list[int]) -> None:
    async with grpc.aio.insecure_channel(stack.grpc_address("identity")) as channel:
        identity = identity_pb2_grpc.IdentityServiceStub(channel)
        admin = await stack.admin_token()  # the ops admin answers its TOTP
        admin_auth = (("authorization", f"Bearer {admin}"),)
        page = await identity.ListOrganisations(
            identity_pb2.ListOrganisationsRequest(page=common_pb2.PageRequest(page_size=500)),
            metadata=admin_auth,
        )
        codes = {o.code: o.id for o in page.organisations}
        store_id = codes["DP-NAPOLI"]
        async with grpc.aio.insecure_channel(stack.grpc_address("partners")) as partners_channel:
            partners = partners_pb2_grpc.PartnersServiceStub(partners_channel)
            await partners.RegisterStore(
                pb.RegisterStoreRequest(store_id=store_id, operations_email="ops@napoli.example"),
                metadata=admin_auth,
            )
            started = time.perf_counter()
            await _import(partners, admin_auth, store_id, options.orders)
            imported = time.perf_counter() - started
        manager = await _login(identity, "napoli.manager", DEMO_PASSWORD)
        portals = await _portal_reads(stack, identity, codes)

    dsn = stack.database_urls["partners"].replace("+asyncpg", "")
    import asyncpg

    database = await asyncpg.connect(dsn)
    await database.execute("VACUUM ANALYZE orders")
    await database.close()

    history = f"/v1/partners/{store_id}/orders/history?page_size={PAGE}"
    bearer = {"authorization": f"Bearer {manager}"}
    floor = await start_floor(dsn, 1)
    try:
        series = [
            {"name": "floor: history page", "url": floor.url + history, "headers": {}},
            {
                "name": "gateway: history page",
                "url": stack.gateway_url + history,
                "headers": bearer,
            },
            {"name": "gateway: /readyz", "url": stack.gateway_url + "/readyz", "headers": {}},
        ]
        series += [
            {
                "name": f"gateway: {name}",
                "url": stack.gateway_url + path,
                "headers": {"authorization": f"Bearer {token}"},
            }
            for name, path, token in portals
        ]
        latencies = await run_load(
            {"mode": "latency", "targets": series, "requests": options.requests, "rounds": 10}
        )
        print(json.dumps({"latencies": latencies}), flush=True)
        rates: dict[tuple[int, int], dict[str, Any]] = {}
        for concurrency in (16, 64):
            rates[(1, concurrency)] = await run_load(
                {
                    "mode": "throughput",
                    "targets": series[:2],
                    "concurrency": concurrency,
                    "seconds": options.seconds,
                    "rounds": 2,
                }
            )
        print(json.dumps({"rates": {str(k): v for k, v in rates.items()}}), flush=True)
        profile = None
        if options.profile:
            try:
                profile = await _profile(stack, series[1], options)
            except Exception as error:  # the figures above still count
                print(f"(profile failed: {error!r})")
    finally:
        await _stop(floor.processes)
    for workers in worker_counts:
        if workers == 1:
            continue
        rates.update(await _with_workers(stack, dsn, workers, history, bearer, options))
    _print(stack, options, imported, latencies, rates, profile)


async def _with_workers(
    stack: Stack, dsn: str, workers: int, history: str, bearer: dict[str, str], options: Any
) -> dict[tuple[int, int], dict[str, Any]]:
    """Restarts partners and the gateway with GUICHET_WORKERS, and the floor with as many."""
    stack.extra_env["GUICHET_WORKERS"] = str(workers)
    for name in ("gateway", "partners"):
        await stack.restart(name, signal.SIGTERM)
    await _wait_http(stack.gateway_url + "/readyz")
    floor = await start_floor(dsn, workers)
    try:
        series = [
            {"name": "floor: history page", "url": floor.url + history, "headers": {}},
            {
                "name": "gateway: history page",
                "url": stack.gateway_url + history,
                "headers": bearer,
            },
        ]
        rates = {}
        for concurrency in (16, 64):
            rates[(workers, concurrency)] = await run_load(
                {
                    "mode": "throughput",
                    "targets": series,
                    "concurrency": concurrency,
                    "seconds": options.seconds,
                    "rounds": 2,
                }
            )
            print(
                json.dumps({"rates": {str((workers, concurrency)): rates[(workers, concurrency)]}}),
                flush=True,
            )
        return rates
    finally:
        await _stop(floor.processes)
        stack.extra_env.pop("GUICHET_WORKERS")


async def _profile(stack: Stack, target: dict[str, Any], options: Any) -> dict[str, Any]:
    port = free_port()
    env = {**stack.env_for(GATEWAY), "HTTP_PORT": str(port)}
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        output = handle.name
    process = await _spawn("profile-gateway", output, env=env)
    url = target["url"].replace(stack.gateway_url, f"http://127.0.0.1:{port}")
    await _wait_http(f"http://127.0.0.1:{port}/healthz")
    await run_load(
        {
            "mode": "throughput",
            "targets": [{**target, "url": url}],
            "concurrency": 1,
            "seconds": options.seconds,
            "rounds": 1,
        }
    )
    await _stop([process], grace=120)  # writing the profile takes a while on a loaded machine
    result: dict[str, Any] = json.loads(Path(output).read_text())
    os.unlink(output)
    return result


def _print(
    stack: Stack,
    options: Any,
    imported: float,
    latencies: dict[str, Any],
    rates: dict[tuple[int, int], dict[str, Any]],
    profile: dict[str, Any] | None,
) -> None:
    load = os.getloadavg()
    print(f"cores / load average              {os.cpu_count()} / {load[0]:.2f} {load[1]:.2f}")
    print(f"orders in the store               {options.orders:,} (imported in {imported:.1f} s)")
    print(f"requests per series (c=1)         {options.requests}, interleaved in 10 rounds")
    print(f"{'concurrency 1':42}{'p50 ms':>9}{'p99 ms':>9}{'p50 x':>8}{'p99 x':>8}")
    floor = latencies["floor: history page"]
    for name, value in latencies.items():
        print(
            f"{name:42}{value['p50']:9.2f}{value['p99']:9.2f}"
            f"{value['p50'] / floor['p50']:8.1f}{value['p99'] / floor['p99']:8.1f}"
            + (f"  ({value['failed']} failed)" if value["failed"] else "")
        )
    print(f"{'requests/s':42}{'floor':>9}{'gateway':>9}{'ratio':>8}")
    for (workers, concurrency), value in sorted(rates.items()):
        ours, base = value["gateway: history page"]["rps"], value["floor: history page"]["rps"]
        failed = value["gateway: history page"]["failed"] + value["floor: history page"]["failed"]
        label = f"history, {workers} worker(s), concurrency {concurrency}"
        print(
            f"{label:42}{base:9.0f}{ours:9.0f}{ours / base:8.2f}"
            + (f"  ({failed} failed)" if failed else "")
        )
    gateway = latencies["gateway: history page"]
    p50, p99 = gateway["p50"] / floor["p50"], gateway["p99"] / floor["p99"]
    rate = rates[(1, 64)]
    share = rate["gateway: history page"]["rps"] / rate["floor: history page"]["rps"]
    met = p50 <= P50_RATIO and p99 <= P99_RATIO and share >= THROUGHPUT_RATIO
    print(
        f"done-when (p50 <= {P50_RATIO:.0f}x, p99 <= {P99_RATIO:.0f}x, c=64 >= "
        f"{THROUGHPUT_RATIO:.1f}x): p50 {p50:.2f}x, p99 {p99:.2f}x, c=64 {share:.2f}x -> "
        f"{'met' if met else 'NOT met'}"
    )
    if profile is not None:
        totals: dict[str, float] = profile["totals"]
        busy = sum(v for k, v in totals.items() if not k.startswith("idle"))
        print("gateway profile (pyinstrument, history page at c=1), share of busy CPU time:")
        for stage, seconds in sorted(totals.items(), key=lambda item: -item[1]):
            if not stage.startswith("idle"):
                print(f"  {stage:40}{100 * seconds / busy:6.1f} %")
        if options.profile_text:
            print(profile["text"])


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=1000, help="per series at concurrency 1")
    parser.add_argument("--seconds", type=float, default=6.0, help="per throughput series")
    parser.add_argument("--workers", default="1,2", help="worker counts to measure, e.g. 1,2")
    parser.add_argument("--profile", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--profile-text", action="store_true", help="print the whole profile")
    return parser.parse_args(argv)


def _role(argv: list[str]) -> None:
    """The processes the run starts: `floor-grpc`, `floor-http`, `load`, `profile-gateway`."""
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    role, *rest = argv
    if role == "floor-grpc":
        asyncio.run(floor_grpc(int(rest[0]), rest[1]))
    elif role == "floor-http":
        asyncio.run(floor_http(int(rest[0]), rest[1]))
    elif role == "load":
        print(json.dumps(asyncio.run(load_main(json.loads(rest[0])))))
    elif role == "profile-gateway":
        asyncio.run(profile_gateway(rest[0]))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in {"floor-grpc", "floor-http", "load", "profile-gateway"}:
        _role(sys.argv[1:])
    else:
        asyncio.run(main(_arguments(sys.argv[1:])))
    sys.stdout.flush()
    os._exit(0)
