"""Async SQLAlchemy 2 engine and session factory on asyncpg, and Alembic migrations per service."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from services.kit.metrics import timed_pool_class

# One naming convention so that Alembic names constraints the same way everywhere.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


def async_url(url: str) -> str:
    """Accepts `postgresql://` URLs (as ops write them) and selects the asyncpg driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def create_engine(url: str, *, pool_size: int = 10, service: str = "") -> AsyncEngine:
    """`service`: the label of the pool's wait metrics (`guichet_db_pool_wait_seconds`)."""
    engine = create_async_engine(
        async_url(url),
        poolclass=timed_pool_class(service or "unnamed"),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
    )
    event.listen(engine.sync_engine, "checkout", _discard_closed)
    return engine


def _discard_closed(dbapi_connection: Any, record: object, proxy: object) -> None:
    """Hands out no connection the server already closed (a restart, a terminated backend).

    SQLAlchemy's `pool_pre_ping` asks the server at every checkout, and on asyncpg that is three
    round trips (BEGIN, `;`, ROLLBACK) before each transaction's own BEGIN: most of a short
    request's statements. asyncpg reads every idle connection's socket, so a connection the
    server closed is already marked closed here, for free; raising DisconnectionError makes the
    pool replace it (SQLAlchemy's "pessimistic" recipe, without the round trips). A connection
    that dies unannounced (a network cut) fails its statement once and the pool is invalidated,
    as it would be between a ping and the statement anyway; `pool_recycle` bounds their age.
    """
    connection = getattr(dbapi_connection, "_connection", None)
    if connection is not None and connection.is_closed():
        raise exc.DisconnectionError("the server closed this connection")


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def ensure_database(admin_url: str, name: str, *, template: str | None = None) -> str:
    """Creates database `name` on the server of `admin_url` unless it exists; returns its URL.

    With `template`, the new database is a copy of that one (which nobody may be connected to)."""
    import asyncpg

    for checked in (name, template or "x"):
        if not checked.replace("_", "").isalnum():
            raise ValueError(f"unsafe database name: {checked!r}")
    admin = make_url(admin_url)
    connection = await asyncpg.connect(
        host=admin.host,
        port=admin.port,
        user=admin.username,
        password=admin.password,
        database=admin.database or "postgres",
    )
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            copied = f' TEMPLATE "{template}"' if template else ""
            await connection.execute(f'CREATE DATABASE "{name}"{copied}')
    finally:
        await connection.close()
    return admin.set(database=name).render_as_string(hide_password=False)


def alembic_config(migrations_dir: Path, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", async_url(url).replace("%", "%%"))
    return config


def upgrade_sync(migrations_dir: Path, url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(migrations_dir, url), revision)


async def upgrade(migrations_dir: Path, url: str, revision: str = "head") -> None:
    """Applies a service's migrations; runs Alembic in a thread since its env uses its own loop."""
    await asyncio.to_thread(upgrade_sync, migrations_dir, url, revision)
