"""OpenTelemetry set-up in one function, for every kind of process.

`setup_telemetry` installs the tracer provider (OTLP export when an endpoint is configured, and
any extra exporter, e.g. an in-memory one in tests) and instruments gRPC client and server. The
pieces that need an object (a SQLAlchemy engine, a FastAPI app, a Temporal client) have their own
small helpers here so that instrumentation lives in this file only.

Cost, measured by bench/edge.py (docs/performance.md): spans go out through a batch processor
(never one export per span on the request's path); a process that exports nowhere records no
span at all (`_WhenExported`: ids are still made and propagated, so problems and logs keep their
`trace_id`); the gateway's ASGI instrumentation makes one server span per request, not three
(no `http send`/`http receive` children).

Which traces leave the process (`KeepErrorsAndSlow`, issue 27): every span is recorded, and the
spans of a request are held until its local root ends; then they are exported if the request
failed (a span with an error status), was slow (`GUICHET_TRACE_SLOW_SECONDS`, default 1 s: the
portals' read latency objective, docs/slo.md),
or falls in the kept share of trace ids (`GUICHET_TRACE_KEEP_RATIO`, default 1: all). The share
is decided on the trace id alone, as OpenTelemetry's `TraceIdRatioBased` decides it, so every
process keeps the same ordinary traces whole; an error or a slow request is kept where it
happened, up to a budget (`GUICHET_TRACE_EXTRA_PER_SECOND`, default 5 traces a second and a
burst of 20, per process: a collector's rate-limiting policy). Without it a saturated machine,
where every request is slow, or an outage, where every request fails, would export every trace
and feed the trace pipeline the CPU the requests need (docs/performance.md, "Traces"); with it
the first errors and slow requests of each second are kept, and the metrics count them all.
Export is batched (`BatchSpanProcessor`: 2 s, up to 1,024 spans a batch). Head
sampling by OpenTelemetry's own variables (`OTEL_TRACES_SAMPLER`) still applies before it.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider, sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.semconv.attributes.http_attributes import HTTP_ROUTE
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.util.types import Attributes
from sqlalchemy.ext.asyncio import AsyncEngine

_provider: TracerProvider | None = None
_exporting = False


class _WhenExported(sampling.Sampler):
    """The configured sampler while spans go somewhere; DROP (a non-recording span that still
    has its trace and span ids) while nothing would receive them."""

    def __init__(self, delegate: sampling.Sampler) -> None:
        self._delegate = delegate

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> sampling.SamplingResult:
        if not _exporting:
            parent = trace.get_current_span(parent_context).get_span_context()
            return sampling.SamplingResult(sampling.Decision.DROP, None, parent.trace_state)
        return self._delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"WhenExported{{{self._delegate.get_description()}}}"


TRACE_ID_LIMIT = (1 << 64) - 1


class KeepErrorsAndSlow(SpanProcessor):
    """Tail sampling within a process: holds each trace's spans until its local root ends (the
    request's server span, an activity's run), then passes them all to `then` if one of them is
    an error, the root was slower than `slow_seconds`, or the trace id falls within `ratio`;
    otherwise drops them. Traces whose root does not end here within `max_age` seconds (spans
    ending after their request) are decided as they are evicted, on the same rules. Traces kept
    only for an error or slowness spend a token of a bucket refilled at `extra_per_second` (up
    to `extra_burst`); an empty bucket drops them."""

    def __init__(
        self,
        then: SpanProcessor,
        *,
        ratio: float = 1.0,
        slow_seconds: float = 1.0,
        max_traces: int = 4096,
        max_age: float = 30.0,
        extra_per_second: float = 5.0,
        extra_burst: float = 20.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._then = then
        self._extra_rate = max(extra_per_second, 0.0)
        self._extra_burst = max(extra_burst, 1.0)
        self._extra_tokens = self._extra_burst
        self._extra_at = clock()
        self._clock = clock
        self._bound = round(min(max(ratio, 0.0), 1.0) * TRACE_ID_LIMIT)
        self._slow_ns = int(slow_seconds * 1e9)
        self._max_traces = max_traces
        self._max_age = max_age
        self._lock = threading.Lock()
        # trace id → (monotonic time of its first span, its spans, whether one is an error)
        self._held: OrderedDict[int, tuple[float, list[ReadableSpan], bool]] = OrderedDict()

    def kept_by_ratio(self, trace_id: int) -> bool:
        return (trace_id & TRACE_ID_LIMIT) < self._bound

    def _keep(self, trace_id: int, failed: bool, slow: bool) -> bool:
        """Whether a decided trace leaves: by its share, else for its error or slowness while
        the budget lasts. Called under the lock."""
        if self.kept_by_ratio(trace_id):
            return True
        if not (failed or slow):
            return False
        now = self._clock()
        self._extra_tokens = min(
            self._extra_burst, self._extra_tokens + (now - self._extra_at) * self._extra_rate
        )
        self._extra_at = now
        if self._extra_tokens < 1.0:
            return False
        self._extra_tokens -= 1.0
        return True

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self._then.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        context = span.get_span_context()
        if context is None:
            return
        trace_id = context.trace_id
        error = span.status.status_code == StatusCode.ERROR
        root = span.parent is None or span.parent.is_remote
        decided: list[tuple[list[ReadableSpan], bool]] = []
        now = self._clock()
        with self._lock:
            first, spans, failed = self._held.pop(trace_id, (now, [], False))
            spans.append(span)
            failed = failed or error
            if root:
                slow = (span.end_time or 0) - (span.start_time or 0) >= self._slow_ns
                decided.append((spans, self._keep(trace_id, failed, slow)))
            else:
                self._held[trace_id] = (first, spans, failed)
            while self._held and (
                len(self._held) > self._max_traces
                or now - next(iter(self._held.values()))[0] > self._max_age
            ):
                old_id, (_, old_spans, old_failed) = self._held.popitem(last=False)
                decided.append((old_spans, self._keep(old_id, old_failed, False)))
        for held_spans, kept in decided:
            if kept:
                for held in held_spans:
                    self._then.on_end(held)

    def _flush_held(self) -> None:
        with self._lock:
            held, self._held = self._held, OrderedDict()
        for trace_id, (_, spans, failed) in held.items():
            if failed or self.kept_by_ratio(trace_id):
                for span in spans:
                    self._then.on_end(span)

    def shutdown(self) -> None:
        self._flush_held()
        self._then.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self._flush_held()
        return self._then.force_flush(timeout_millis)


def _float_env(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    try:
        return float(value) if value else default
    except ValueError:
        raise ValueError(f"{name} must be a number, not {value!r}") from None


def setup_telemetry(
    service_name: str,
    *,
    otlp_endpoint: str | None = None,
    extra_exporter: SpanExporter | None = None,
) -> TracerProvider:
    """Idempotent: the first call in a process wins (OpenTelemetry allows one global provider)."""
    global _provider, _exporting
    _exporting = _exporting or bool(otlp_endpoint) or extra_exporter is not None
    if _provider is not None:
        if extra_exporter is not None:
            _provider.add_span_processor(SimpleSpanProcessor(extra_exporter))
        return _provider
    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}),
        sampler=_WhenExported(sampling._get_from_env_or_default()),
    )
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        batches = BatchSpanProcessor(
            OTLPSpanExporter(endpoint=otlp_endpoint, insecure=True),
            max_queue_size=8192,
            schedule_delay_millis=2000,
            max_export_batch_size=1024,
        )
        provider.add_span_processor(
            KeepErrorsAndSlow(
                batches,
                ratio=_float_env("GUICHET_TRACE_KEEP_RATIO", 1.0),
                slow_seconds=_float_env("GUICHET_TRACE_SLOW_SECONDS", 1.0),
                extra_per_second=_float_env("GUICHET_TRACE_EXTRA_PER_SECOND", 5.0),
            )
        )
    if extra_exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(extra_exporter))
    trace.set_tracer_provider(provider)
    from opentelemetry.instrumentation.grpc import (
        GrpcAioInstrumentorClient,
        GrpcAioInstrumentorServer,
    )

    GrpcAioInstrumentorServer().instrument()  # type: ignore[no-untyped-call]
    GrpcAioInstrumentorClient().instrument()  # type: ignore[no-untyped-call]
    _provider = provider
    return provider


def instrument_engine(engine: AsyncEngine) -> None:
    """One span per SQL statement (skip_dep_check: its pin predates SQLAlchemy 2.1)."""
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, skip_dep_check=True)


def instrument_app(app: Any, *, excluded_urls: str = "healthz,readyz") -> None:
    """One server span per request, named `<METHOD> <route template>` as OpenTelemetry's FastAPI
    instrumentation names it, without its cost: that instrumentation finds the route before
    routing by trying every route of the app in turn (~120 here, milliseconds a request); this
    one starts the span with the method and names it from the route the router picked."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from opentelemetry.util.http import parse_excluded_urls

    tracer = trace.get_tracer("opentelemetry.instrumentation.fastapi")
    excluded = parse_excluded_urls(excluded_urls)
    build_stack = app.build_middleware_stack

    def build_middleware_stack() -> Any:
        return OpenTelemetryMiddleware(
            _NameSpanByRoute(build_stack()),
            excluded_urls=excluded,
            default_span_details=_span_details_before_routing,
            tracer=tracer,
            exclude_spans=["receive", "send"],
        )

    app.build_middleware_stack = build_middleware_stack


def _span_details_before_routing(scope: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    method = str(scope.get("method", "")).strip().upper() or "HTTP"
    return method, {}


class _NameSpanByRoute:
    """Names the request's server span after its route once routing has run (Starlette leaves
    the matched route in the scope), and records an exception that escapes the app on it.

    The name is set when the response starts: OpenTelemetry's ASGI middleware may end the span
    as soon as the last body chunk is sent, before the app's call returns."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        span = trace.get_current_span()
        named = False

        def name_span() -> None:
            nonlocal named
            template = getattr(scope.get("route"), "path", None)
            if not named and template and span.is_recording():
                span.update_name(f"{_span_details_before_routing(scope)[0]} {template}")
                span.set_attribute(HTTP_ROUTE, template)
                named = True

        async def naming_send(message: Any) -> None:
            if message.get("type") == "http.response.start":
                name_span()
            await send(message)

        try:
            await self.app(scope, receive, naming_send)
        except Exception as error:
            name_span()
            if span.is_recording():
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
            raise


def temporal_interceptors() -> list[Any]:
    """Carries trace context from a workflow start into the workflow and its activities."""
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]


def shutdown_telemetry() -> None:
    if _provider is not None:
        _provider.force_flush()
        _provider.shutdown()
