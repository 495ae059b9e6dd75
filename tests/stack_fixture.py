"""The whole system as separate OS processes, as `make dev` runs it, on free ports: the `stack`
fixture of the end-to-end and browser tests (one per xdist worker, shared by both packages)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from services.devstack.components import COMPONENTS, DEFAULT_PORTS
from services.devstack.demo import load_demo_data
from services.devstack.stack import ADMIN_USERNAME, Stack
from services.kit.ports import free_port
from services.kit.testing import DatabaseServer


@pytest.fixture(scope="session")
async def stack(
    pg: DatabaseServer, temporal_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    state: Path = tmp_path_factory.mktemp("stack")
    ports = {name: free_port() for name in DEFAULT_PORTS}
    ports |= {f"{component.name}_metrics": free_port() for component in COMPONENTS}
    running = Stack(
        state,
        ports,
        database_admin_url=pg.admin_url,
        temporal_address=temporal_env.client.service_client.config.target_host,
        echo=False,
        # The per-IP brake on the auth routes is tested in tests/gateway; here it would only
        # throttle the fuzzer and the tests that share this one client address.
        # Access tokens live an hour here (5 minutes by default): the API fuzzer sends one token
        # for minutes of requests, and on a busy machine an expired one turned most of a run
        # into 401s that checked nothing.
        extra_env={"AUTH_RATE_LIMIT_PER_MINUTE": "0", "ACCESS_TOKEN_TTL_SECONDS": "3600"},
    )
    try:
        await running.start()
        await load_demo_data(
            running.grpc_address("identity"),
            ADMIN_USERNAME,
            running.secrets.admin_password,
            running.smtp,
            large=False,
            addresses={c.name: running.grpc_address(c.port_key) for c in COMPONENTS if c.port_key},
        )
        yield running
    finally:
        await running.stop()
