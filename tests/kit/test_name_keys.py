# ruff: noqa: RUF001 (look-alike names are what this test migrates)
"""The name-key migration of every service (`NNNN_writes_name_keys`): existing rows get their
comparison key; rows that clash under it, and names that mix scripts confusably, are reported
in `name_clashes` (and logged), not a failed migration; the key's uniqueness is then the
database's, and the schema is exactly the models' (which groups had no test for)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, MetaData, text
from sqlalchemy.exc import IntegrityError

from services.groups.models import Base as GroupsBase
from services.groups.servicer import SPEC as GROUPS
from services.identity.models import Base as IdentityBase
from services.identity.servicer import SPEC as IDENTITY
from services.kit.db import alembic_config, create_engine
from services.kit.names import name_key
from services.kit.runtime import ServiceSpec
from services.kit.testing import DatabaseServer
from services.membership.models import Base as MembershipBase
from services.membership.servicer import SPEC as MEMBERSHIP
from services.partners.models import Base as PartnersBase
from services.partners.servicer import SPEC as PARTNERS
from services.support.models import Base as SupportBase
from services.support.servicer import SPEC as SUPPORT

NOW = datetime(2026, 1, 5, tzinfo=UTC)
PROVIDER = uuid.uuid4()


@dataclass(frozen=True)
class Case:
    spec: ServiceSpec
    metadata: MetaData
    before: str  # the revision before the name keys
    table: str
    insert: str  # one row: :id, :name, :at


CASES = [
    Case(
        IDENTITY,
        IdentityBase.metadata,
        "0002",
        "organisations",
        "INSERT INTO organisations (id, kind, name, created_at) "
        "VALUES (:id, 'association', :name, :at)",
    ),
    Case(
        GROUPS,
        GroupsBase.metadata,
        "0002",
        "client_groups",
        "INSERT INTO client_groups (id, provider_id, name, created_at, updated_at, created_by) "
        f"VALUES (:id, '{PROVIDER}', :name, :at, :at, 'test')",
    ),
    Case(
        SUPPORT,
        SupportBase.metadata,
        "0003",
        "calendars",
        "INSERT INTO calendars (id, name, time_zone, weekly_hours, country, subdivision, "
        "created_at) VALUES (:id, :name, 'Europe/Paris', '[]', 'FR', '', :at)",
    ),
    Case(
        MEMBERSHIP,
        MembershipBase.metadata,
        "0002",
        "programs",
        "INSERT INTO programs (id, code, name, description, benefits, created_at) "
        "VALUES (:id, substr(md5(:name), 1, 10), :name, '', '[]', :at)",
    ),
    Case(
        PARTNERS,
        PartnersBase.metadata,
        "0002",
        "stores",
        "INSERT INTO stores (id, name, operations_email, phone, timezone, currency, created_at, "
        "updated_at) VALUES (:id, :name, 'ops@example.org', '', 'Europe/Paris', 'EUR', :at, :at)",
    ),
]
# Oldest first; the old rules let all four in (groups compared lower(name), calendars bytes).
NAMES = ["Groupe A", "Groupe\u200bA", "Ｇｒｏｕｐｅ Ａ", "Gr\u043eupe B"]


@pytest.mark.parametrize("case", CASES, ids=[c.table for c in CASES])
async def test_existing_names_get_keys_and_clashes_are_reported(
    pg: DatabaseServer, case: Case, caplog: pytest.LogCaptureFixture
) -> None:
    url = await pg.new_database(f"names_{case.table}")
    config = alembic_config(case.spec.migrations_dir, url)
    await asyncio.to_thread(command.upgrade, config, case.before)
    engine = create_engine(url, pool_size=1)
    ids = [uuid.uuid4() for _ in NAMES]
    try:
        async with engine.begin() as connection:
            for index, (row_id, name) in enumerate(zip(ids, NAMES, strict=True)):
                await connection.execute(
                    text(case.insert),
                    {"id": row_id, "name": name, "at": NOW + timedelta(minutes=index)},
                )
        await asyncio.to_thread(command.upgrade, config, "head")
        async with engine.connect() as connection:
            keys: dict[uuid.UUID, str | None] = dict(
                (await connection.execute(text(f"SELECT id, name_key FROM {case.table}"))).all()
            )
            report = (
                await connection.execute(
                    text(
                        "SELECT row_id, problem, clashes_with FROM name_clashes "
                        "WHERE table_name = :table ORDER BY id"
                    ),
                    {"table": case.table},
                )
            ).all()
            assert await connection.run_sync(_differences, case.metadata) == []
        # The oldest keeps the key; the two look-alikes after it are reported, keyless.
        assert keys[ids[0]] == name_key("Groupe A")
        assert keys[ids[1]] is None and keys[ids[2]] is None
        assert keys[ids[3]] == name_key("Gr\u043eupe B")
        assert [tuple(r) for r in report] == [
            (str(ids[1]), "clash", str(ids[0])),
            (str(ids[2]), "clash", str(ids[0])),
            (str(ids[3]), "mixed_script", None),
        ]
        assert any("name_clashes" in r.getMessage() for r in caplog.records)
        # From now on the database refuses a second row with a taken key.
        with pytest.raises(IntegrityError):
            async with engine.begin() as connection:
                statement = case.insert.replace("(id,", "(name_key, id,", 1).replace(
                    "VALUES (", "VALUES (:key, ", 1
                )
                await connection.execute(
                    text(statement),
                    {"id": uuid.uuid4(), "name": "groupe a", "at": NOW, "key": "groupea"},
                )
        await asyncio.to_thread(command.downgrade, config, case.before)
        await asyncio.to_thread(command.upgrade, config, "head")
    finally:
        await engine.dispose()


def _differences(connection: Connection, metadata: MetaData) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))
