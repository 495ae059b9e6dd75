"""Duplicate client records at 10,000 and 100,000: time, precision and recall, beside brute force.

For each size it generates records with known duplicates (`services.membership.samples`: copies,
capitals, accents, word order, abbreviations, added words, typos, and a few different
organisations deliberately named alike), loads them into a real PostgreSQL through the
membership service's bulk import (keys computed at write time), then times the detection the
`ListDuplicates` RPC runs: one query for the stored keys, then grouping in dicts. Precision and
recall are measured on every pair of records of the same generated organisation.

The baseline is the brute-force pairwise comparison of the same definition
(`duplicates.pair_kind`) over every pair: it runs on a sample and is scaled to n(n-1)/2 pairs.
The sample (whole organisations plus random records) also checks that both find exactly the same
pairs.

Done when: 100,000 records in at most 5 s, precision >= 0.95, recall >= 0.9.
Run: `make bench` (or `python -m bench.duplicates --sizes 10000 100000`).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.kit.auth import Principal
from services.kit.db import create_engine, create_session_factory, upgrade
from services.kit.testing import database_server
from services.membership.domain import duplicates as dup
from services.membership.domain.candidates import keyed_records
from services.membership.domain.common import ASSOCIATION_KIND, OrganisationInfo
from services.membership.domain.merges import detect_duplicates
from services.membership.domain.records import MAX_IMPORT, ImportedRecord, import_client_records
from services.membership.models import ClientRecord
from services.membership.samples import SampleRecord, generate, score, truth_pairs
from services.membership.servicer import SPEC

TARGET_SECONDS = 5.0
TARGET_PRECISION = 0.95
TARGET_RECALL = 0.9
# The bulk import accepts service principals; the benchmark acts as one.
BENCH = Principal(subject="bench", kind="service", token="")


class BenchAssociations:
    """The bench's directory: every id it imports under is an association (no identity runs)."""

    async def organisation(self, organisation_id: uuid.UUID) -> OrganisationInfo:
        return OrganisationInfo(organisation_id, ASSOCIATION_KIND, "Bench")


@dataclass
class Figures:
    size: int
    load_seconds: float
    detect_seconds: list[float]
    records: int
    certain_groups: int
    certain_pairs: int
    probable_groups: int
    probable_pairs: int
    truth: int
    certain_precision: float
    certain_recall: float
    precision: float
    recall: float
    brute_pairs_per_second: float
    brute_seconds_projected: float
    brute_sample: int
    agree: bool

    @property
    def best(self) -> float:
        return min(self.detect_seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.detect_seconds)


async def load(
    sessions: async_sessionmaker[AsyncSession], association: uuid.UUID, records: list[SampleRecord]
) -> float:
    started = time.perf_counter()
    for start in range(0, len(records), MAX_IMPORT):
        chunk = records[start : start + MAX_IMPORT]
        async with sessions.begin() as session:
            await import_client_records(
                session=session,
                directory=BenchAssociations(),
                actor=BENCH,
                now=datetime.now(UTC),
                association_id=str(association),
                records=[
                    ImportedRecord(
                        external_ref=r.external_ref,
                        company_name=r.company_name,
                        siret=r.siret,
                        email=r.email,
                        contact_name=r.contact_name,
                    )
                    for r in chunk
                ],
            )
    return time.perf_counter() - started


def brute_force(
    rows: list[tuple[uuid.UUID, str, str]],
    entity_of: dict[uuid.UUID, int],
    report: dup.DuplicateReport[uuid.UUID],
    sample_size: int,
) -> tuple[float, int, bool]:
    """Pairs per second of the pairwise definition on a sample; whether it finds exactly the
    pairs the grouped detection found among the same records."""
    rng = random.Random(7)
    by_entity: dict[int, list[tuple[uuid.UUID, str, str]]] = {}
    for row in rows:
        by_entity.setdefault(entity_of[row[0]], []).append(row)
    sample: list[tuple[uuid.UUID, str, str]] = []
    entities = list(by_entity)
    rng.shuffle(entities)
    for entity in entities:
        if len(sample) >= sample_size // 2:
            break
        sample += by_entity[entity]
    chosen = {row[0] for row in sample}
    sample += [row for row in rng.sample(rows, sample_size) if row[0] not in chosen]
    sample = sample[:sample_size]
    counts = dup.word_counts(rows)
    started = time.perf_counter()
    found = set()
    compared = 0
    for a, b in itertools.combinations(sample, 2):
        compared += 1
        if dup.pair_kind((a[1], a[2]), (b[1], b[2]), counts):
            found.add(frozenset((a[0], b[0])))
    elapsed = time.perf_counter() - started
    ids = {row[0] for row in sample}
    name_key_of = {row[0]: row[1] for row in rows}
    grouped = {
        frozenset(pair)
        for pair in itertools.chain(
            dup.certain_pairs(report), dup.probable_pairs(report, name_key_of)
        )
        if pair[0] in ids and pair[1] in ids
    }
    return compared / elapsed, len(sample), grouped == found


