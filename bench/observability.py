"""What watching Guichet costs: the time a Prometheus scrape takes while the gateway is under
load, and the requests/s the traced stack keeps against the untraced one (issue 27).

Starts PostgreSQL, Temporal, the services, the worker and the gateway as `bench/edge.py` does,
imports orders into Pizzeria Napoli's history, and drives the history page through the gateway
with `bench/edge.py`'s load generator (another process, raw keep-alive sockets). Phases, back to
back on the same stack and data, so that a shared machine's load hits them alike:

0. idle: what a scrape costs each process, in CPU (many scrapes back to back, the process's
   CPU from /proc), series and bytes;
1. untraced: requests/s at concurrency 64, and meanwhile every process's `/metrics` scraped
   every 0.25 s by this process (p50, p95 and max per process), at concurrency 16 and 64; and
   by a real Prometheus (the one `make dev` starts, every second), whose own record of each
   scrape's time (`scrape_duration_seconds`, what an operator reads) is printed beside;
2. traced, every trace exported (`GUICHET_TRACE_KEEP_RATIO=1`) to the trace UI of `make dev`
   (Arize Phoenix): requests/s, and the CPU the trace UI took;
3. traced as `make dev` traces (`--keep-ratio`, errors and slow requests always kept);
4. untraced again.

Done when: a scrape under 50 ms at 64 connections (p95, as Prometheus records it); the traced
stack (phase 3) keeps at least 80% of the untraced one's requests/s (the mean of phases 1 and
4).
Run: `python -m bench.observability` (needs `.tools/trace-ui`, installed by `make dev`, and
Debian's `prometheus`, installed by `make prometheus`; without it the Prometheus figures are
left out).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
from guichet.common.v1 import common_pb2
from guichet.identity.v1 import identity_pb2, identity_pb2_grpc
from guichet.partners.v1 import partners_pb2 as pb, partners_pb2_grpc
from temporalio.testing import WorkflowEnvironment

from bench.edge import PAGE, _import, _login, run_load
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
from services.devstack.stack import ADMIN_USERNAME, DEV_TRACE_KEEP_RATIO, Stack, _terminate
from services.kit.binaries import temporal_cli
from services.kit.ports import free_port
from services.kit.temporal import dev_server_args
from services.kit.testing import database_server

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS = os.environ.get("GUICHET_PROMETHEUS") or shutil.which("prometheus")
PROMETHEUS_INTERVAL = "1s"
TRACE_UI = ROOT / ".tools" / "trace-ui" / "bin" / "phoenix"
COMPONENTS = (IDENTITY, GROUPS, SUPPORT, MEMBERSHIP, PARTNERS, WORKER, GATEWAY)
SCRAPE_LIMIT, KEPT_RATIO = 0.050, 0.80


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pid(stack: Stack, name: str) -> int:
    return next(r.process.pid for r in stack.running if r.component.name == name)


def _stats(values: list[float]) -> dict[str, float]:
    """p50, p95 and max of durations in seconds, in ms."""
    return {
        "p50_ms": statistics.median(values) * 1000,
        # inclusive: a p95 within the samples (the default extrapolates past the max of 20)
        "p95_ms": statistics.quantiles(values, n=20, method="inclusive")[-1] * 1000
        if len(values) > 1
        else 0.0,
        "max_ms": max(values) * 1000,
        "scrapes": len(values),
    }


async def scrape_cost(stack: Stack, scrapes: int = 100) -> dict[str, dict[str, float]]:
    """What a scrape costs each process, idle: its CPU over `scrapes` scrapes back to back (as
    Prometheus asks: gzip, one kept-alive connection), less what it used idle for as long."""
    costs = {}
    async with httpx.AsyncClient(timeout=30, headers={"accept-encoding": "gzip"}) as client:
        for component in COMPONENTS:
            pid = _pid(stack, component.name)
            url = f"http://127.0.0.1:{stack.metrics_port(component)}/metrics"
            text = (await client.get(url, headers={"accept-encoding": "identity"})).text
            before = cpu_seconds(pid)
            await asyncio.sleep(2.0)
            idle = (cpu_seconds(pid) - before) / 2.0
            started, before = time.perf_counter(), cpu_seconds(pid)
            for _ in range(scrapes):
                (await client.get(url)).raise_for_status()
            elapsed = time.perf_counter() - started
            used = cpu_seconds(pid) - before - idle * elapsed
            costs[component.name] = {
                "cpu_ms_per_scrape": max(used, 0.0) / scrapes * 1000,
                "wall_ms_per_scrape": elapsed / scrapes * 1000,
                "series": sum(1 for line in text.splitlines() if line and line[0] != "#"),
                "bytes": len(text.encode()),
            }
    return costs


async def prometheus_scrapes(stack: Stack, since: float, until: float) -> dict[str, Any]:
    """Each process's scrapes between `since` and `until` (Unix times) as Prometheus recorded
    them (`scrape_duration_seconds`): p50, p95 and max, in ms."""
    window = f"{max(int(until - since), 1)}s"
    query = f'scrape_duration_seconds{{job=~"guichet-.*"}}[{window}]'
    async with httpx.AsyncClient(base_url=stack.prometheus_url or "", timeout=30) as client:
        response = await client.get("/api/v1/query", params={"query": query, "time": until})
        response.raise_for_status()
    results = {}
    for series in response.json()["data"]["result"]:
        values = [float(value) for _, value in series["values"]]
        results[series["metric"]["component"]] = _stats(values)
    return {name: results[name] for name in (c.name for c in COMPONENTS) if name in results}


async def scrape_while(stack: Stack, load: asyncio.Task[Any]) -> dict[str, dict[str, float]]:
    """Scrapes every process's /metrics every 0.25 s until `load` ends: p50, p95 and max, in
    ms. As Prometheus does: gzip, a connection kept from one scrape to the next."""
    ports = {c.name: stack.metrics_port(c) for c in COMPONENTS}
    times: dict[str, list[float]] = {name: [] for name in ports}
    async with httpx.AsyncClient(timeout=10, headers={"accept-encoding": "gzip"}) as client:
        await asyncio.sleep(1.0)  # the load's warm-up
        while not load.done():
            for name, port in ports.items():
                started = time.perf_counter()
                response = await client.get(f"http://127.0.0.1:{port}/metrics")
                response.raise_for_status()
                times[name].append(time.perf_counter() - started)
            await asyncio.sleep(0.25)
    return {name: _stats(values) for name, values in times.items() if values}


async def restart_all(stack: Stack) -> None:
    for component in COMPONENTS:
        await stack.restart(component.name, sig=signal.SIGTERM)


async def traced(stack: Stack, ratio: float | None) -> None:
    """Every component restarted exporting to the trace UI (`ratio`), or untraced (None)."""
    if ratio is None:
        stack.otlp_endpoint = None
        stack.extra_env.pop("GUICHET_TRACE_KEEP_RATIO", None)
        if stack.trace_ui_process is not None:
            await _terminate(stack.trace_ui_process, grace=15)
            stack.trace_ui_process = None
    else:
        if stack.trace_ui_process is None:
            await stack._start_trace_ui(str(TRACE_UI))
        stack.extra_env["GUICHET_TRACE_KEEP_RATIO"] = str(ratio)
    await restart_all(stack)


async def trace_ui_settled(stack: Stack, *, idle: float = 0.05, within: float = 180.0) -> float:
    """Waits until the trace UI uses under `idle` of a core over a second (it has ingested
    what it was sent), at most `within` seconds; returns its last second's CPU."""
    ui = stack.trace_ui_process
    assert ui is not None
    deadline = time.monotonic() + within
    while True:
        before = cpu_seconds(ui.pid)
        await asyncio.sleep(1.0)
        used = cpu_seconds(ui.pid) - before
        if used < idle or time.monotonic() > deadline:
            return used


