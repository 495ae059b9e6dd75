"""The metrics server's text is prometheus_client's, byte for byte, at a fraction of the cost:
whatever the registry holds (every metric kind, labels to escape, children added and removed,
values that change between scrapes, the Temporal SDK's forwarded metrics); a scrape builds no
objects for the garbage collector; Prometheus's connection is kept between scrapes."""

from __future__ import annotations

import gc
import gzip
import http.client
import time
from collections.abc import Iterable, Iterator
from datetime import timedelta

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    Summary,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from services.kit.exposition import Exposition, start_metrics_server
from services.kit.metrics import LATENCY_BUCKETS, STEP_BUCKETS
from services.kit.temporal import TemporalSdkMetrics


@pytest.fixture(autouse=True)
def _no_created() -> None:
    disable_created_metrics()  # type: ignore[no-untyped-call]  # as serve_metrics does


class _Pools(Collector):
    """A collector of the kind the services register (pools, business gauges)."""

    def __init__(self) -> None:
        self.idle = 3.0

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily("pool_connections", "Pool.\nState.", labels=["state"])
        family.add_metric(["idle"], self.idle)
        family.add_metric(['in "use"'], 1)
        yield family


def _every_kind(registry: CollectorRegistry) -> Iterator[None]:
    """Fills `registry`, then changes it between each yield."""
    handled = Counter("calls_handled", "Calls, by method.", ["method", "code"], registry=registry)
    plain = Counter("restarts", "Restarts \\ ever.", registry=registry)
    latency = Histogram(
        "call_seconds", "Latency.", ["method"], buckets=LATENCY_BUCKETS, registry=registry
    )
    lateness = Histogram("step_late_seconds", "Late.", buckets=STEP_BUCKETS, registry=registry)
    in_flight = Gauge("in_flight", "In flight.", ["service"], registry=registry)
    computed = Gauge("computed", "From a function.", registry=registry)
    computed.set_function(lambda: 42.5)
    Gauge("never_set", "Labelled, no child yet.", ["service"], registry=registry)
    summary = Summary("sizes", "A summary.", ["kind"], registry=registry)
    Info("build", "Build.", registry=registry).info({"version": "1.2"})
    Enum("state", "State.", states=["up", "down"], registry=registry)
    pools = _Pools()
    registry.register(pools)
    handled.labels("Login", "OK").inc()
    handled.labels('Weird"\\\nName', "NOT_FOUND").inc(3)
    latency.labels("Login").observe(0.3)
    latency.labels("Login").observe(12)
    lateness.observe(90_000)
    in_flight.labels("identity").set(2)
    summary.labels("a").observe(7)
    yield
    for _ in range(1000):
        latency.labels("Search").observe(0.004)
    handled.remove('Weird"\\\nName', "NOT_FOUND")
    handled.labels("Search", "OK").inc(1e7)
    plain.inc(0.1)
    in_flight.labels("identity").dec(2)
    pools.idle = float("nan")
    yield
    registry.set_target_info({"service": "identity"})
    latency.clear()
    in_flight.labels("identity").set_function(lambda: 7.0)  # after it was written once
    yield


def test_the_text_is_prometheus_clients_byte_for_byte_as_the_registry_changes() -> None:
    registry = CollectorRegistry()
    exposition = Exposition(registry)
    for _ in _every_kind(registry):
        assert exposition.render().decode() == generate_latest(registry).decode()
        assert exposition.render() == generate_latest(registry)  # from the caches this time


def test_the_temporal_sdk_metrics_are_written_as_their_families_would_be() -> None:
    sdk = TemporalSdkMetrics()
    meter = sdk.runtime().metric_meter
    counter = meter.create_counter("workflow_completed", "Workflows completed.")
    gauge = meter.create_gauge("num_pollers", "Pollers.")
    histogram = meter.create_histogram_timedelta(
        "activity_schedule_to_start_latency", "Schedule to start.", unit="duration"
    )
    counter.add(2, {"workflow_type": "Delegation", "task_queue": "guichet"})
    counter.add(1, {"workflow_type": "Ticket", "task_queue": "guichet"})
    gauge.set(3, {"poller_type": "workflow_task"})
    histogram.record(timedelta(milliseconds=30), {"activity_type": "Send"})
    histogram.record(timedelta(seconds=2000), {"activity_type": "Send"})
    registry = CollectorRegistry()
    registry.register(sdk)
    exposition = Exposition(registry)
    first = exposition.render()
    assert first == generate_latest(registry)
    assert b"temporal_workflow_completed_total{" in first
    assert b"temporal_activity_schedule_to_start_latency_seconds_bucket{" in first
    counter.add(5, {"workflow_type": "Delegation", "task_queue": "guichet"})
    histogram.record(timedelta(seconds=1), {"activity_type": "Other"})
    again = exposition.render()
    assert again == generate_latest(registry) and again != first