async def measure(admin_url_db: str, size: int, runs: int, brute_sample: int) -> Figures:
    engine = create_engine(admin_url_db, pool_size=2)
    sessions = create_session_factory(engine)
    try:
        records = generate(size, seed=size, ref_prefix=f"bench{size}")
        association = uuid.uuid4()
        load_seconds = await load(sessions, association, records)
        timings: list[float] = []
        report: dup.DuplicateReport[uuid.UUID] | None = None
        for _ in range(runs):
            async with sessions.begin() as session:
                started = time.perf_counter()
                report, _ = await detect_duplicates(session, association)
                timings.append(time.perf_counter() - started)
        assert report is not None
        async with sessions.begin() as session:
            rows = await keyed_records(session, association)
            found = await session.execute(
                select(ClientRecord.id, ClientRecord.external_ref).where(
                    ClientRecord.association_id == association
                )
            )
            refs = {record_id: ref for record_id, ref in found}
    finally:
        await engine.dispose()
    entity_by_ref = {r.external_ref: r.entity for r in records}
    entity_of = {record_id: entity_by_ref[ref] for record_id, ref in refs.items() if ref}
    truth = truth_pairs(entity_of.items())
    name_key_of = {row[0]: row[1] for row in rows}
    certain = score(dup.certain_pairs(report), truth)
    overall = score(
        itertools.chain(dup.certain_pairs(report), dup.probable_pairs(report, name_key_of)), truth
    )
    rate, sampled, agree = brute_force(rows, entity_of, report, brute_sample)
    return Figures(
        size=size,
        load_seconds=load_seconds,
        detect_seconds=timings,
        records=report.records,
        certain_groups=len(report.certain),
        certain_pairs=report.certain_pairs,
        probable_groups=len(report.probable),
        probable_pairs=report.probable_pairs,
        truth=len(truth),
        certain_precision=certain.precision,
        certain_recall=certain.recall,
        precision=overall.precision,
        recall=overall.recall,
        brute_pairs_per_second=rate,
        brute_seconds_projected=size * (size - 1) / 2 / rate,
        brute_sample=sampled,
        agree=agree,
    )


def report_line(f: Figures) -> str:
    return "\n".join(
        [
            f"{f.size:>7,} records  (bulk import {f.load_seconds:.1f} s)",
            f"  detection (keys query + grouping): best {f.best:.2f} s, median {f.median:.2f} s "
            f"over {len(f.detect_seconds)} runs",
            f"  certain : {f.certain_groups:,} groups, {f.certain_pairs:,} pairs "
            f"(precision {f.certain_precision:.4f}, recall of all duplicates "
            f"{f.certain_recall:.4f})",
            f"  probable: {f.probable_groups:,} groups, {f.probable_pairs:,} pairs",
            f"  certain + probable vs {f.truth:,} true pairs: precision {f.precision:.4f}, "
            f"recall {f.recall:.4f}",
            f"  brute force ({f.brute_sample:,}-record sample, same definition): "
            f"{f.brute_pairs_per_second:,.0f} pairs/s -> {f.brute_seconds_projected:,.0f} s "
            f"projected for all pairs; grouped detection is "
            f"{f.brute_seconds_projected / f.best:,.0f}x faster; same pairs on the sample: "
            f"{'yes' if f.agree else 'NO'}",
        ]
    )


async def main_async(sizes: list[int], runs: int, brute_sample: int) -> int:
    failed = False
    with database_server() as server:
        url = await server.new_database("bench_duplicates")
        await upgrade(SPEC.migrations_dir, url)
        for size in sizes:
            figures = await measure(url, size, runs, brute_sample)
            print(report_line(figures), flush=True)
            if size >= 100_000:
                ok = (
                    figures.best <= TARGET_SECONDS
                    and figures.precision >= TARGET_PRECISION
                    and figures.recall >= TARGET_RECALL
                    and figures.agree
                )
                print(
                    f"  target (<= {TARGET_SECONDS:.0f} s, precision >= {TARGET_PRECISION}, "
                    f"recall >= {TARGET_RECALL}): {'met' if ok else 'MISSED'}",
                    flush=True,
                )
                failed |= not ok
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--brute-sample", type=int, default=3_000)
    options = parser.parse_args()
    return asyncio.run(main_async(options.sizes, options.runs, options.brute_sample))


if __name__ == "__main__":
    raise SystemExit(main())
