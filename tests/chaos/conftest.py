"""One whole system for the fault tests, with its own PostgreSQL and Temporal dev server, so that
the tests can stop and restart them (the session's shared servers must stay up for the others)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.devstack.components import COMPONENTS, DEFAULT_PORTS
from services.devstack.demo import load_demo_data
from services.devstack.stack import ADMIN_USERNAME, Stack
from services.kit.ports import free_port
from tests.chaos.harness import Chaos

# Small delegation batches: a 100,000-account request takes 50 batches, so a kill lands in the
# middle of it. Short escalation deadlines: a test sees them pass.
CHAOS_ENV = {
    "AUTH_RATE_LIMIT_PER_MINUTE": "0",
    "DELEGATION_BATCH_SIZE": "2000",
    "ESCALATION_ANSWER_TIMEOUT_SECONDS": "40",
    "ESCALATION_SUPPORT_TIMEOUT_SECONDS": "20",
}


@pytest.fixture(scope="package")
async def chaos() -> AsyncIterator[Chaos]:
    # Not under pytest's basetemp: any pytest session started meanwhile (other suites run beside
    # this one) resets /tmp/pytest-of-<user> to 0700, and PostgreSQL, run as its own system user
    # when we are root, could then no longer reach its data folder to stop or restart.
    state = Path(tempfile.mkdtemp(prefix="guichet-chaos-"))
    state.chmod(0o755)
    ports = {name: free_port() for name in DEFAULT_PORTS}
    # Metrics ports too: the alert test scrapes every process with a real Prometheus.
    ports |= {f"{component.name}_metrics": free_port() for component in COMPONENTS}
    stack = Stack(state, ports, echo=False, extra_env=CHAOS_ENV)
    running = Chaos(stack)
    try:
        await stack.start()
        await load_demo_data(
            stack.grpc_address("identity"),
            ADMIN_USERNAME,
            stack.secrets.admin_password,
            stack.smtp,
            large=False,
            addresses={c.name: stack.grpc_address(c.port_key) for c in COMPONENTS if c.port_key},
        )
        yield running
    finally:
        await running.close()
        await stack.stop()
        # The logs stay (small, and what a failure needs); the data goes.
        shutil.rmtree(state / "postgres", ignore_errors=True)
        (state / "temporal.db").unlink(missing_ok=True)
        print(f"chaos stack logs: {state / 'logs'}")
