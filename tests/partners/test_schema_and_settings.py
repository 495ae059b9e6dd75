"""The migrations build exactly the models' schema and go down and up; settings fail fast."""

from __future__ import annotations

import asyncio

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from pydantic import ValidationError
from sqlalchemy import Connection, inspect

from services.kit.db import alembic_config, create_engine, upgrade
from services.kit.testing import DatabaseServer
from services.partners.models import Base
from services.partners.servicer import SPEC
from services.partners.settings import PartnersSettings


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrations_match_the_models_and_go_down_and_up(pg: DatabaseServer) -> None:
    url = await pg.new_database("partners_schema")
    await upgrade(SPEC.migrations_dir, url)
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
            indexes = await connection.run_sync(
                lambda sync: {i["name"]: i for i in inspect(sync).get_indexes("orders")}
            )
            payments = await connection.run_sync(
                lambda sync: {i["name"]: i for i in inspect(sync).get_indexes("payments")}
            )
        assert indexes["ix_orders_store_history"]["column_names"] == [
            "store_id",
            "created_at",
            "id",
        ]
        assert payments["uq_payments_one_refund"]["unique"]
        config = alembic_config(SPEC.migrations_dir, url)
        await asyncio.to_thread(command.downgrade, config, "base")
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        assert set(tables) <= {"alembic_version"}
        await upgrade(SPEC.migrations_dir, url)
    finally:
        await engine.dispose()


def settings(**values: object) -> PartnersSettings:
    return PartnersSettings(database_url="postgresql://x@localhost/partners", **values)  # type: ignore[arg-type]


def test_defaults() -> None:
    defaults = settings()
    assert defaults.grpc_port == 50054
    assert defaults.trusted_clients == {"worker", "platform"}
    assert (
        defaults.escalation_answer_timeout_seconds,
        defaults.escalation_support_timeout_seconds,
    ) == (600, 1200)
    assert defaults.stockout_refund_funded_by == "partner"


@pytest.mark.parametrize(
    "values",
    [
        {"default_timezone": "Mars/Olympus"},
        {"default_currency": "euro"},
        {"internal_clients": "Worker Bee"},
        {"stockout_refund_funded_by": "customer"},
        {"proof_max_bytes": 10 * 1024 * 1024},
        {"escalation_answer_timeout_seconds": 0},
    ],
)
def test_bad_settings_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        settings(**values)
