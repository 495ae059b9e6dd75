"""One identity and one support service for the package, on the real Temporal dev server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from services.kit.smtpsink import SmtpSink
from services.kit.testing import DatabaseServer
from services.support.servicer import SPEC
from tests.identity.harness import Identity
from tests.support.harness import Support, identity_service, support_service


@pytest.fixture(scope="package")
async def identity_stack(
    pg: DatabaseServer, smtp_sink: SmtpSink, temporal_env: WorkflowEnvironment
) -> AsyncIterator[tuple[Identity, int]]:
    async with identity_service(
        pg, smtp_sink, temporal_env.client.service_client.config.target_host
    ) as running:
        yield running


@pytest.fixture(scope="package")
async def support_url(pg: DatabaseServer) -> str:
    url = await pg.migrated_database(SPEC.migrations_dir, "support")
    return url


@pytest.fixture(scope="package")
async def support(
    identity_stack: tuple[Identity, int],
    support_url: str,
    smtp_sink: SmtpSink,
    temporal_env: WorkflowEnvironment,
) -> AsyncIterator[Support]:
    identity, port = identity_stack
    async with support_service(
        identity=identity,
        identity_port=port,
        database_url=support_url,
        client=temporal_env.client,
        smtp=smtp_sink,
    ) as (running, _worker):
        yield running