async def phase(
    stack: Stack, target: dict[str, Any], concurrency: int, seconds: float, scrape: bool
) -> dict[str, Any]:
    spec = {
        "mode": "throughput",
        "targets": [target],
        "concurrency": concurrency,
        "seconds": seconds,
        "rounds": 1,
    }
    ui = stack.trace_ui_process
    ui_cpu = cpu_seconds(ui.pid) if ui is not None else None
    prometheus = stack.prometheus_process
    prometheus_cpu = cpu_seconds(prometheus.pid) if prometheus is not None else None
    started = time.time()
    load = asyncio.create_task(run_load(spec))
    scrapes = await scrape_while(stack, load) if scrape else None
    result = await load
    if scrape and prometheus is not None and prometheus_cpu is not None:
        # after the load's warm-up, as above; and what Prometheus itself took meanwhile
        result["prometheus"] = await prometheus_scrapes(stack, started + 1.0, time.time())
        used = cpu_seconds(prometheus.pid) - prometheus_cpu
        result["prometheus_cpu_per_second"] = used / (time.time() - started)
    if ui is not None and ui_cpu is not None:
        await asyncio.sleep(3)  # the last batches, exported after the load
        result["trace_ui_cpu_per_second"] = (cpu_seconds(ui.pid) - ui_cpu) / (seconds + 3)
    result["rps"] = result[target["name"]]["rps"]
    result["failed"] = result[target["name"]]["failed"]
    if scrapes is not None:
        result["scrapes"] = scrapes
    return result