def test_each_sdk_series_keeps_its_own_label_names() -> None:
    """The SDK's request counter has no namespace on `GetSystemInfo` and one on a task's calls:
    each series is written with its own labels, never another's names over its values."""
    sdk = TemporalSdkMetrics()
    meter = sdk.runtime().metric_meter
    requests = meter.create_counter("request", "Requests to the server.")
    requests.add(1, {"operation": "GetSystemInfo"})
    requests.add(3, {"namespace": "default", "operation": "RespondWorkflowTaskCompleted"})
    registry = CollectorRegistry()
    registry.register(sdk)
    text = Exposition(registry).render()
    assert text == generate_latest(registry)
    sdk_label = b'service_name="temporal-core-sdk"'
    assert b'temporal_request_total{operation="GetSystemInfo",' + sdk_label + b"} 1.0" in text
    assert (
        b'temporal_request_total{namespace="default",operation="RespondWorkflowTaskCompleted",'
        + sdk_label
        + b"} 3.0"
    ) in text
    assert b'operation="default"' not in text


def test_a_scrape_leaves_nothing_for_the_garbage_collector() -> None:
    """prometheus_client's text of 500 series builds a Sample and a dict per line: a young
    collection at every scrape, and now and then a full one that stops the process for tens
    of milliseconds. The exposition builds only strings (which the collector does not track)."""
    registry = CollectorRegistry()
    latency = Histogram("calls", "L.", ["method"], buckets=LATENCY_BUCKETS, registry=registry)
    for index in range(28):
        latency.labels(f"Method{index}").observe(0.1)
    exposition = Exposition(registry)
    exposition.render()  # the line prefixes are written once, here
    gc.collect()  # counting from zero: what came before does not tip the first threshold
    collections = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.callbacks.append(count)
    try:
        for _ in range(20):
            exposition.render()
        ours = len(collections)
        for _ in range(20):
            generate_latest(registry)
        theirs = len(collections) - ours
    finally:
        gc.callbacks.remove(count)
    assert theirs >= 10  # the measure sees what the library's text costs
    assert ours == 0


class _Broken(Collector):
    def collect(self) -> Iterable[Metric]:
        raise RuntimeError("the collector failed")


def test_a_collector_that_fails_makes_a_500_not_a_dead_server() -> None:
    registry = CollectorRegistry()
    broken = _Broken()
    registry.register(broken)
    server = start_metrics_server(0, "127.0.0.1", registry)
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
        connection.request("GET", "/metrics")
        failed = connection.getresponse()
        failed.read()
        assert failed.status == 500
        registry.unregister(broken)
        connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
        connection.request("GET", "/metrics")
        assert connection.getresponse().status == 200
        connection.close()
    finally:
        server.shutdown()
        server.server_close()


def test_the_server_keeps_the_connection_and_gzips_when_asked() -> None:
    registry = CollectorRegistry()
    Counter("calls", "Calls.", registry=registry).inc()
    server = start_metrics_server(0, "127.0.0.1", registry)
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
        connection.request("GET", "/metrics")
        plain = connection.getresponse()
        body = plain.read()
        assert plain.status == 200
        assert plain.getheader("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
        assert body == generate_latest(registry)
        socket = connection.sock
        connection.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
        zipped = connection.getresponse()
        assert zipped.getheader("Content-Encoding") == "gzip"
        assert gzip.decompress(zipped.read()) == body
        assert connection.sock is socket  # one connection for both scrapes (HTTP/1.1)
        # Without delay: an answer in two writes waited 40 ms for the client's delayed
        # acknowledgement at every kept-alive scrape (the fastest of five shows it).
        durations = []
        for _ in range(5):
            started = time.perf_counter()
            connection.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
            connection.getresponse().read()
            durations.append(time.perf_counter() - started)
        assert min(durations) < 0.030
        [family] = text_string_to_metric_families(body.decode())
        assert family.name == "calls" and family.samples[0].value == 1.0
        connection.close()
    finally:
        server.shutdown()
        server.server_close()
