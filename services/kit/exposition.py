"""Serving a process's Prometheus metrics cheaply: the text a scrape reads, written for a small
fraction of the CPU prometheus_client's own server spends, on a connection kept alive.

Why not prometheus_client's `start_http_server` (issue 27, docs/performance.md "Scrapes"): a
scrape is served by a thread beside the busy event loop, and each time it needs the GIL it waits
up to the switch interval (5 ms) for the loop to let go; with both cores busy it also waits for
a core. Its wall time therefore grows with the CPU it needs and the number of times it blocks.
The library spends that CPU writing every sample's labels anew (sorting, escaping, formatting a
dict built for the purpose), builds a `Sample` and a dict per line (in a process with 500 series,
a garbage collection of the young generation at every scrape, and now and then a full one),
gzips at level 9, and answers HTTP/1.0 from a thread started for each scrape.

Here, the same text (`prometheus_client.generate_latest`, byte for byte: tests/kit/
test_exposition.py) with the lines' fixed parts written once: for prometheus_client's Counter,
Gauge and Histogram, the name and labels of each child's lines are kept the first time it is
seen and only the values are read at each scrape (from the child's own value holders); the
Temporal SDK's forwarded metrics write themselves the same way (`TextCollector`); other
collectors' samples (the pools', the business gauges, the process's) go through `collect()` with
their label text cached. Served over HTTP/1.1 with keep-alive (Prometheus keeps its connection,
so a scrape is one read and one write on a thread that already exists), gzip at level 1 when
asked. Always the text format 0.0.4, which Prometheus accepts when it would rather have
OpenMetrics: what OpenMetrics adds (exemplars, `_created`) no rule or dashboard reads. The
library's `?name[]=` filter is not offered (nothing asks for it).

The fast path reads prometheus_client's internals (`_metrics`, `_value`, `_buckets`, `_sum`),
stable across its releases; the byte-for-byte test against the library's own output fails if a
release changes them. Anything it does not know (a Summary, a gauge with `set_function`,
multiprocess mode) takes the general path.
"""

from __future__ import annotations

import gzip
import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, values
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.openmetrics.exposition import (
    UNDERSCORES,
    escape_label_name,
    escape_metric_name,
)
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

log = logging.getLogger(__name__)

# A sample's value as prometheus_client writes it (Go's float format).
format_value: Callable[[float], str] = floatToGoString

# The general path's label text, by (sample name, labels as given): bounded, in case a collector
# makes new label values at every scrape.
_LABEL_CACHE_LIMIT = 20_000
# prometheus_client keeps one value holder per sample unless in multiprocess mode.
_FAST = values.ValueClass is values.MutexValue


def _prefix(name: str, pairs: Iterable[tuple[str, str]]) -> str:
    """`name{a="x",b="y"} ` as prometheus_client's text format writes it (label names sorted,
    values escaped; names quoted when outside the legacy character set)."""
    labels = ",".join(
        f'{escape_label_name(k, UNDERSCORES)}="{_escape(v)}"'
        for k, v in sorted(pairs, key=lambda pair: pair[0])
    )
    name = escape_metric_name(name, UNDERSCORES)
    return f"{name}{{{labels}}} " if labels else f"{name} "


