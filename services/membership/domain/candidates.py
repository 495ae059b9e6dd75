"""Precomputed duplicate candidates: the review reads a stored report instead of computing one.

Finding an association's duplicates takes one to two seconds at 100,000 records (`duplicates.py`
groups every record): too slow for a page, and wasted when nothing changed. So the report is kept
in `duplicate_groups` (its groups, in the review's order) and `duplicate_reports` (its totals and
when it was computed), and recomputed in the background after a change:

* each write that can change the duplicates (a record created, imported, merged or deleted) adds
  a `duplicate_changes` row in its own transaction (`note_change`): an insert, so concurrent
  writes never wait on one another;
* the service's refresher (`services.membership.candidates_refresher`) finds the associations
  with changes and calls `refresh` for each, in one REPEATABLE READ transaction: the records and
  the changes it reads are the same snapshot, and it deletes only the changes that snapshot saw;
  a write committed meanwhile keeps its change row, so the next pass includes it. An advisory
  lock keeps two replicas from computing the same association at once;
* the review (`merges.list_duplicates`) pages through the stored groups and drops the records
  merged or deleted since (so a merge shows at once), and says when the report was computed and
  whether changes are waiting (`stale`): a new record joins its group within seconds.

Why in the background rather than on each write: the probable groups depend on the whole
association (a slip is "rare" against the counts of every word), so an exact incremental update
would touch far more than the record written; one recomputation after a burst of writes (an
import of 10,000 records is one change) costs what one review used to.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, exists, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.membership.domain import duplicates as dup
from services.membership.models import DuplicateChange, DuplicateReport

CERTAIN, PROBABLE = 0, 1


async def keyed_records(
    session: AsyncSession, association_id: uuid.UUID
) -> list[tuple[uuid.UUID, str, str]]:
    """(id, name_key, token_key) of the association's live records, straight from the driver:
    100,000 rows in a fraction of a second."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    rows: list[tuple[uuid.UUID, str, str]] = await driver.fetch(
        "SELECT id, name_key, token_key FROM client_records "
        "WHERE association_id = $1 AND merged_into_id IS NULL",
        association_id,
    )
    return rows  # asyncpg records index like the tuples they stand for


def note_change(session: AsyncSession, association_id: uuid.UUID, now: datetime) -> None:
    """Records, with the caller's write, that the association's duplicates may have changed."""
    session.add(DuplicateChange(association_id=association_id, at=now))


async def changed_associations(session: AsyncSession, limit: int = 100) -> list[uuid.UUID]:
    """Associations with changes not yet in their report, the longest waiting first."""
    rows = await session.execute(
        select(DuplicateChange.association_id)
        .group_by(DuplicateChange.association_id)
        .order_by(func.min(DuplicateChange.id))
        .limit(limit)
    )
    return list(rows.scalars())


async def is_stale(session: AsyncSession, association_id: uuid.UUID) -> bool:
    found = await session.scalar(
        select(exists().where(DuplicateChange.association_id == association_id))
    )
    return bool(found)


@dataclass(frozen=True)
class Refreshed:
    records: int
    groups: int
    elapsed_ms: int


async def refresh(
    session: AsyncSession, association_id: uuid.UUID, now: datetime
) -> Refreshed | None:
    """Recomputes the association's report from the caller's snapshot (a REPEATABLE READ
    transaction) and consumes the changes that snapshot saw; None when another process holds
    the association (it is computing it now)."""
    locked = await session.scalar(
        text("SELECT pg_try_advisory_xact_lock(hashtext('duplicates'), hashtext(:a))"),
        {"a": str(association_id)},
    )
    if not locked:
        return None
    started = time.perf_counter()
    rows = await keyed_records(session, association_id)
    report = dup.find_duplicates(rows)
    groups = [(CERTAIN, g.key, g.ids) for g in report.certain]
    groups += [(PROBABLE, g.key, g.ids) for g in report.probable]
    await session.execute(
        text("DELETE FROM duplicate_groups WHERE association_id = :a"), {"a": association_id}
    )
    if groups:
        connection = await session.connection()
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.copy_records_to_table(
            "duplicate_groups",
            records=[(association_id, kind, key, ids) for kind, key, ids in groups],
            columns=["association_id", "kind", "key", "record_ids"],
        )
    elapsed = round((time.perf_counter() - started) * 1000)
    values = {
        "computed_at": now,
        "records": report.records,
        "certain_groups": len(report.certain),
        "certain_pairs": report.certain_pairs,
        "probable_groups": len(report.probable),
        "probable_pairs": report.probable_pairs,
        "elapsed_ms": elapsed,
    }
    await session.execute(
        insert(DuplicateReport)
        .values(association_id=association_id, **values)
        .on_conflict_do_update(index_elements=[DuplicateReport.association_id], set_=values)
    )
    # Only the changes this snapshot saw: one committed since stays for the next pass.
    await session.execute(
        delete(DuplicateChange).where(DuplicateChange.association_id == association_id)
    )
    return Refreshed(report.records, len(groups), elapsed)
