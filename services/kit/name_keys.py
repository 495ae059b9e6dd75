"""Stored comparison keys of unique names (`services.kit.names`): the report table every service
with a unique name has, and the migration step that gives existing rows their key.

A service stores `name_key(name)` beside each unique name and puts the uniqueness constraint on
the key, so the database settles races. Rows written before the key existed may clash under it
("Groupe A" and "groupe  a" were two names, they are one now): a migration must not fail on them,
nor pick a winner silently. `fill_name_keys` gives the key to the oldest row of each clash, leaves
the others without one (NULL: outside the constraint, until someone renames them) and records
each in the table `name_clashes`, which it also logs; names that mix scripts confusably are
recorded there too (kept as they are: refusing is for new names). Operators read the table,
rename, and the renamed rows get their key.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Identity,
    MetaData,
    String,
    Table,
    Text,
    text,
)

from services.kit.names import confusable_mix, name_key

log = logging.getLogger("alembic.runtime.migration")

CLASH = "clash"
MIXED_SCRIPT = "mixed_script"


def name_clashes_table(metadata: MetaData) -> Table:
    """What a migration found among existing names: clashes under the key, and mixed scripts."""
    return Table(
        "name_clashes",
        metadata,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("table_name", String(64), nullable=False),
        Column("row_id", String(64), nullable=False),
        Column("name", Text, nullable=False),
        Column("name_key", Text, nullable=False),
        # "clash": the key of an older row (`clashes_with`); "mixed_script": a look-alike mix.
        Column("problem", String(16), nullable=False),
        Column("clashes_with", String(64)),
        Column("detail", Text, nullable=False),
        Column("found_at", DateTime(timezone=True), nullable=False),
    )


def create_name_clashes(op: Any) -> None:
    """The report table, in a migration (the same columns as `name_clashes_table`)."""
    import sqlalchemy as sa

    op.create_table(
        "name_clashes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("row_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("name_key", sa.Text(), nullable=False),
        sa.Column("problem", sa.String(length=16), nullable=False),
        sa.Column("clashes_with", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("found_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_name_clashes")),
    )


def fill_name_keys(
    connection: Connection,
    *,
    table: str,
    scope: Sequence[str] = (),
    name_column: str = "name",
    key_column: str = "name_key",
) -> int:
    """Computes `key_column` for every row of `table` (oldest first by `created_at`), unique
    within `scope`; reports clashes and mixed scripts in `name_clashes`; answers the clashes."""
    columns = ", ".join(["id", name_column, *scope])
    rows = connection.execute(
        text(f"SELECT {columns} FROM {table} ORDER BY created_at, id")  # noqa: S608 (our names)
    ).all()
    now = datetime.now(UTC)
    first: dict[tuple[Any, ...], str] = {}
    keys: list[dict[str, Any]] = []
    report: list[dict[str, Any]] = []
    for row in rows:
        row_id, name = str(row[0]), str(row[1])
        key = name_key(name)
        where = (*row[2:], key)
        entry = {"table_name": table, "row_id": row_id, "name": name, "name_key": key}
        if found := confusable_mix(name):
            report.append(
                {**entry, "problem": MIXED_SCRIPT, "clashes_with": None, "detail": found.describe()}
            )
        if where in first:
            report.append(
                {
                    **entry,
                    "problem": CLASH,
                    "clashes_with": first[where],
                    "detail": f"reads as the name of {first[where]}; rename one of them",
                }
            )
            continue
        first[where] = row_id
        keys.append({"id": row[0], "key": key})
    if keys:
        connection.execute(
            text(f"UPDATE {table} SET {key_column} = :key WHERE id = :id"),  # noqa: S608
            keys,
        )
    if report:
        connection.execute(
            text(
                "INSERT INTO name_clashes (table_name, row_id, name, name_key, problem, "
                "clashes_with, detail, found_at) VALUES (:table_name, :row_id, :name, "
                ":name_key, :problem, :clashes_with, :detail, :found_at)"
            ),
            [{**line, "found_at": now} for line in report],
        )
    clashes = [line for line in report if line["problem"] == CLASH]
    for line in report:
        log.warning(
            "%s %s %r: %s (see the name_clashes table)",
            table,
            line["row_id"],
            line["name"],
            line["detail"],
        )
    log.info(
        "%s: %d names keyed, %d clashes and %d mixed-script names reported in name_clashes",
        table,
        len(rows),
        len(clashes),
        len(report) - len(clashes),
    )
    return len(clashes)
