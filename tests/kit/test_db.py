"""The kit's engine hands out no connection the server closed, without pinging at checkout."""

from __future__ import annotations

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from services.kit.db import create_engine, create_session_factory
from services.kit.testing import DatabaseServer, wait_until


async def test_a_connection_the_server_closed_is_replaced_at_checkout(pg: DatabaseServer) -> None:
    url = await pg.new_database("kit_db")
    engine = create_engine(url, pool_size=1)
    sessions = create_session_factory(engine)
    try:
        async with sessions.begin() as session:
            first = await session.scalar(text("SELECT pg_backend_pid()"))
            raw = await (await session.connection()).get_raw_connection()
            pooled = raw.driver_connection
            assert pooled is not None
        assert not engine.sync_engine.pool._pre_ping
        # The pool keeps that one connection; the server now ends its backend.
        admin = make_url(url)
        killer = await asyncpg.connect(
            host=admin.host, port=admin.port, user=admin.username, database=admin.database
        )
        try:
            assert await killer.fetchval("SELECT pg_terminate_backend($1)", first)
        finally:
            await killer.close()

        def closed() -> bool | None:
            return pooled.is_closed() or None

        await wait_until(closed, what="asyncpg saw the socket close")
        # Without the checkout check this statement would fail on the dead connection.
        async with sessions.begin() as session:
            second = await session.scalar(text("SELECT pg_backend_pid()"))
        assert second != first
    finally:
        await engine.dispose()
