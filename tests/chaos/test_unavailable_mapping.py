"""Fast (make test): which unexpected errors a service answers UNAVAILABLE (the gateway's 503)
rather than INTERNAL (500). The outage itself is in test_infrastructure_faults.py (slow)."""

from __future__ import annotations

import asyncpg
import pytest
import sqlalchemy.exc

from services.kit.grpcserver import is_unavailable


def _wrapped(orig: BaseException, *, invalidated: bool = False) -> sqlalchemy.exc.DBAPIError:
    """An error as SQLAlchemy raises it over asyncpg: the driver's error as `orig` and cause."""
    try:
        raise orig
    except BaseException as cause:
        error = sqlalchemy.exc.DBAPIError(
            "SELECT 1", None, cause, connection_invalidated=invalidated
        )
        error.__cause__ = cause
        return error


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)"),
        ConnectionResetError(104, "Connection reset by peer"),
        _wrapped(asyncpg.CannotConnectNowError("the database system is starting up")),
        _wrapped(asyncpg.AdminShutdownError("terminating connection due to administrator command")),
        _wrapped(asyncpg.ConnectionDoesNotExistError("connection was closed in the middle")),
        _wrapped(asyncpg.TooManyConnectionsError("sorry, too many clients already")),
        _wrapped(RuntimeError("connection is closed"), invalidated=True),
        sqlalchemy.exc.TimeoutError("QueuePool limit of size 10 overflow 10 reached"),
    ],
    ids=repr,
)
def test_an_unreachable_database_is_unavailable(error: BaseException) -> None:
    assert is_unavailable(error)


@pytest.mark.parametrize(
    "error",
    [
        ValueError("a bug"),
        KeyError("missing"),
        _wrapped(asyncpg.UniqueViolationError("duplicate key value")),
        _wrapped(asyncpg.UndefinedColumnError("column does not exist")),
    ],
    ids=repr,
)
def test_anything_else_stays_internal(error: BaseException) -> None:
    assert not is_unavailable(error)
