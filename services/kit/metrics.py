"""Prometheus metrics: one registry per process, served on its own port (services, worker) or
at the gateway's `/metrics`.

Metric objects are built on first use, not at import. What every service gets for free: gRPC
calls handled (by method and status code) and their latency, from the server interceptor, and
the SQLAlchemy connection pool of its engine. Services add their own gauges (process requests,
SLA timers) with `gauge()`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable

from prometheus_client import REGISTRY, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

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
