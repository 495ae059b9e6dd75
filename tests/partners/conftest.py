"""The partners package: identity, support and partners for real, with the worker, on the
Temporal dev server; and the gateway in front of them over ASGI."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from services.gateway.app import create_app
from services.gateway.idempotency import IdempotencyStore
from services.gateway.settings import GatewaySettings
from services.kit.identity_client import connect_identity
from services.kit.smtpsink import SmtpSink
from services.kit.testing import DatabaseServer
from tests.identity.harness import Identity
from tests.partners.harness import (
    SECRETS,
    Partners,
    identity_service,
    partners_service,
    support_service,
    worker,
)


@pytest.fixture(scope="package")
async def identity_stack(
    pg: DatabaseServer, smtp_sink: SmtpSink, temporal_env: WorkflowEnvironment
) -> AsyncIterator[tuple[Identity, int]]:
    async with identity_service(
        pg, smtp_sink, temporal_env.client.service_client.config.target_host
    ) as running:
        yield running


@pytest.fixture(scope="package")
async def partners(
    pg: DatabaseServer,
    smtp_sink: SmtpSink,
    temporal_env: WorkflowEnvironment,
    identity_stack: tuple[Identity, int],
) -> AsyncIterator[Partners]:
    identity, identity_port = identity_stack
    queue = f"partners-{uuid.uuid4()}"
    target = temporal_env.client.service_client.config.target_host
    async with (
        support_service(pg, identity_port=identity_port, temporal_address=target, queue=queue) as (
            support,
            support_port,
        ),
        partners_service(
            pg,
            identity=identity,
            identity_port=identity_port,
            temporal_address=target,
            queue=queue,
            support=support,
            support_port=support_port,
            ticket_retry_delay_seconds=1,
        ) as running,
        worker(temporal_env.client, running, smtp_sink, queue),
    ):
        await running.set_up_support()
        yield running


@pytest.fixture(scope="package")
async def http(
    partners: Partners, idempotency: IdempotencyStore
) -> AsyncIterator[httpx.AsyncClient]:
    """The real gateway app over ASGI, wired to these services."""
    settings = GatewaySettings(
        identity_addr=f"127.0.0.1:{partners.identity_port}",
        partners_addr=partners.address,
        service_client_id="gateway",
        service_client_secret=SECRETS["gateway"],
        max_body_bytes=256 * 1024,
    )
    link = connect_identity(settings)
    app = create_app(settings, identity=link, idempotency=idempotency)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 50000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
    finally:
        from services.gateway.rpc import close_channels

        await close_channels(app.state)
        await link.close()