def _escape(value: str) -> str:
    """A label value's backslashes, line feeds and double quotes, escaped."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _header(name: str, documentation: str, kind: str) -> str:
    help_text = documentation.replace("\\", r"\\").replace("\n", r"\n")
    name = escape_metric_name(name, UNDERSCORES)
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"


class TextCollector(Collector):
    """A collector that also writes its own exposition text, the same `generate_latest` would
    write from its `collect()` (which stays, for every other reader of the registry): for a
    collector with many series whose values it keeps itself (the Temporal SDK's)."""

    def render(self, out: list[str]) -> None:
        raise NotImplementedError


def sample_prefix(name: str, pairs: Iterable[tuple[str, str]]) -> str:
    """The fixed part of a sample's line: `name{labels} `."""
    return _prefix(name, pairs)


def family_header(name: str, documentation: str, kind: str) -> str:
    """The `# HELP` and `# TYPE` lines of a family, as `generate_latest` writes them."""
    return _header(name, documentation, kind)


class Exposition:
    """The Prometheus text format (0.0.4) of a registry, as `generate_latest` writes it."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self._registry = registry
        self._lock = threading.Lock()
        # metric → {label values → line prefixes of that child, in sample order}
        self._children: weakref.WeakKeyDictionary[
            MetricWrapperBase, dict[tuple[str, ...], tuple[str, ...]]
        ] = weakref.WeakKeyDictionary()
        self._headers: weakref.WeakKeyDictionary[MetricWrapperBase, str] = (
            weakref.WeakKeyDictionary()
        )
        self._label_text: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}

    def render(self) -> bytes:
        with self._lock:  # the caches are shared by concurrent scrapes
            out: list[str] = []
            for collector in self._collectors():
                if _FAST and self._fast(collector):
                    self._render_wrapper(collector, out)
                elif isinstance(collector, TextCollector):
                    collector.render(out)
                else:
                    for family in collector.collect():
                        self._render_family(family, out)
            return "".join(out).encode()

    def _collectors(self) -> Sequence[Collector]:
        registry: Any = self._registry
        # What `CollectorRegistry.collect` iterates, in its order (target info first).
        with registry._lock:
            collectors = list(registry._collector_to_names)
            target = registry._target_info_metric() if registry._target_info else None
        if target is not None:
            return [_Fixed([target]), *collectors]
        return collectors

    @staticmethod
    def _fast(collector: Collector) -> bool:
        kind = type(collector)
        if kind is Histogram:
            return bool(collector._upper_bounds[0] >= 0)  # type: ignore[attr-defined]
        return kind is Counter or kind is Gauge

    # --- prometheus_client's own metrics: values read from the children ---------------------

    def _render_wrapper(self, metric: Any, out: list[str]) -> None:
        header = self._headers.get(metric)
        if header is None:
            kind = metric._type or "untyped"
            name = metric._name + "_total" if kind == "counter" else metric._name
            header = self._headers[metric] = _header(name, metric._documentation, kind)
        out.append(header)
        prefixes = self._children.get(metric)
        if prefixes is None:
            prefixes = self._children[metric] = {}
        if metric._is_parent():
            with metric._lock:
                children = metric._metrics.copy()  # one object, not one per child
        else:
            children = {(): metric}
        for labelvalues, child in children.items():
            lines = prefixes.get(labelvalues)
            if lines is None:
                lines = prefixes[labelvalues] = self._prefixes(metric, labelvalues, child)
            if len(lines) == 1 and "_child_samples" in vars(child):
                lines = ()  # a gauge given a function (`set_function`), maybe since last time
            if lines == ():
                pairs = list(zip(metric._labelnames, labelvalues, strict=True))
                for sample in child._child_samples():  # its name is the suffix
                    full = sample._replace(name=metric._name + sample.name)
                    out.append(self._sample_line(full, pairs))
                continue
            self._write_values(child, lines, out)

    @staticmethod
    def _prefixes(
        metric: MetricWrapperBase, labelvalues: tuple[str, ...], child: Any
    ) -> tuple[str, ...]:
        """`name{labels} ` of each line of the child, in the order `_child_samples` gives."""
        pairs = list(zip(metric._labelnames, labelvalues, strict=True))
        name = metric._name
        if type(metric) is Counter:
            return (_prefix(f"{name}_total", pairs),)
        if type(metric) is Gauge:
            return (_prefix(name, pairs),)
        buckets = tuple(
            _prefix(f"{name}_bucket", [*pairs, ("le", format_value(bound))])
            for bound in child._upper_bounds
        )
        return (*buckets, _prefix(f"{name}_count", pairs), _prefix(f"{name}_sum", pairs))

    @staticmethod
    def _write_values(child: Any, lines: tuple[str, ...], out: list[str]) -> None:
        if len(lines) == 1:  # a counter or a gauge
            out.append(f"{lines[0]}{format_value(child._value.get())}\n")
            return
        total = 0.0
        buckets = child._buckets
        for index in range(len(buckets)):
            total += buckets[index].get()
            out.append(f"{lines[index]}{format_value(total)}\n")
        out.append(f"{lines[-2]}{format_value(total)}\n")
        out.append(f"{lines[-1]}{format_value(child._sum.get())}\n")

    # --- any other collector: its families, label text cached --------------------------------

    def _render_family(self, family: Any, out: list[str]) -> None:
        name, kind = family.name, family.type
        if kind == "counter":
            name = name + "_total"
        elif kind == "info":
            name, kind = name + "_info", "gauge"
        elif kind == "stateset":
            kind = "gauge"
        elif kind == "gaugehistogram":
            kind = "histogram"
        elif kind == "unknown":
            kind = "untyped"
        out.append(_header(name, family.documentation, kind))
        extra: dict[str, list[str]] = {}
        for sample in family.samples:
            for suffix in ("_created", "_gsum", "_gcount"):
                if sample.name == family.name + suffix:
                    extra.setdefault(suffix, []).append(self._sample_line(sample))
                    break
            else:
                out.append(self._sample_line(sample))
        for suffix, lines in sorted(extra.items()):
            out.append(_header(family.name + suffix, family.documentation, "gauge"))
            out.extend(lines)

    def _sample_line(self, sample: Sample, pairs: Sequence[tuple[str, str]] = ()) -> str:
        items = (*pairs, *sample.labels.items()) if pairs else tuple(sample.labels.items())
        key = (sample.name, items)
        prefix = self._label_text.get(key)
        if prefix is None:
            if len(self._label_text) >= _LABEL_CACHE_LIMIT:
                self._label_text.clear()
            prefix = self._label_text[key] = _prefix(sample.name, items)
        if sample.timestamp is not None:
            stamp = f" {int(float(sample.timestamp) * 1000):d}"
            return f"{prefix}{format_value(sample.value)}{stamp}\n"
        return f"{prefix}{format_value(sample.value)}\n"


class _Fixed(Collector):
    def __init__(self, families: list[Any]) -> None:
        self._families = families

    def collect(self) -> Iterable[Any]:
        return self._families


class _Handler(BaseHTTPRequestHandler):
    """GET (any path, as prometheus_client serves): the exposition; the connection stays open
    for the next scrape (HTTP/1.1). An idle connection is closed after `timeout` seconds.

    Headers and body leave together (a buffered writer, flushed after each request) and without
    Nagle's delay: on a kept-alive connection, an answer sent in two writes waited for the
    client's delayed acknowledgement, 40 ms on Linux, at every scrape."""

    protocol_version = "HTTP/1.1"
    timeout = 300
    disable_nagle_algorithm = True
    wbufsize = 1 << 16
    exposition: Exposition

    def do_GET(self) -> None:  # http.server's name
        try:
            body = self.exposition.render()
        except Exception:  # a collector failed: say so, as prometheus_client's server would
            log.exception("metrics not rendered")
            self.send_error(500)
            return
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_PLAIN_0_0_4)
        if "gzip" in self.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body, compresslevel=1)  # a tenth of level 9's time
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged (one line every few seconds from each Prometheus)."""


class MetricsServer(ThreadingHTTPServer):
    """One thread per connection (not per scrape), daemon: it never holds up the exit."""

    daemon_threads = True
    # The default (5) refuses connections beyond it while the thread is busy.
    request_queue_size = 64


def start_metrics_server(
    port: int,
    host: str = "0.0.0.0",  # noqa: S104 - scraped in-cluster
    registry: CollectorRegistry = REGISTRY,
) -> MetricsServer:
    """Serves `registry` on `port` (0: a free one) from a daemon thread; returns the server
    (`server_port`, `shutdown()`)."""
    handler = type("MetricsHandler", (_Handler,), {"exposition": Exposition(registry)})
    server = MetricsServer((host, port), handler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
