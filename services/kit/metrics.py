"""Prometheus metrics: one registry per process, served on its own port (services, worker) or
at the gateway's `/metrics`.

Metric objects are built on first use, not at import. What every service gets for free: gRPC
calls handled (by method and status code) and their latency, from the server interceptor, and
the SQLAlchemy connection pool of its engine. Services add gauges of their own business state
(process requests, SLA states) with a `DatabaseCollector`: read from the service's database at
scrape time, registered by `with_collector` (see services/groups/gauges.py).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry.instrumentation.utils import suppress_instrumentation
from prometheus_client import REGISTRY, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import Table, extract, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.pool import QueuePool

if TYPE_CHECKING:
    from services.kit.runtime import ServiceContext, ServiceSpec, Wiring

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class GrpcServerMetrics:
    def __init__(self) -> None:
        self.handled = Counter(
            "guichet_grpc_server_handled",
            "gRPC calls handled, by method and status code.",
            ["grpc_service", "grpc_method", "grpc_code"],
        )
        self.latency = Histogram(
            "guichet_grpc_server_handling_seconds",
            "Time to answer a gRPC call.",
            ["grpc_service", "grpc_method"],
            buckets=LATENCY_BUCKETS,
        )

    def observe(self, full_method: str, code: str, seconds: float) -> None:
        _, service, method = (
            full_method.split("/", 2)
            if full_method.count("/") >= 2
            else (
                "",
                "unknown",
                full_method,
            )
        )
        self.handled.labels(service, method, code).inc()
        self.latency.labels(service, method).observe(seconds)


@functools.cache
def grpc_server_metrics() -> GrpcServerMetrics:
    return GrpcServerMetrics()


class HttpMetrics:
    def __init__(self) -> None:
        self.handled = Counter(
            "guichet_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
        )
        self.latency = Histogram(
            "guichet_http_request_seconds",
            "Time to answer an HTTP request.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
        )

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.handled.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)


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


def watch_pool(service: str, engine: AsyncEngine) -> Callable[[], None]:
    """Registers the pool gauges; returns the function that unregisters them."""
    collector = _PoolCollector(service, engine)
    REGISTRY.register(collector)
    return lambda: REGISTRY.unregister(collector)


def serve_metrics(port: int, host: str = "0.0.0.0") -> int:  # noqa: S104 - scraped in-cluster
    """Serves /metrics for this process on `port` (0: a free one); returns the port."""
    server, _ = start_http_server(port, addr=host)
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
    """Gauges computed at scrape time by one cheap query on the service's own database.

    Why at scrape time rather than updated on change: the rows are the truth (a change made by
    another replica, by a migration or by hand is counted too), and the domain stays free of
    metrics code. Prometheus calls `collect` on its HTTP thread; the query runs on the
    service's event loop (the engine and its pool belong to that loop) and the thread waits
    for it up to `timeout`. A result younger than `max_age` is served again, so several
    scrapers cost one query. The statements are not traced: a scrape is nobody's request and
    would otherwise be a root trace every few seconds.
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
    ) -> None:
        self._service = service
        self._sessions = sessions
        self._gauges = tuple(gauges)
        self._read = read
        self._loop = loop
        self._timeout = timeout
        self._max_age = max_age
        self._lock = threading.Lock()
        self._cached: tuple[float, Samples, float] | None = None

    def describe(self) -> Iterable[GaugeMetricFamily]:
        """Names only: registering must not run the query (the loop may be the caller)."""
        for gauge in (*self._gauges, COLLECTOR_UP, COLLECTOR_SECONDS):
            yield GaugeMetricFamily(gauge.name, gauge.documentation, labels=gauge.labels)

    def collect(self) -> Iterable[GaugeMetricFamily]:
        samples, seconds = self._samples()
        for gauge in self._gauges:
            family = GaugeMetricFamily(gauge.name, gauge.documentation, labels=gauge.labels)
            for labels, value in (samples or {}).get(gauge.name, ()):
                family.add_metric(list(labels), value)
            yield family
        up = GaugeMetricFamily(COLLECTOR_UP.name, COLLECTOR_UP.documentation, labels=["service"])
        up.add_metric([self._service], 0.0 if samples is None else 1.0)
        yield up
        took = GaugeMetricFamily(
            COLLECTOR_SECONDS.name, COLLECTOR_SECONDS.documentation, labels=["service"]
        )
        took.add_metric([self._service], seconds)
        yield took

    def _samples(self) -> tuple[Samples | None, float]:
        with self._lock:
            now = time.monotonic()
            if self._cached is not None and now - self._cached[0] < self._max_age:
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
    metrics (`METRICS_PORT`); `make` is called on the service's loop, with its context."""

    async def build(context: ServiceContext) -> Wiring:
        wiring = await spec.build(context)
        if context.settings.metrics_port is not None:
            collector = make(context)
            REGISTRY.register(collector)
            context.exit_stack.callback(REGISTRY.unregister, collector)
        return wiring

    return dataclasses.replace(spec, build=build)


def with_database_gauges(
    spec: ServiceSpec, service: str, gauges: Sequence[Gauge], read: Reader
) -> ServiceSpec:
    """The same service, plus `gauges` that `read` computes from its own database at scrape."""
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


def register(collector: Collector, registry: CollectorRegistry = REGISTRY) -> Callable[[], None]:
    """Registers a collector; returns the function that unregisters it."""
    registry.register(collector)
    return lambda: registry.unregister(collector)
