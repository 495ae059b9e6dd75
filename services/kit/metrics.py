"""Prometheus metrics: one registry per process, served on its own port (`METRICS_PORT`).

Metric objects are built on first use, not at import. What every process gets for free: gRPC
calls handled (by method and status code), their latency and how many are in flight, from the
server interceptor and from every client channel (`services.kit.grpcclient`: per back end, at the
gateway and in the worker); the SQLAlchemy connection pool of its engine (connections by state,
time spent waiting for one, checkouts that timed out); the outbox backlog of a service that has
one. Services add gauges of their own business state (process requests, SLA states) with a
`DatabaseCollector`, refreshed in the background (see services/groups/gauges.py), and the
workflow objectives (docs/slo.md) are measured where the service records the step
(`workflow_metrics`).

Buckets: the latency objectives of docs/slo.md sit on bucket bounds (0.25 s, 0.5 s, 1 s, 2 s),
and there are bounds between 1 s and 2.5 s, so a p99 read from the buckets is close to the truth.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import gc
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry.instrumentation.utils import suppress_instrumentation
from prometheus_client import (
    REGISTRY,
    Counter,
    Gauge as LiveGauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import Table, extract, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.pool import AsyncAdaptedQueuePool, QueuePool
from sqlalchemy.pool.base import ConnectionPoolEntry

from services.kit.exposition import start_metrics_server

if TYPE_CHECKING:
    from services.kit.runtime import ServiceContext, ServiceSpec, Wiring

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    1.5,
    2.0,
    3.0,
    5.0,
    10.0,
)
# How late a workflow step ran after the instant it was due, or how long a process took.
STEP_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 21600.0, 86400.0)
POOL_WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def split_method(full_method: str) -> tuple[str, str]:
    """`/<package>.<Service>/<Method>` → (`<package>.<Service>`, `<Method>`)."""
    if full_method.count("/") >= 2:
        _, service, method = full_method.split("/", 2)
        return service, method
    return "unknown", full_method


class GrpcMetrics:
    """Calls by method and status code, their latency, and the calls in flight: one set for the
    server side (`guichet_grpc_server_*`), one for the client side (`guichet_grpc_client_*`,
    whose `grpc_service` names the back end called)."""

    def __init__(self, side: str) -> None:
        what = "answered" if side == "server" else "made to another service"
        self.handled = Counter(
            f"guichet_grpc_{side}_handled",
            f"gRPC calls {what}, by method and status code.",
            ["grpc_service", "grpc_method", "grpc_code"],
        )
        self.latency = Histogram(
            f"guichet_grpc_{side}_handling_seconds",
            f"Time from the start to the end of a gRPC call {what}.",
            ["grpc_service", "grpc_method"],
            buckets=LATENCY_BUCKETS,
        )
        self.in_flight = LiveGauge(
            f"guichet_grpc_{side}_in_flight",
            f"gRPC calls {what} and not finished yet.",
            ["grpc_service"],
        )

    def observe(self, full_method: str, code: str, seconds: float) -> None:
        service, method = split_method(full_method)
        self.handled.labels(service, method, code).inc()
        self.latency.labels(service, method).observe(seconds)


@functools.cache
def grpc_server_metrics() -> GrpcMetrics:
    return GrpcMetrics("server")


@functools.cache
def grpc_client_metrics() -> GrpcMetrics:
    return GrpcMetrics("client")


class HttpMetrics:
    """Requests by portal (the SLOs of docs/slo.md are per portal), route template, method and
    status; their latency; the requests in flight."""

    def __init__(self) -> None:
        self.handled = Counter(
            "guichet_http_requests",
            "HTTP requests answered, by portal, route template, method and status.",
            ["portal", "route", "method", "status"],
        )
        self.latency = Histogram(
            "guichet_http_request_seconds",
            "Time to answer an HTTP request.",
            ["portal", "route", "method"],
            buckets=LATENCY_BUCKETS,
        )
        self.in_flight = LiveGauge(
            "guichet_http_requests_in_flight", "HTTP requests received and not answered yet."
        )

    def observe(self, route: str, method: str, status: int, seconds: float, portal: str) -> None:
        self.handled.labels(portal, route, method, str(status)).inc()
        self.latency.labels(portal, route, method).observe(seconds)


@functools.cache
def http_metrics() -> HttpMetrics:
    return HttpMetrics()


class _PoolCollector(Collector):
    """Reads the pool at scrape time: connections in use, idle, and overflow."""

    def __init__(self, service: str, engine: AsyncEngine) -> None:
        self._service = service
        self._engine = engine

    def collect(self) -> Iterable[GaugeMetricFamily]:
        pool = self._engine.sync_engine.pool
        family = GaugeMetricFamily(
            "guichet_db_pool_connections",
            "Database pool connections by state.",
            labels=["service", "state"],
        )
        if isinstance(pool, QueuePool):
            family.add_metric([self._service, "in_use"], pool.checkedout())
            family.add_metric([self._service, "idle"], pool.checkedin())
            family.add_metric([self._service, "overflow"], max(pool.overflow(), 0))
            family.add_metric([self._service, "size"], pool.size())
        yield family


@functools.cache
def _pool_metrics() -> tuple[Histogram, Counter]:
    wait = Histogram(
        "guichet_db_pool_wait_seconds",
        "Time a request waited for a database connection from the pool.",
        ["service"],
        buckets=POOL_WAIT_BUCKETS,
    )
    timeouts = Counter(
        "guichet_db_pool_timeouts",
        "Connection checkouts that gave up after the pool's timeout (pool exhausted).",
        ["service"],
    )
    return wait, timeouts


def timed_pool_class(service: str) -> type[AsyncAdaptedQueuePool]:
    """The async engine's queue pool, timing each checkout (`guichet_db_pool_wait_seconds`) and
    counting those that time out. SQLAlchemy has no event before a checkout waits, so the wait is
    timed around the pool's own `_do_get`; a class per service, so that `recreate()` (which
    builds `self.__class__`) keeps the label."""

    class TimedPool(AsyncAdaptedQueuePool):
        def _do_get(self) -> ConnectionPoolEntry:
            wait, timeouts = _pool_metrics()
            started = time.perf_counter()
            try:
                return super()._do_get()
            except Exception as error:
                if type(error).__name__ == "TimeoutError":  # sqlalchemy.exc.TimeoutError
                    timeouts.labels(service).inc()
                raise
            finally:
                wait.labels(service).observe(time.perf_counter() - started)

    return TimedPool


def watch_pool(service: str, engine: AsyncEngine) -> Callable[[], None]:
    """Registers the pool gauges; returns the function that unregisters them."""
    collector = _PoolCollector(service, engine)
    REGISTRY.register(collector)
    return lambda: REGISTRY.unregister(collector)


def serve_metrics(port: int, host: str = "0.0.0.0") -> int:  # noqa: S104 - scraped in-cluster
    """Serves /metrics for this process on `port` (0: a free one); returns the port. Without the
    `_created` series: they double the size of every scrape and no rule or dashboard reads them.
    Served by `services.kit.exposition` (the same text as prometheus_client's server, for a
    fraction of its CPU: a scrape must cost little beside a busy event loop)."""
    disable_created_metrics()  # type: ignore[no-untyped-call]
    # Declared now, so that every family is in the first scrape (with no sample until its first
    # event): rules and dashboards read names that exist, and a rate is 0, not absent.
    grpc_client_metrics()
    workflow_metrics()
    _pool_metrics()
    watch_gc_pauses()
    server = start_metrics_server(port, host)
    return int(server.server_port)


# --- Gauges of business state, read from the service's database at scrape time ---------------


@dataclass(frozen=True)
class Gauge:
    """One gauge a `DatabaseCollector` reports: its name, help text and label names."""

    name: str
    documentation: str
    labels: tuple[str, ...] = ()


# Gauge name → (label values, value) pairs; a gauge left out has no samples this scrape.
Samples = Mapping[str, Iterable[tuple[Sequence[str], float]]]
Reader = Callable[[AsyncSession], Awaitable[Samples]]

COLLECTOR_UP = Gauge(
    "guichet_db_gauges_up",
    "1 when the last scrape read the service's business gauges, 0 when the query failed.",
    ("service",),
)
COLLECTOR_SECONDS = Gauge(
    "guichet_db_gauges_query_seconds",
    "Time the query behind the service's business gauges took.",
    ("service",),
)


class DatabaseCollector(Collector):
    """Gauges computed by one cheap query on the service's own database.

    Why from the rows rather than updated on change: the rows are the truth (a change made by
    another replica, by a migration or by hand is counted too), and the domain stays free of
    metrics code. Why refreshed in the background (`start`, every `max_age` seconds on the
    service's loop) rather than at scrape time: a scrape must cost nothing the service's load can
    stretch. Read at scrape time, the query waited its turn on a loop busy with requests, and a
    scrape of the gateway-side load took 0.46 s at 16 connections and 1.09 s at 64 (issue 27);
    served from the last refresh it is a dictionary read. `guichet_db_gauges_up` turns 0 when the
    last refresh failed or is older than three periods (the loop or the database is away).

    Without `start` (tests that want each scrape fresh, `max_age=0`), `collect` runs the query
    itself on the service's loop and waits for it up to `timeout`. The statements are never
    traced: a refresh is nobody's request and would otherwise be a root trace every few seconds.
    """

    def __init__(
        self,
        service: str,
        sessions: async_sessionmaker[AsyncSession],
        gauges: Sequence[Gauge],
        read: Reader,
        *,
        loop: asyncio.AbstractEventLoop,
        timeout: float = 2.0,
        max_age: float = 5.0,
        health: bool = True,
    ) -> None:
        """`health`: also report `guichet_db_gauges_up` and `…_query_seconds` (one collector per
        service does; the outbox's, beside it, does not)."""
        self._service = service
        self._health = health
        self._sessions = sessions
        self._gauges = tuple(gauges)
        self._read = read
        self._loop = loop
        self._timeout = timeout
        self._max_age = max_age
        self._lock = threading.Lock()
        # (monotonic time of the read, samples or None when it failed, seconds it took)
        self._cached: tuple[float, Samples | None, float] | None = None
        self._task: asyncio.Task[None] | None = None

    def describe(self) -> Iterable[GaugeMetricFamily]:
        """Names only: registering must not run the query (the loop may be the caller)."""
        health = (COLLECTOR_UP, COLLECTOR_SECONDS) if self._health else ()
        for gauge in (*self._gauges, *health):
            yield GaugeMetricFamily(gauge.name, gauge.documentation, labels=gauge.labels)

    def collect(self) -> Iterable[GaugeMetricFamily]:
        samples, seconds = self._samples()
        for gauge in self._gauges:
            family = GaugeMetricFamily(gauge.name, gauge.documentation, labels=gauge.labels)
            for labels, value in (samples or {}).get(gauge.name, ()):
                family.add_metric(list(labels), value)
            yield family
        if not self._health:
            return
        up = GaugeMetricFamily(COLLECTOR_UP.name, COLLECTOR_UP.documentation, labels=["service"])
        up.add_metric([self._service], 0.0 if samples is None else 1.0)
        yield up
        took = GaugeMetricFamily(
            COLLECTOR_SECONDS.name, COLLECTOR_SECONDS.documentation, labels=["service"]
        )
        took.add_metric([self._service], seconds)
        yield took

    # --- background refresh ----------------------------------------------------------------

    async def start(self) -> None:
        """Reads once now (the first scrape finds values), then every `max_age` seconds."""
        await self.refresh()
        self._task = asyncio.create_task(self._refresh_forever(), name=f"{self._service}-gauges")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._max_age)
            await self.refresh()

    async def refresh(self) -> None:
        started = time.perf_counter()
        samples: Samples | None
        try:
            samples = await asyncio.wait_for(self._query(), self._timeout)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the database is away: report it, not fail
            log.warning("%s gauges not read: %r", self._service, error)
            samples = None
        with self._lock:
            self._cached = (time.monotonic(), samples, time.perf_counter() - started)

    # --- reading -----------------------------------------------------------------------------

    def _samples(self) -> tuple[Samples | None, float]:
        if self._task is not None:
            with self._lock:
                cached = self._cached
            if cached is None or time.monotonic() - cached[0] > 3 * self._max_age + self._timeout:
                return None, 0.0 if cached is None else cached[2]
            return cached[1], cached[2]
        return self._samples_now()

    def _samples_now(self) -> tuple[Samples | None, float]:
        """Without a background refresh: the query, run on the service's loop, waited for here."""
        with self._lock:
            now = time.monotonic()
            if (
                self._cached is not None
                and self._cached[1] is not None
                and now - self._cached[0] < self._max_age
            ):
                return self._cached[1], self._cached[2]
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is self._loop:  # waiting here would block the very loop it needs
                log.warning("%s gauges collected on the service loop: skipped", self._service)
                return None, 0.0
            started = time.perf_counter()
            future: concurrent.futures.Future[Samples] | None = None
            try:
                future = asyncio.run_coroutine_threadsafe(self._query(), self._loop)
                samples = future.result(timeout=self._timeout)
            except Exception as error:  # the database or the loop is away: report it, not fail
                if future is not None:
                    future.cancel()
                log.warning("%s gauges not read: %r", self._service, error)
                return None, time.perf_counter() - started
            seconds = time.perf_counter() - started
            self._cached = (now, samples, seconds)
            return samples, seconds

    async def _query(self) -> Samples:
        with suppress_instrumentation():
            async with self._sessions() as session, session.begin():
                return await self._read(session)


def with_collector(spec: ServiceSpec, make: Callable[[ServiceContext], Collector]) -> ServiceSpec:
    """The same service, plus a collector registered for as long as it runs, when it serves
    metrics (`METRICS_PORT`); `make` is called on the service's loop, with its context. A
    `DatabaseCollector` is refreshed in the background while registered."""

    async def build(context: ServiceContext) -> Wiring:
        wiring = await spec.build(context)
        if context.settings.metrics_port is not None:
            collector = make(context)
            if isinstance(collector, DatabaseCollector):
                await collector.start()
                context.exit_stack.push_async_callback(collector.stop)
            REGISTRY.register(collector)
            context.exit_stack.callback(REGISTRY.unregister, collector)
        return wiring

    return dataclasses.replace(spec, build=build)


def with_database_gauges(
    spec: ServiceSpec, service: str, gauges: Sequence[Gauge], read: Reader
) -> ServiceSpec:
    """The same service, plus `gauges` that `read` computes from its own database."""
    return with_collector(
        spec,
        lambda context: DatabaseCollector(
            service, context.sessions, gauges, read, loop=asyncio.get_running_loop()
        ),
    )


OUTBOX_GAUGES = (
    Gauge(
        "guichet_outbox_pending",
        "Workflow starts recorded in the service's outbox and not started yet.",
        ("service",),
    ),
    Gauge(
        "guichet_outbox_oldest_pending_seconds",
        "Age of the oldest workflow start still waiting in the outbox (0 when none).",
        ("service",),
    ),
)


async def outbox_samples(session: AsyncSession, table: Table, service: str) -> Samples:
    """The outbox backlog: rows not started yet (the index on started_at finds them)."""
    row = (
        await session.execute(
            select(
                func.count(),
                func.coalesce(extract("epoch", func.now() - func.min(table.c.created_at)), 0),
            ).where(table.c.started_at.is_(None))
        )
    ).one()
    return {
        OUTBOX_GAUGES[0].name: [((service,), float(row[0]))],
        OUTBOX_GAUGES[1].name: [((service,), max(float(row[1]), 0.0))],
    }


def outbox_gauges(
    sessions: async_sessionmaker[AsyncSession],
    table: Table,
    service: str,
    *,
    max_age: float = 5.0,
) -> DatabaseCollector:
    """The outbox backlog of a service (every service with an outbox gets it: kit.runtime)."""

    async def read(session: AsyncSession) -> Samples:
        return await outbox_samples(session, table, service)

    return DatabaseCollector(
        service,
        sessions,
        OUTBOX_GAUGES,
        read,
        loop=asyncio.get_running_loop(),
        max_age=max_age,
        health=False,
    )


# --- Workflow objectives (docs/slo.md), measured where the service records the step -----------


class WorkflowMetrics:
    """How late each workflow step ran after the instant it was due (an SLA warning recorded
    after its due time, a renewal letter after its day began, an escalation after its deadline),
    and how long whole processes took (a delegation, by size)."""

    def __init__(self) -> None:
        self.lateness = Histogram(
            "guichet_workflow_step_lateness_seconds",
            "Time between the instant a workflow step was due and the moment the service "
            "recorded it.",
            ["workflow", "step"],
            buckets=STEP_BUCKETS,
        )
        self.duration = Histogram(
            "guichet_workflow_duration_seconds",
            "Time from the request to the end of a long process, by size class.",
            ["workflow", "size", "outcome"],
            buckets=STEP_BUCKETS,
        )

    def step_done(self, workflow: str, step: str, seconds_late: float) -> None:
        self.lateness.labels(workflow, step).observe(max(seconds_late, 0.0))

    def finished(self, workflow: str, size: str, outcome: str, seconds: float) -> None:
        self.duration.labels(workflow, size, outcome).observe(max(seconds, 0.0))


@functools.cache
def workflow_metrics() -> WorkflowMetrics:
    return WorkflowMetrics()


GC_PAUSE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)


