"""The migrations build exactly the models' schema, and go down and up; settings fail fast."""

from __future__ import annotations

import asyncio

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect

from services.kit.db import alembic_config, create_engine, upgrade
from services.kit.mail import new_sealing_key
from services.kit.testing import DatabaseServer
from services.membership.models import Base
from services.membership.servicer import SPEC
from services.membership.settings import MembershipSettings


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrations_match_the_models_and_go_down_and_up(pg: DatabaseServer) -> None:
    url = await pg.new_database("membership_schema")
    await upgrade(SPEC.migrations_dir, url)
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
            indexes = await connection.run_sync(
                lambda sync: {
                    i["name"]: i for i in inspect(sync).get_indexes("training_registrations")
                }
            )
        # The rule "one validated registration per person and training type" is the database's.
        validated = indexes["uq_training_registrations_validated"]
        assert validated["unique"]
        assert validated["column_names"] == ["association_id", "person_key", "training_type"]
        config = alembic_config(SPEC.migrations_dir, url)
        await asyncio.to_thread(command.downgrade, config, "base")
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        assert set(tables) <= {"alembic_version"}
        await upgrade(SPEC.migrations_dir, url)
    finally:
        await engine.dispose()


def test_settings_defaults_and_refusals() -> None:
    settings = MembershipSettings(
        database_url="postgresql://x@localhost/membership", mail_sealing_key=new_sealing_key()
    )
    assert settings.grpc_port == 50055
    assert (settings.letter_lead_days, settings.removal_window_days) == (30, 30)
    with pytest.raises(ValueError, match="32 bytes"):
        MembershipSettings(database_url="postgresql://x@localhost/m", mail_sealing_key="AAAA")
    with pytest.raises(ValueError, match="removal_window_days"):
        MembershipSettings(
            database_url="postgresql://x@localhost/m",
            mail_sealing_key=new_sealing_key(),
            removal_window_days=0,
        )
