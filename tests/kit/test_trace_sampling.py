"""Which traces leave a process (`KeepErrorsAndSlow`): errors and slow requests always, ordinary
ones by their trace id's share, whole."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)

from services.kit.telemetry import TRACE_ID_LIMIT, KeepErrorsAndSlow

MS = 1_000_000


def pipeline(ratio: float) -> tuple[TracerProvider, InMemorySpanExporter, KeepErrorsAndSlow]:
    exported = InMemorySpanExporter()
    keep = KeepErrorsAndSlow(SimpleSpanProcessor(exported), ratio=ratio, slow_seconds=0.5)
    provider = TracerProvider()
    provider.add_span_processor(keep)
    return provider, exported, keep


def request(provider: TracerProvider, *, millis: int, error: bool = False, parent=None) -> int:  # type: ignore[no-untyped-def]
    """A server span with one SQL child, `millis` long; returns its trace id."""
    tracer = provider.get_tracer("test")
    start = 1_000 * MS
    root = tracer.start_span("GET /v1/x", context=parent, start_time=start)
    child = tracer.start_span("SELECT", context=set_span_in_context(root), start_time=start)
    if error:
        child.set_status(Status(StatusCode.ERROR, "boom"))
    child.end(end_time=start + MS)
    root.end(end_time=start + millis * MS)
    return root.get_span_context().trace_id


def test_fast_ordinary_requests_are_dropped_errors_and_slow_ones_kept_whole() -> None:
    provider, exported, _ = pipeline(ratio=0.0)
    request(provider, millis=20)
    assert exported.get_finished_spans() == ()
    failed = request(provider, millis=20, error=True)
    slow = request(provider, millis=800)
    spans = exported.get_finished_spans()
    assert sorted((s.name, s.context.trace_id) for s in spans) == sorted(
        [("GET /v1/x", failed), ("SELECT", failed), ("GET /v1/x", slow), ("SELECT", slow)]
    )


def test_the_kept_share_is_decided_by_trace_id_the_same_in_every_process() -> None:
    gateway, gateway_spans, keep = pipeline(ratio=0.5)
    service, service_spans, _ = pipeline(ratio=0.5)
    kept = 0
    for n in range(200):
        trace_id = request(gateway, millis=10)
        remote = SpanContext(
            trace_id, 0xABC + n, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)
        )
        # The service's server span continues the gateway's trace (a remote parent: its root).
        request(service, millis=10, parent=set_span_in_context(NonRecordingSpan(remote)))
        kept += keep.kept_by_ratio(trace_id)
    gateway_traces = {s.context.trace_id for s in gateway_spans.get_finished_spans()}
    service_traces = {s.context.trace_id for s in service_spans.get_finished_spans()}
    assert gateway_traces == service_traces  # the same traces, whole on both sides
    assert len(gateway_traces) == kept
    assert 60 <= kept <= 140  # about half of 200
    assert not keep.kept_by_ratio(TRACE_ID_LIMIT)


def test_spans_whose_root_never_ends_here_are_decided_at_shutdown() -> None:
    provider, exported, keep = pipeline(ratio=0.0)
    tracer = provider.get_tracer("test")
    root = tracer.start_span("long")
    child = tracer.start_span("child", context=set_span_in_context(root))
    child.set_status(Status(StatusCode.ERROR, "boom"))
    child.end()
    assert exported.get_finished_spans() == ()  # held: its root has not ended
    keep.force_flush()
    assert [s.name for s in exported.get_finished_spans()] == ["child"]


def test_errors_and_slow_requests_beyond_the_kept_share_spend_a_budget() -> None:
    """A saturated machine makes every request slow, an outage makes every request fail: past
    the budget, such traces are dropped instead of feeding the trace pipeline everything."""
    now = [0.0]
    exported = InMemorySpanExporter()
    keep = KeepErrorsAndSlow(
        SimpleSpanProcessor(exported),
        ratio=0.0,
        slow_seconds=0.5,
        extra_per_second=2.0,
        extra_burst=3.0,
        clock=lambda: now[0],
    )
    provider = TracerProvider()
    provider.add_span_processor(keep)

    def kept_traces() -> int:
        return len({s.context.trace_id for s in exported.get_finished_spans()})

    for _ in range(10):
        request(provider, millis=800)
    assert kept_traces() == 3  # the burst, then nothing
    now[0] += 1.0  # refilled at 2 a second
    for _ in range(5):
        request(provider, millis=20, error=True)
    assert kept_traces() == 5
    for _ in range(5):
        request(provider, millis=20)  # ordinary and fast: never spends nor gets a token
    assert kept_traces() == 5


def test_the_kept_share_does_not_spend_the_budget() -> None:
    exported = InMemorySpanExporter()
    keep = KeepErrorsAndSlow(
        SimpleSpanProcessor(exported), ratio=1.0, extra_per_second=0.0, extra_burst=1.0
    )
    provider = TracerProvider()
    provider.add_span_processor(keep)
    for _ in range(5):
        request(provider, millis=800, error=True)
    assert len({s.context.trace_id for s in exported.get_finished_spans()}) == 5