async def main(options: argparse.Namespace) -> None:
    if not options.scrapes_only and not TRACE_UI.exists():
        sys.exit("the trace UI is missing: `make dev` (or `make .tools/trace-ui/.installed`)")
    with database_server() as pg, tempfile.TemporaryDirectory() as state:
        temporal = await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_cli(),
            dev_server_extra_args=["--log-level", "error", *dev_server_args()],
        )
        ports = {name: free_port() for name in DEFAULT_PORTS}
        ports |= {f"{c.name}_metrics": free_port() for c in COMPONENTS}
        stack = Stack(
            Path(state),
            ports,
            database_admin_url=pg.admin_url,
            temporal_address=temporal.client.service_client.config.target_host,
            echo=False,
            extra_env={
                "AUTH_RATE_LIMIT_PER_MINUTE": "100000000",
                "LOG_LEVEL": "WARNING",
                "ACCESS_TOKEN_TTL_SECONDS": "7200",
            },
        )
        try:
            await stack.start_infrastructure()
            for component in COMPONENTS:
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
            await _run(stack, options)
        finally:
            await stack.stop()
            await temporal.shutdown()


async def _run(stack: Stack, options: argparse.Namespace) -> None:
    async with grpc.aio.insecure_channel(stack.grpc_address("identity")) as channel:
        identity = identity_pb2_grpc.IdentityServiceStub(channel)
        admin = await stack.admin_token()  # the ops admin answers its TOTP
        admin_auth = (("authorization", f"Bearer {admin}"),)
        page = await identity.ListOrganisations(
            identity_pb2.ListOrganisationsRequest(page=common_pb2.PageRequest(page_size=500)),
            metadata=admin_auth,
        )
        store_id = {o.code: o.id for o in page.organisations}["DP-NAPOLI"]
        async with grpc.aio.insecure_channel(stack.grpc_address("partners")) as partners_channel:
            partners = partners_pb2_grpc.PartnersServiceStub(partners_channel)
            await partners.RegisterStore(
                pb.RegisterStoreRequest(store_id=store_id, operations_email="ops@napoli.example"),
                metadata=admin_auth,
            )
            await _import(partners, admin_auth, store_id, options.orders)
        manager = await _login(identity, "napoli.manager", DEMO_PASSWORD)
    target = {
        "name": "gateway: history page",
        "url": f"{stack.gateway_url}/v1/partners/{store_id}/orders/history?page_size={PAGE}",
        "headers": {"authorization": f"Bearer {manager}"},
    }
    seconds = options.seconds
    results: dict[str, Any] = {}
    results["scrape cost"] = await scrape_cost(stack)
    if PROMETHEUS is not None:  # make dev's Prometheus, scraping every process every second
        await stack.start_prometheus(PROMETHEUS, interval=PROMETHEUS_INTERVAL)
    # The same scrapes with no load: what the machine alone makes a scrape cost (shared cores).
    started = time.time()
    idle = asyncio.create_task(asyncio.sleep(seconds / 2))
    results["idle"] = {"scrapes": await scrape_while(stack, idle), "rps": 0.0, "failed": 0}
    if stack.prometheus_url is not None:
        results["idle"]["prometheus"] = await prometheus_scrapes(stack, started, time.time())
    results["untraced, c=16"] = await phase(stack, target, 16, seconds, scrape=True)
    results["untraced"] = await phase(stack, target, 64, seconds, scrape=True)
    if stack.prometheus_process is not None:  # the traced phases compare requests/s without it
        await _terminate(stack.prometheus_process, grace=15)
        stack.prometheus_process = None
    print(json.dumps({"untraced": results["untraced"]}), flush=True)
    if options.scrapes_only:
        print(json.dumps(results, indent=2))
        _print_scrapes(results)
        return
    # make dev's pipeline first, on a fresh trace UI: after the every-trace phase the trace UI
    # would still be ingesting that phase's backlog (a core for a minute or more) and charge it
    # to the next one. Each traced phase starts once the trace UI is idle.
    await traced(stack, options.keep_ratio)
    results["trace UI idle"] = {"cpu_per_second": await trace_ui_settled(stack)}
    results[f"traced, keep {options.keep_ratio:g} + errors + slow"] = await phase(
        stack, target, 64, seconds, scrape=False
    )
    await traced(stack, 1.0)
    await trace_ui_settled(stack)
    results["traced, every trace"] = await phase(stack, target, 64, seconds, scrape=False)
    await traced(stack, None)
    results["untraced again"] = await phase(stack, target, 64, seconds, scrape=False)
    _print(results, options)


