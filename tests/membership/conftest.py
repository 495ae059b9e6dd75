"""One identity, one membership service and one worker for the package (real PostgreSQL, gRPC on
port 0, the real Temporal dev server); tests stay independent by making their own tenants."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from services.kit.smtpsink import SmtpSink
from services.kit.testing import DatabaseServer
from tests.membership.harness import World, running_world


@pytest.fixture(scope="package")
async def world(
    pg: DatabaseServer, temporal_env: WorkflowEnvironment, smtp_sink: SmtpSink
) -> AsyncIterator[World]:
    async with running_world(pg, temporal_env.client, smtp_sink) as running:
        yield running
