"""The duplicates review reads a stored report, kept up to date in the background
(services/membership/domain/candidates.py): a write is followed by an updated report, a merge
shows at once, and a write made while a report is being computed is never lost."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from guichet.membership.v1 import membership_pb2 as pb
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.kit.db import create_engine, create_session_factory
from services.kit.testing import DatabaseServer, scaled
from services.membership.domain import candidates
from services.membership.domain.normalise import name_keys
from services.membership.models import ClientRecord, DuplicateChange, DuplicateReport
from services.membership.servicer import SPEC
from tests.membership.harness import Association, World

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


async def fresh_report(world: World, association: Association) -> pb.ListDuplicatesResponse:
    """The review once the background refresher has caught up with every write (a deadline that
    stretches with the machine's load)."""
    deadline = time.monotonic() + scaled(30)
    while True:
        answer: pb.ListDuplicatesResponse = await world.stub.ListDuplicates(
            pb.ListDuplicatesRequest(association_id=association.id), metadata=association.auth
        )
        if not answer.totals.stale:
            return answer
        assert time.monotonic() < deadline, "the duplicate report was not refreshed in time"
        await asyncio.sleep(0.1)


async def _import(world: World, association: Association, *names: str) -> None:
    await world.stub.ImportClientRecords(
        pb.ImportClientRecordsRequest(
            association_id=association.id,
            records=[
                pb.ImportedClientRecord(external_ref=uuid.uuid4().hex[:12], company_name=name)
                for name in names
            ],
        ),
        metadata=world.ops,
    )


async def test_a_new_record_joins_its_group_once_the_report_is_refreshed(world: World) -> None:
    association = await world.association()
    await _import(world, association, "Mairie de Toulon", "Lycée Victor Hugo")
    first = await fresh_report(world, association)
    assert first.totals.records == 2 and list(first.groups) == []
    assert first.totals.HasField("computed_at")
    await _import(world, association, "MAIRIE DE TOULON.")
    second = await fresh_report(world, association)
    assert second.totals.records == 3
    assert [(g.kind, len(g.records)) for g in second.groups] == [(pb.DUPLICATE_KIND_CERTAIN, 2)]
    assert second.totals.computed_at.ToDatetime() >= first.totals.computed_at.ToDatetime()


async def test_a_merged_record_leaves_the_review_at_once(world: World) -> None:
    association = await world.association()
    await _import(world, association, "Club de foot de Lyon", "CLUB DE FOOT DE LYON")
    report = await fresh_report(world, association)
    source, target = report.groups[0].records
    await world.stub.MergeClientRecords(
        pb.MergeClientRecordsRequest(
            association_id=association.id, source_id=source.id, target_id=target.id
        ),
        metadata=association.auth,
    )
    # No waiting: the stored group still names the merged record, the review leaves it out.
    right_after = await world.stub.ListDuplicates(
        pb.ListDuplicatesRequest(association_id=association.id), metadata=association.auth
    )
    assert list(right_after.groups) == []
    assert (await fresh_report(world, association)).totals.certain_groups == 0


@pytest.fixture
async def sessions(pg: DatabaseServer) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A membership database of its own and no service: no refresher runs behind the test."""
    url = await pg.migrated_database(Path(SPEC.migrations_dir), "membership")
    engine = create_engine(url, pool_size=4)
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()


async def test_a_record_written_during_a_refresh_waits_for_the_next_one(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The refresh reads the records and the changes in one snapshot and consumes only the
    changes it saw: a record committed meanwhile keeps its change, so the next pass has it."""
    association_id = uuid.uuid4()

    async def add(name: str) -> None:
        name_key, token_key = name_keys(name)
        async with sessions.begin() as session:
            session.add(
                ClientRecord(
                    id=uuid.uuid4(),
                    association_id=association_id,
                    company_name=name,
                    name_key=name_key,
                    token_key=token_key,
                    created_at=NOW,
                )
            )
            candidates.note_change(session, association_id, NOW)

    await add("Croix-Rouge de Marseille")
    async with sessions() as session, session.begin():
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        await session.execute(select(func.now()))  # the snapshot starts here
        await add("CROIX ROUGE DE MARSEILLE")  # committed after it
        refreshed = await candidates.refresh(session, association_id, NOW)
    assert refreshed is not None and refreshed.records == 1
    async with sessions.begin() as session:
        report = await session.get(DuplicateReport, association_id)
        assert report is not None and report.certain_groups == 0
        left = await session.scalar(
            select(func.count()).where(DuplicateChange.association_id == association_id)
        )
        assert left == 1, "the change committed during the refresh was consumed unseen"
        assert await candidates.is_stale(session, association_id)
    async with sessions() as session, session.begin():
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        again = await candidates.refresh(session, association_id, NOW)
    assert again is not None and again.records == 2 and again.groups == 1
    async with sessions.begin() as session:
        assert not await candidates.is_stale(session, association_id)


async def test_two_refreshes_of_one_association_do_not_run_at_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Replicas share the work: while one computes an association, another skips it."""
    association_id = uuid.uuid4()
    async with sessions.begin() as session:
        candidates.note_change(session, association_id, NOW)
    async with sessions() as first, first.begin():
        await first.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        assert await candidates.refresh(first, association_id, NOW) is not None
        async with sessions() as second, second.begin():
            await second.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            assert await candidates.refresh(second, association_id, NOW) is None