def _print(results: dict[str, Any], options: argparse.Namespace) -> None:
    print(json.dumps(results, indent=2))
    _print_scrapes(results)
    _print_traces(results, options)


def _print_scrapes(results: dict[str, Any]) -> None:
    print("\nWhat a scrape costs each process, idle (CPU per scrape, series, bytes):")
    for name, cost in results["scrape cost"].items():
        print(
            f"  {name:<10} {cost['cpu_ms_per_scrape']:6.2f} ms CPU, {cost['series']:4d} series,"
            f" {cost['bytes']:7d} bytes ({cost['wall_ms_per_scrape']:.1f} ms a scrape)"
        )
    sources = [("scrapes", "this process, every 0.25 s")]
    if "prometheus" in results["untraced"]:
        sources.append(
            ("prometheus", f"Prometheus's scrape_duration_seconds, every {PROMETHEUS_INTERVAL}")
        )
    for key, source in sources:
        print(f"\nScrape time (ms, p50 / p95 / max), every process, as seen by {source}:")
        for load in ("idle", "untraced, c=16", "untraced"):
            line = ", ".join(
                f"{name} {s['p50_ms']:.1f}/{s['p95_ms']:.1f}/{s['max_ms']:.1f}"
                for name, s in results[load][key].items()
            )
            print(f"  {load:<16} {line}")
        if key == "prometheus":
            used = results["untraced"]["prometheus_cpu_per_second"]
            print(f"  Prometheus itself (scrapes and rules) at 64 connections: {used:.2f} CPU")
        scrapes = results["untraced"][key].values()
        typical = max(s["p50_ms"] for s in scrapes)
        tail = max(s["p95_ms"] for s in scrapes)
        print(
            f"  at 64 connections, slowest process: median {typical:.1f} ms, p95 {tail:.1f} ms "
            f"({'within' if tail <= SCRAPE_LIMIT * 1000 else 'ABOVE'} "
            f"{SCRAPE_LIMIT * 1000:.0f} ms); worst single scrape "
            f"{max(s['max_ms'] for s in scrapes):.1f} ms"
        )


def _print_traces(results: dict[str, Any], options: argparse.Namespace) -> None:
    untraced = (results["untraced"]["rps"] + results["untraced again"]["rps"]) / 2
    print(f"\n  trace UI at rest: {results['trace UI idle']['cpu_per_second']:.2f} CPU")
    print("\nRequests/s on the history page at 64 connections:")
    for name, result in results.items():
        if name in ("scrape cost", "idle", "untraced, c=16", "trace UI idle"):
            continue
        ui = result.get("trace_ui_cpu_per_second")
        extra = f", trace UI {ui:.2f} CPU" if ui is not None else ""
        print(
            f"  {name:<40} {result['rps']:7.1f} req/s ({result['rps'] / untraced:.0%} of "
            f"untraced){extra}, {result['failed']} failed"
        )
    sampled = results[f"traced, keep {options.keep_ratio:g} + errors + slow"]["rps"]
    print(
        f"  traced (make dev's pipeline) keeps {sampled / untraced:.0%} of the untraced "
        f"requests/s (done when >= {KEPT_RATIO:.0%})"
    )


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=5_000)
    parser.add_argument("--seconds", type=float, default=20.0, help="per phase")
    parser.add_argument("--keep-ratio", type=float, default=DEV_TRACE_KEEP_RATIO)
    parser.add_argument(
        "--scrapes-only", action="store_true", help="the scrape phases only (no trace UI needed)"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(_arguments(sys.argv[1:])))
    sys.stdout.flush()
    os._exit(0)