@functools.cache
def watch_gc_pauses() -> Histogram:
    """How long each garbage collection stopped the process, by generation. prometheus_client
    counts collections, not their length; a full collection walks every object the process holds
    (the worker's ten thousand cached SLA runs), and everything in the process (its event loop,
    a workflow task, a scrape) waits for it. Measured by a `gc.callbacks` hook: two clock reads
    per collection."""
    pause = Histogram(
        "guichet_python_gc_pause_seconds",
        "Time each garbage collection stopped the process, by generation.",
        ["generation"],
        buckets=GC_PAUSE_BUCKETS,
    )
    by_generation = [pause.labels(str(generation)) for generation in range(3)]
    started = [0.0]

    def hook(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            by_generation[info["generation"]].observe(time.perf_counter() - started[0])

    gc.callbacks.append(hook)
    return pause


@functools.cache
def login_throttled() -> Counter:
    """Logins refused by identity's brute-force throttle, by the brake that refused (`account`:
    the username, from unknown devices; `device`: a known device's own failures; `address`: an
    address's failures across usernames; `factor`: wrong second factors). Read by the alert
    LoginLockoutsSpiking (docs/runbook.md)."""
    return Counter(
        "guichet_identity_login_throttled",
        "Logins refused by the brute-force throttle, by scope.",
        ["scope"],
    )


def size_class(count: int) -> str:
    """The size label of `guichet_workflow_duration_seconds`: a power of ten, so that the
    objectives (docs/slo.md) can say "10,000 accounts within 10 minutes"."""
    for bound in (100, 1_000, 10_000, 100_000):
        if count <= bound:
            return f"le_{bound}"
    return "gt_100000"


def register(collector: Collector, registry: CollectorRegistry = REGISTRY) -> Callable[[], None]:
    """Registers a collector; returns the function that unregisters it."""
    registry.register(collector)
    return lambda: registry.unregister(collector)
