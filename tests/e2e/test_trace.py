"""One user action, one trace: gateway → gRPC client → identity server → SQL, one trace id."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import services.identity
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from services.identity.servicer import SPEC
from services.identity.settings import IdentitySettings
from services.kit.identity_client import connect_identity
from services.kit.mail import new_sealing_key
from services.kit.runtime import start_service
from services.kit.telemetry import setup_telemetry
from services.kit.testing import DatabaseServer

METHOD = "/guichet.identity.v1.IdentityService/Login"


def _children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


async def _login_with_wrong_password(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/auth/token", json={"username": "nobody.here", "password": "wrong-password-123"}
    )
    assert response.status_code == 401


async def test_login_is_one_trace_from_gateway_to_database(pg: DatabaseServer) -> None:
    exporter = InMemorySpanExporter()
    setup_telemetry("guichet-test", extra_exporter=exporter)
    url = await pg.migrated_database(
        Path(services.identity.__file__).parent / "migrations", "trace"
    )
    secret = uuid.uuid4().hex * 2
    identity_settings = IdentitySettings(
        database_url=url,
        grpc_port=0,
        grpc_host="127.0.0.1",
        mail_sealing_key=new_sealing_key(),
        service_clients=f"gateway={secret}",
        bootstrap_admin_username="trace.admin",
        bootstrap_admin_password="Trace-admin-password-1",
        bootstrap_admin_email="trace.admin@example.org",
    )
    context, running = await start_service(SPEC, identity_settings)
    gateway_settings = GatewaySettings(
        identity_addr=f"127.0.0.1:{running.port}",
        service_client_id="gateway",
        service_client_secret=secret,
    )
    link = connect_identity(gateway_settings)
    app = create_app(gateway_settings, identity=link)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as client:
            # Warm up: the gateway fetches and caches its own service token on first use.
            await client.get("/v1/auth/jwks")
            await _login_with_wrong_password(client)
            exporter.clear()
            response = await client.post(
                "/v1/auth/token",
                json={"username": "trace.admin", "password": "Trace-admin-password-1"},
            )
        assert response.status_code == 200, response.text
    finally:
        await link.close()
        await running.stop()
        await context.exit_stack.aclose()

    spans = list(exporter.get_finished_spans())
    [http_root] = [
        s for s in spans if s.kind == SpanKind.SERVER and s.name.startswith("POST /v1/auth/token")
    ]
    assert http_root.context is not None
    trace_id = http_root.context.trace_id
    in_trace = [s for s in spans if s.context is not None and s.context.trace_id == trace_id]

    [grpc_client] = [s for s in in_trace if s.kind == SpanKind.CLIENT and s.name == METHOD]
    [grpc_server] = [s for s in in_trace if s.kind == SpanKind.SERVER and s.name == METHOD]
    assert grpc_server.parent is not None and grpc_client.context is not None
    assert grpc_server.parent.span_id == grpc_client.context.span_id
    sql = [
        s
        for s in in_trace
        if s.attributes is not None and s.attributes.get("db.system") == "postgresql"
    ]
    assert sql, "the identity service's SQL statements belong to the same trace"
    # Each SQL span descends from the identity server span, not from a trace of its own.
    by_id = {s.context.span_id: s for s in in_trace if s.context is not None}
    for statement in sql:
        ancestor: ReadableSpan | None = statement
        while ancestor is not None and ancestor is not grpc_server:
            ancestor = by_id.get(ancestor.parent.span_id) if ancestor.parent else None
        assert ancestor is grpc_server
    assert _children(in_trace, grpc_server)
    assert http_root.attributes is not None and "guichet.request_id" in http_root.attributes
