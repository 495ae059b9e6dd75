"""A password sign-in's two statements, run on asyncpg itself: compiled once by SQLAlchemy.

Why (issue 29, docs/performance.md "Login CPU"): a sign-in is one read before argon2id and one
write after it, and around each statement SQLAlchemy's session, connection, cursor adapter and
greenlet hand-off cost more of identity's CPU than the statement itself: measured on one
statement, 0.79 ms of CPU through an `AsyncSession`, 0.70 ms through an `AsyncConnection`,
0.23 ms through this module, 0.13 ms on a connection already held. At ~45 logins a second per
core, beside a 22 ms hash, that difference is what stood between a login and 0.8 of a raw
argon2id verification.

What stays SQLAlchemy's: the statements (Core, built once from the tables), their SQL and the
conversion of each parameter (compiled once for the engine's dialect, with each bound type's
own processor), the pool (its size, its wait metrics, its check of closed connections at
checkout). What is skipped is only the per-statement machinery: the statement runs as
`fetchrow`/`execute` on the pooled asyncpg connection, whose statement cache prepares it once,
outside any transaction (each of these statements is atomic by itself). A connection whose
statement failed because the server went, or was cancelled mid-statement, is invalidated, as
SQLAlchemy would, and a connection the server closed answers UNAVAILABLE as through SQLAlchemy
(`services.kit.grpcserver.is_unavailable`). When the request's span is recorded, each
statement gets its client span, as the engine's instrumentation gives the others.

`Rows` is what the sign-in's domain code runs statements through: `SessionRows` inside a
session (second factors, passkeys, refresh, the failure path), `DriverRows` on the hot path.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol, cast

from opentelemetry import trace
from opentelemetry.trace import SpanKind
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import NoResultFound
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from services.kit.grpcserver import is_unavailable

_tracer = trace.get_tracer(__name__)
_REQUIRED = object()


class Rows(Protocol):
    """Runs a prebuilt statement with its parameters."""

    async def one(self, statement: Executable, params: Mapping[str, object]) -> Mapping[str, Any]:
        """The statement's only row, as a mapping of its column labels."""
        ...

    async def run(self, statement: Executable, params: Mapping[str, object]) -> None: ...


class SessionRows:
    """Statements in the caller's session (and its transaction, if it began one)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def one(self, statement: Executable, params: Mapping[str, object]) -> Mapping[str, Any]:
        return cast(
            Mapping[str, Any], (await self.session.execute(statement, params)).one()._mapping
        )

    async def run(self, statement: Executable, params: Mapping[str, object]) -> None:
        await self.session.execute(statement, params)


@dataclass(frozen=True)
class Compiled:
    """A statement's SQL for the driver and, in the driver's order, each parameter's name, its
    type's processor and its value when the statement carries one (a literal, a LIMIT)."""

    sql: str
    verb: str
    binds: tuple[tuple[str, Callable[[Any], Any] | None, object], ...]

    def arguments(self, params: Mapping[str, object]) -> list[object]:
        values: list[object] = []
        for name, process, given in self.binds:
            value = params.get(name, given)
            if value is _REQUIRED:
                raise KeyError(f"the statement needs the parameter {name!r}")
            values.append(process(value) if process is not None else value)
        return values


@functools.lru_cache(maxsize=64)
def compiled_for(statement: ClauseElement, dialect: Dialect) -> Compiled:
    """Compiled once per statement object (the sign-in's are built once: `functools.cache`)."""
    compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
    names = compiled.positiontup or []
    binds = []
    for name in names:
        bind = compiled.binds[name]
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        given = _REQUIRED if bind.required else bind.effective_value
        binds.append((name, process, given))
    return Compiled(compiled.string, compiled.string.split(None, 1)[0], tuple(binds))


class DriverRows:
    """Statements on one asyncpg connection, outside any transaction."""

    def __init__(self, connection: Any, dialect: Dialect, database: str) -> None:
        self.connection = connection
        self._dialect = dialect
        self._database = database

    async def one(self, statement: Executable, params: Mapping[str, object]) -> Mapping[str, Any]:
        prepared = compiled_for(statement, self._dialect)
        arguments = prepared.arguments(params)
        if trace.get_current_span().is_recording():
            with self._span(prepared):
                row = await self.connection.fetchrow(prepared.sql, *arguments)
        else:
            row = await self.connection.fetchrow(prepared.sql, *arguments)
        if row is None:
            raise NoResultFound("the statement returned no row")
        return row  # type: ignore[no-any-return]

    async def run(self, statement: Executable, params: Mapping[str, object]) -> None:
        prepared = compiled_for(statement, self._dialect)
        arguments = prepared.arguments(params)
        if trace.get_current_span().is_recording():
            with self._span(prepared):
                await self.connection.execute(prepared.sql, *arguments)
        else:
            await self.connection.execute(prepared.sql, *arguments)

    def _span(self, prepared: Compiled) -> Any:
        """The span SQLAlchemy's instrumentation would have made for the statement."""
        return _tracer.start_as_current_span(
            f"{prepared.verb} {self._database}",
            kind=SpanKind.CLIENT,
            attributes={
                "db.system": "postgresql",
                "db.name": self._database,
                "db.statement": prepared.sql,
            },
        )


class Driver:
    """Connections of the engine's pool for `DriverRows`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._dialect = engine.dialect
        self._database = engine.url.database or ""

    @asynccontextmanager
    async def rows(self) -> AsyncIterator[DriverRows]:
        pooled = await self._engine.raw_connection()
        connection: Any = pooled.driver_connection
        try:
            yield DriverRows(connection, self._dialect, self._database)
        except Exception as error:
            if is_unavailable(error):
                pooled.invalidate(error)
                raise
            if connection.is_closed():
                # asyncpg says only "connection is closed" (InterfaceError) when it learnt of
                # the server's end before the statement: unavailable, as SQLAlchemy says it.
                pooled.invalidate(error)
                raise ConnectionError("the database closed the connection") from error
            raise
        except BaseException:
            # Cancelled mid-statement: the connection's state is unknown, it is not reused.
            pooled.invalidate()
            raise
        finally:
            pooled.close()
