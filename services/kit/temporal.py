"""The Temporal client every process uses: traced, on the configured namespace."""

from __future__ import annotations

import asyncio
import bisect
import logging
import threading
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.namespace.v1 import NamespaceConfig
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, UpdateNamespaceRequest
from temporalio.client import Client
from temporalio.common import (
    SearchAttributeIndexedValueType,
    SearchAttributeKey,
    SearchAttributePair,
)
from temporalio.runtime import (
    BUFFERED_METRIC_KIND_COUNTER,
    BUFFERED_METRIC_KIND_GAUGE,
    BUFFERED_METRIC_KIND_HISTOGRAM,
    MetricBuffer,
    MetricBufferDurationFormat,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
)
from temporalio.service import RPCError, RPCStatusCode

from services.kit.exposition import TextCollector, family_header, format_value, sample_prefix
from services.kit.settings import CommonSettings
from services.kit.telemetry import temporal_interceptors

log = logging.getLogger(__name__)

# Business keys an operator searches workflows by in the Temporal UI (docs/runbook.md, "Finding a
# run"): the registry of every `Guichet*` search attribute, Keyword (exact match) but one Int.
# A namespace on SQL visibility (the dev server's SQLite, PostgreSQL, MySQL) holds at most 10
# custom Keyword attributes, and these take all 10: a new key is another type (Int, Datetime,
# KeywordList, 3 of each) or replaces one (tests/kit/test_temporal.py counts them). Registered
# by the worker at start (`ensure_search_attributes`), by `make dev` and by the test servers
# (`dev_server_search_attribute_args`). Outbox starts set them from the row, and workflows upsert
# the ones they learn. A new key is added here, and nowhere else, before a workflow sets it.
PROCESS_REQUEST_ID = SearchAttributeKey.for_keyword("GuichetProcessRequestId")
# The client group's name, as the provider's staff call it (Delegation).
GROUP = SearchAttributeKey.for_keyword("GuichetGroup")
TICKET = SearchAttributeKey.for_keyword("GuichetTicket")
# The number people quote ("ticket #1042"), beside the ticket's id (TicketSla, ticket mails): an
# Int, `GuichetTicketNumber = 1042` (and a Keyword fewer: see the limit below).
TICKET_NUMBER = SearchAttributeKey.for_int("GuichetTicketNumber")
ORDER = SearchAttributeKey.for_keyword("GuichetOrder")
# The order's code as printed for the partner and the customer ("NAP-1001"), beside its id.
ORDER_CODE = SearchAttributeKey.for_keyword("GuichetOrderCode")
MEMBERSHIP = SearchAttributeKey.for_keyword("GuichetMembership")
# The workshop's code in the banner program, beside the membership's id (Renewal).
WORKSHOP_CODE = SearchAttributeKey.for_keyword("GuichetWorkshopCode")
# The organisation a run belongs to: the provider, the customer company, the store, the workshop.
TENANT = SearchAttributeKey.for_keyword("GuichetTenant")
# What a DeliverMail sends (`password_reset`, `ticket_reply`, `sla_breach`, `renewal_letter`…).
MAIL_KIND = SearchAttributeKey.for_keyword("GuichetMailKind")
# The sign-in name a mail is about (identity's mails), as the person gives it to support.
USERNAME = SearchAttributeKey.for_keyword("GuichetUsername")
SEARCH_ATTRIBUTES = (
    PROCESS_REQUEST_ID,
    GROUP,
    TICKET,
    TICKET_NUMBER,
    ORDER,
    ORDER_CODE,
    MEMBERSHIP,
    WORKSHOP_CODE,
    TENANT,
    MAIL_KIND,
    USERNAME,
)
# Closed runs stay visible (and can be reset) this long: `make dev` sets it on its namespace; a
# cluster's namespace is set by its operators (docs/runbook.md, "Retention").
DEV_RETENTION_DAYS = 30


async def ensure_search_attributes(client: Client) -> list[str]:
    """Registers the search attributes above that the namespace lacks; returns their names.

    The dev server registers them from its flags only when it creates its database (a `.state`
    kept from before one was added has none), and a cluster has them only once someone adds
    them: without them every start that sets one, and every upsert, is refused. Where the
    operator API is closed to us (Temporal Cloud), they must be added by hand: a warning says so.
    """
    namespace = client.namespace
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
        missing = {
            key.name: IndexedValueType.ValueType(int(key.indexed_value_type))
            for key in SEARCH_ATTRIBUTES
            if key.name not in listed.custom_attributes
        }
        if missing:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
            )
    except RPCError as error:
        if error.status not in (RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNIMPLEMENTED):
            raise
        log.warning(
            "cannot register search attributes; add them to the namespace by hand",
            extra={"names": [key.name for key in SEARCH_ATTRIBUTES], "error": error.message},
        )
        return []
    return sorted(missing)


