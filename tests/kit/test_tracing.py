"""The trace attribute registry: business keys land on spans under their registered names."""

from __future__ import annotations

import pytest
from guichet.identity.v1 import identity_pb2
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.kit import tracing


def _provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_request_key_fields_become_registry_attributes() -> None:
    provider, exporter = _provider()
    request = identity_pb2.ListOrganisationMembersRequest(organisation_id="org-7", roles=["x"])
    with provider.get_tracer("t").start_as_current_span("call"):
        tracing.tag_from_request(request)
        tracing.tag(ticket="T-1")
    [span] = exporter.get_finished_spans()
    assert span.attributes == {"guichet.tenant": "org-7", "guichet.ticket": "T-1"}


def test_unregistered_attribute_is_refused() -> None:
    provider, _ = _provider()
    with provider.get_tracer("t").start_as_current_span("call"), pytest.raises(ValueError):
        tracing.tag(colour="blue")
