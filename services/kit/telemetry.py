"""OpenTelemetry set-up in one function, for every kind of process.

`setup_telemetry` installs the tracer provider (OTLP export when an endpoint is configured, and
any extra exporter, e.g. an in-memory one in tests) and instruments gRPC client and server. The
pieces that need an object (a SQLAlchemy engine, a FastAPI app, a Temporal client) have their own
small helpers here so that instrumentation lives in this file only.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from sqlalchemy.ext.asyncio import AsyncEngine

_provider: TracerProvider | None = None


def setup_telemetry(
    service_name: str,
    *,
    otlp_endpoint: str | None = None,
    extra_exporter: SpanExporter | None = None,
) -> TracerProvider:
    """Idempotent: the first call in a process wins (OpenTelemetry allows one global provider)."""
    global _provider
    if _provider is not None:
        if extra_exporter is not None:
            _provider.add_span_processor(SimpleSpanProcessor(extra_exporter))
        return _provider
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint, insecure=True))
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


def instrument_app(app: Any) -> None:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz")


def temporal_interceptors() -> list[Any]:
    """Carries trace context from a workflow start into the workflow and its activities."""
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]


def shutdown_telemetry() -> None:
    if _provider is not None:
        _provider.force_flush()
        _provider.shutdown()