_CLI_TYPES = {
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.INT: "Int",
    SearchAttributeIndexedValueType.DATETIME: "Datetime",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
    SearchAttributeIndexedValueType.TEXT: "Text",
    SearchAttributeIndexedValueType.DOUBLE: "Double",
    SearchAttributeIndexedValueType.BOOL: "Bool",
}


def dev_server_search_attribute_args() -> list[str]:
    """`temporal server start-dev` flags that register every search attribute above."""
    args: list[str] = []
    for key in SEARCH_ATTRIBUTES:
        args += ["--search-attribute", f"{key.name}={_CLI_TYPES[key.indexed_value_type]}"]
    return args


# The dev server's dynamic config where its defaults cost Guichet's load dearly (bench/sla.py,
# docs/performance.md "SLA timers"); a cluster sets the same in its own dynamic config
# (docs/runbook.md, "Temporal's dynamic config").
DEV_SERVER_DYNAMIC_CONFIG = {
    # The dev server re-reads the search attributes from its database at every use, so that one
    # added while it runs is usable at once: two reads per workflow start, behind its one SQLite
    # connection (14 of the 42 persistence calls per ticket). Ours are registered at launch.
    "system.forceSearchAttributesCacheRefreshOnRead": "false",
    # Runs kept in the history service's cache: every live SLA run of a 10,000-ticket day, so
    # that a timer or signal need not reload a run's state from the database first. The dev
    # server's cache is the host-level one, of 8,096 runs (its `cache_size{cache_type=
    # "mutablestate"}` metric says so; `history.cacheMaxSize`, the per-shard cache's size, leaves
    # it at 8,096): with 10,000 live runs, bench/sla.py counted about four `GetWorkflowExecution`
    # per ticket, 45 ms each behind the one SQLite connection. Both are set, so that a server
    # whose host-level cache is off gets the same.
    "history.hostLevelCacheMaxSize": "50000",
    "history.cacheMaxSize": "50000",
    # The shard's cache of history events (512 KiB by default): a run's first task and every
    # task of a run the worker no longer holds read them.
    "history.eventsCacheMaxSizeBytes": str(64 * 1024 * 1024),
    # How often the timer and transfer queues re-read the database for tasks they were not told
    # of (5 minutes and 1 minute by default). bench/sla.py's warnings had a tail of 270 to 340 s
    # late, as long as that re-read (this morning's max 304 s; 47 of 10,000 in one run), beside
    # thousands of updates the server logged as failed ("context canceled"); with one second the
    # tail went (max 12.7 s).
    "history.timerProcessorMaxPollInterval": '"1s"',
    "history.transferProcessorMaxPollInterval": '"1s"',
    # How many of the history service's queue tasks run at once (512 each by default). Every
    # task reads and writes through the dev server's one SQLite connection, and the server gives
    # up on a task after fixed times (1 s to load a run, 3 s to hand a workflow task to
    # matching). On a busy machine 512 tasks queued on one connection waited past those limits;
    # each failure dropped the run from the cache, so the retry reloaded it: bench/sla.py
    # --loaded counted 22 loads of each run (`GetWorkflowExecution`) and 10,000 failed
    # hand-overs, and started 3,000 workflows in 517 s. With a few tasks at a time each waits
    # little, none fails: 1.3 loads per run, all started in 283 s (docs/performance.md).
    "history.transferProcessorSchedulerWorkerCount": "8",
    "history.timerProcessorSchedulerWorkerCount": "8",
    "history.visibilityProcessorSchedulerWorkerCount": "4",
}


def dev_server_args() -> list[str]:
    """Every `temporal server start-dev` flag Guichet needs: its search attributes and the
    dynamic config above."""
    args = dev_server_search_attribute_args()
    for name, value in DEV_SERVER_DYNAMIC_CONFIG.items():
        args += ["--dynamic-config-value", f"{name}={value}"]
    return args


def typed_pair(name: str, value: Any) -> SearchAttributePair[Any]:
    """A search attribute of the registry by name, its value converted to its type (an outbox
    row keeps them as JSON); a name outside the registry is a Keyword."""
    key = next((k for k in SEARCH_ATTRIBUTES if k.name == name), None)
    if key is not None and key.indexed_value_type == SearchAttributeIndexedValueType.INT:
        return SearchAttributePair(key, int(value))
    return SearchAttributePair(SearchAttributeKey.for_keyword(name), str(value))


# Histogram bounds of the SDK's latencies (seconds): schedule-to-start and task latencies go from
# milliseconds (a warm worker) to minutes (no worker polls).
SDK_LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
)  # fmt: skip


class TemporalSdkMetrics(TextCollector):
    """The Temporal SDK's own metrics (pollers, task slots, schedule-to-start and execution
    latencies, failures, sticky cache), forwarded into this process's Prometheus registry.

    The SDK could serve them itself (`PrometheusConfig`), but on a port of its own: the worker's
    port would then show either the SDK's metrics or ours (its gRPC calls to the services), never
    both. So the runtime records into a `MetricBuffer`, drained here every second (and at each
    scrape) into counters, gauges and histograms of the same names: counters end in `_total`,
    durations are in seconds (`_seconds`), as Prometheus names them. Metrics a workflow or an
    activity records through `workflow.metric_meter()` / `activity.metric_meter()` come too.

    A scrape reads them through `render` (services/kit/exposition.py): each series' line
    prefixes are written once, only its values at each scrape (the worker's scrape had 500
    series of the SDK's, a third of its CPU in building and formatting them); `collect` gives
    the same families to any other reader of the registry.
    """

    def __init__(self, buffer_size: int = 200_000) -> None:
        self.buffer = MetricBuffer(buffer_size, MetricBufferDurationFormat.SECONDS)
        self._lock = threading.Lock()
        # name → (kind, help); (name, labels) → value, or (bucket counts, sum, count)
        self._families: dict[str, tuple[int, str]] = {}
        self._values: dict[tuple[str, tuple[tuple[str, str], ...]], Any] = {}
        # (name, labels) → the fixed part of each of its lines (render)
        self._prefixes: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[str, ...]] = {}
        self._task: asyncio.Task[None] | None = None

    def runtime(self) -> Runtime:
        return Runtime(telemetry=TelemetryConfig(metrics=self.buffer))

    def drain(self) -> None:
        try:
            updates = self.buffer.retrieve_updates()
        except RuntimeError:  # no runtime uses the buffer yet
            return
        with self._lock:
            for update in updates:
                metric = update.metric
                name = self._name(metric.name, int(metric.kind), metric.unit)
                self._families.setdefault(name, (int(metric.kind), metric.description or ""))
                labels = tuple(sorted((str(k), str(v)) for k, v in update.attributes.items()))
                key = (name, labels)
                kind = int(metric.kind)
                if kind == int(BUFFERED_METRIC_KIND_COUNTER):
                    self._values[key] = self._values.get(key, 0.0) + float(update.value)
                elif kind == int(BUFFERED_METRIC_KIND_GAUGE):
                    self._values[key] = float(update.value)
                else:
                    counts, total, count = self._values.get(
                        key, ([0] * len(SDK_LATENCY_BUCKETS), 0.0, 0)
                    )
                    value = float(update.value)
                    index = bisect.bisect_left(SDK_LATENCY_BUCKETS, value)
                    if index < len(counts):
                        counts[index] += 1
                    self._values[key] = (counts, total + value, count + 1)

    @staticmethod
    def _name(name: str, kind: int, unit: str | None) -> str:
        base = name if name.startswith("temporal_") else f"temporal_{name}"
        if kind == int(BUFFERED_METRIC_KIND_HISTOGRAM) and unit in ("duration", "s", "ms"):
            return base if base.endswith("_seconds") else f"{base}_seconds"
        return base

    async def run(self, every: float = 1.0) -> None:
        """Drains the buffer every `every` seconds, so that it never fills between scrapes."""
        while True:
            self.drain()
            await asyncio.sleep(every)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="temporal-sdk-metrics")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def describe(self) -> Iterable[Metric]:
        return ()  # names appear as the SDK records them

    def render(self, out: list[str]) -> None:
        """What `generate_latest` writes of `collect()`, from the values kept here."""
        self.drain()
        with self._lock:
            by_name: dict[str, list[tuple[str, tuple[tuple[str, str], ...]]]] = {}
            for key in self._values:
                by_name.setdefault(key[0], []).append(key)
            for name, keys in by_name.items():
                kind, documentation = self._families[name]
                if kind == int(BUFFERED_METRIC_KIND_COUNTER):
                    base = name.removesuffix("_total")  # as CounterMetricFamily names it
                    out.append(family_header(f"{base}_total", documentation, "counter"))
                elif kind == int(BUFFERED_METRIC_KIND_GAUGE):
                    out.append(family_header(name, documentation, "gauge"))
                else:
                    out.append(family_header(name, documentation, "histogram"))
                for key in keys:
                    self._render_series(key, kind, out)

    def _render_series(
        self, key: tuple[str, tuple[tuple[str, str], ...]], kind: int, out: list[str]
    ) -> None:
        name, labels = key
        value = self._values[key]
        if kind != int(BUFFERED_METRIC_KIND_HISTOGRAM):
            prefix = self._prefixes.get(key)
            if prefix is None:
                if kind == int(BUFFERED_METRIC_KIND_COUNTER):
                    line = sample_prefix(f"{name.removesuffix('_total')}_total", labels)
                else:
                    line = sample_prefix(name, labels)
                prefix = self._prefixes[key] = (line,)
            out.append(f"{prefix[0]}{format_value(value)}\n")
            return
        prefixes = self._prefixes.get(key)
        if prefixes is None:
            bounds = [*(repr(bound) for bound in SDK_LATENCY_BUCKETS), "+Inf"]
            prefixes = self._prefixes[key] = (
                *(sample_prefix(f"{name}_bucket", [*labels, ("le", le)]) for le in bounds),
                sample_prefix(f"{name}_count", labels),
                sample_prefix(f"{name}_sum", labels),
            )
        counts, total, count = value
        cumulative = 0
        for index, hits in enumerate(counts):
            cumulative += hits
            out.append(f"{prefixes[index]}{format_value(cumulative)}\n")
        out.append(f"{prefixes[-3]}{format_value(count)}\n")
        out.append(f"{prefixes[-2]}{format_value(count)}\n")
        out.append(f"{prefixes[-1]}{format_value(total)}\n")

    def collect(self) -> Iterable[Metric]:
        self.drain()
        with self._lock:
            families: dict[str, Metric] = {}
            for (name, labels), value in self._values.items():
                kind, documentation = self._families[name]
                series = self._family(kind, name, documentation, labels, value)
                family = families.get(name)
                if family is None:
                    families[name] = series
                else:
                    # One family per name; each series keeps its own label names (the SDK's
                    # `GetSystemInfo` has no namespace, a task's `RespondWorkflowTaskCompleted`
                    # has one): a family's fixed names would shift the others' values.
                    family.samples.extend(series.samples)
            return list(families.values())

    @staticmethod
    def _family(
        kind: int, name: str, documentation: str, labels: tuple[tuple[str, str], ...], value: Any
    ) -> Metric:
        """A family holding the one series `labels` of metric `name`."""
        names = [k for k, _ in labels]
        values = [v for _, v in labels]
        if kind == int(BUFFERED_METRIC_KIND_COUNTER):
            counter = CounterMetricFamily(name, documentation, labels=names)
            counter.add_metric(values, value)
            return counter
        if kind == int(BUFFERED_METRIC_KIND_GAUGE):
            gauge = GaugeMetricFamily(name, documentation, labels=names)
            gauge.add_metric(values, value)
            return gauge
        histogram = HistogramMetricFamily(name, documentation, labels=names)
        counts, total, count = value
        cumulative, buckets = 0, []
        for bound, hits in zip(SDK_LATENCY_BUCKETS, counts, strict=True):
            cumulative += hits
            buckets.append((repr(bound), cumulative))
        buckets.append(("+Inf", count))
        histogram.add_metric(values, buckets, total)
        return histogram


async def ensure_retention(client: Client, days: int = DEV_RETENTION_DAYS) -> bool:
    """Sets the namespace's retention of closed runs to `days` when it is shorter (the dev
    server creates `default` with one day); True when it changed it."""
    namespace = client.namespace
    described = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=namespace)
    )
    wanted = timedelta(days=days)
    current = described.config.workflow_execution_retention_ttl.ToTimedelta()
    if current >= wanted:
        return False
    config = NamespaceConfig()
    config.workflow_execution_retention_ttl.FromTimedelta(wanted)
    await client.workflow_service.update_namespace(
        UpdateNamespaceRequest(namespace=namespace, config=config)
    )
    return True


def prometheus_runtime(port: int, host: str = "0.0.0.0") -> Runtime:  # noqa: S104
    """A Temporal runtime that serves the SDK's own metrics on a port of its own (tests and tools
    that need nothing else; the worker forwards them instead: `TemporalSdkMetrics`)."""
    return Runtime(
        telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"{host}:{port}"))
    )


async def connect_temporal(settings: CommonSettings, *, runtime: Runtime | None = None) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        interceptors=temporal_interceptors(),
        runtime=runtime,
    )
