"""Duplicate client records: the association's report (certain and probable groups, read from
the stored report that `candidates` keeps up to date), one record's candidates (the merge
screen), and audited merges that move every event to the target."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, and_, func, literal, or_, select, tuple_, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import FailedPrecondition, NotFound, Validator
from services.kit.paging import Page, page_token as _page_token, parse_page as _parse_page
from services.membership.domain import candidates, duplicates as dup
from services.membership.domain.candidates import keyed_records
from services.membership.domain.common import check_uuid, parse_uuid, require_association_admin
from services.membership.domain.normalise import MAX_EXTRA_WORDS, contained_keys
from services.membership.domain.records import (
    RecordView,
    audit_entry,
    record_for_admin,
    record_views,
)
from services.membership.models import (
    ClientRecord,
    ClientRecordAudit,
    CoverageRequest,
    DuplicateCandidateGroup,
    DuplicateReport,
    TrainingRegistration,
)


@dataclass(frozen=True)
class DuplicateGroupView:
    kind: str  # "certain" or "probable"
    key: str
    records: list[RecordView]


@dataclass(frozen=True)
class DuplicateTotals:
    records: int
    certain_groups: int
    certain_pairs: int
    probable_groups: int
    probable_pairs: int
    elapsed_ms: int
    # When the stored report was computed (None before its first computation), and whether
    # records changed since (the refresher is at it).
    computed_at: datetime | None = None
    stale: bool = False


async def detect_duplicates(
    session: AsyncSession, association_id: uuid.UUID
) -> tuple[dup.DuplicateReport[uuid.UUID], int]:
    """The full report over the stored keys, and the milliseconds it took."""
    started = time.perf_counter()
    rows = await keyed_records(session, association_id)
    report = dup.find_duplicates(rows)
    return report, round((time.perf_counter() - started) * 1000)


async def list_duplicates(
    *,
    session: AsyncSession,
    actor: Principal | None,
    association_id: str,
    kind: str,
    page_size: int,
    page_token: str,
) -> tuple[Page[DuplicateGroupView], DuplicateTotals]:
    """Certain groups, then probable groups, each by key, from the stored report
    (`candidates`): records merged or deleted since it was computed are left out, and a group
    left with one record is not shown. The totals are the report's."""
    parsed = parse_uuid("association_id", association_id)
    require_association_admin(actor, parsed)
    v = Validator()
    page = _parse_page(v, "duplicates", page_size, page_token, [int, str])
    v.raise_if_any()
    # Changes first, then the report: no change waiting at that moment means the report read
    # after it includes every write so far (read the other way round, a refresh committing in
    # between would pass an old report off as current).
    stale = await candidates.is_stale(session, parsed)
    stored = await session.get(DuplicateReport, parsed)
    totals = DuplicateTotals(
        records=stored.records if stored else 0,
        certain_groups=stored.certain_groups if stored else 0,
        certain_pairs=stored.certain_pairs if stored else 0,
        probable_groups=stored.probable_groups if stored else 0,
        probable_pairs=stored.probable_pairs if stored else 0,
        elapsed_ms=stored.elapsed_ms if stored else 0,
        computed_at=stored.computed_at if stored else None,
        stale=stale or stored is None,
    )
    query = select(DuplicateCandidateGroup).where(DuplicateCandidateGroup.association_id == parsed)
    if kind in ("certain", "probable"):
        chosen = candidates.CERTAIN if kind == "certain" else candidates.PROBABLE
        query = query.where(DuplicateCandidateGroup.kind == chosen)
    if page.after is not None:
        query = query.where(
            tuple_(DuplicateCandidateGroup.kind, DuplicateCandidateGroup.key)
            > tuple_(literal(int(page.after[0])), literal(str(page.after[1])))
        )
    rows = list(
        await session.scalars(
            query.order_by(DuplicateCandidateGroup.kind, DuplicateCandidateGroup.key).limit(
                page.size + 1
            )
        )
    )
    token = ""
    if len(rows) > page.size:
        rows = rows[: page.size]
        token = _page_token("duplicates", (rows[-1].kind, rows[-1].key))
    ids = {record_id for row in rows for record_id in row.record_ids}
    live = {
        r.id: r
        for r in await session.scalars(
            select(ClientRecord).where(
                ClientRecord.id.in_(ids), ClientRecord.merged_into_id.is_(None)
            )
        )
    }
    views = {view.record.id: view for view in await record_views(session, list(live.values()))}
    result = [
        DuplicateGroupView(
            "certain" if row.kind == candidates.CERTAIN else "probable",
            row.key,
            sorted((views[i] for i in row.record_ids if i in views), key=_by_number),
        )
        for row in rows
    ]
    return Page([group for group in result if len(group.records) > 1], token), totals


def _by_number(view: RecordView) -> int:
    return view.record.number


async def find_duplicates_of(
    *, session: AsyncSession, actor: Principal | None, association_id: str, record_id: str
) -> tuple[RecordView, list[tuple[str, RecordView]]]:
    """The merge screen: the record's certain duplicates (same folded name) and probable ones
    (its words contain, or are contained in, another's with at most two words more, or differ by
    one rare slip) — the pairs `ListDuplicates` counts, looked up through the indexes."""
    record = await record_for_admin(session, actor, association_id, record_id)
    live = and_(
        ClientRecord.association_id == record.association_id,
        ClientRecord.merged_into_id.is_(None),
        ClientRecord.id != record.id,
    )
    certain = list(
        await session.scalars(
            select(ClientRecord).where(live, ClientRecord.name_key == record.name_key)
        )
    )
    probable: list[ClientRecord] = []
    if record.token_key:
        words = record.token_key.split()
        smaller = [record.token_key, *contained_keys(record.token_key)]
        array = func.string_to_array(ClientRecord.token_key, " ")
        probable = list(
            await session.scalars(
                select(ClientRecord).where(
                    live,
                    ClientRecord.name_key != record.name_key,
                    or_(
                        ClientRecord.token_key.in_(smaller),
                        and_(
                            array.op("@>")(words),
                            func.cardinality(array) <= len(words) + MAX_EXTRA_WORDS,
                        )
                        if len(words) >= 2
                        else ClientRecord.token_key == record.token_key,
                    ),
                )
            )
        )
        probable += await _slipped(session, record, live)
    certain_views = await record_views(session, sorted(certain, key=lambda r: r.number))
    unique = {r.id: r for r in probable}
    probable_views = await record_views(session, sorted(unique.values(), key=lambda r: r.number))
    candidates = [("certain", view) for view in certain_views]
    candidates += [("probable", view) for view in probable_views]
    return (await record_views(session, [record]))[0], candidates


async def _slipped(
    session: AsyncSession, record: ClientRecord, live: ColumnElement[bool]
) -> list[ClientRecord]:
    """Records with the same words but one slipped (the rarity rule of `duplicates`), found
    through the words index: for each word, the records holding all the others."""
    words = record.token_key.split()
    if len(words) < 2:
        return []
    array = func.string_to_array(ClientRecord.token_key, " ")
    counts: dict[str, int] = {}

    async def count(word: str) -> int:
        if word not in counts:
            counts[word] = int(
                await session.scalar(
                    select(func.count()).where(
                        ClientRecord.association_id == record.association_id,
                        ClientRecord.merged_into_id.is_(None),
                        array.op("@>")([word]),
                    )
                )
                or 0
            )
        return counts[word]

    found: list[ClientRecord] = []
    for index, word in enumerate(words):
        if not word.isalpha() or len(word) < dup.TYPO_MIN_LENGTH - 1:
            continue
        rest = words[:index] + words[index + 1 :]
        candidates = await session.scalars(
            select(ClientRecord).where(
                live,
                ClientRecord.token_key != record.token_key,
                array.op("@>")(rest),
                func.cardinality(array) == len(words),
            )
        )
        for candidate in candidates:
            other = set(candidate.token_key.split()) - set(rest)
            if len(other) != 1:
                continue
            (slipped,) = other
            if not dup.one_slip(word, slipped):
                continue
            known = {word: await count(word), slipped: await count(slipped)}
            pair = dup.pair_kind(
                (record.name_key, record.token_key),
                (candidate.name_key, candidate.token_key),
                known,
            )
            if pair == "probable":
                found.append(candidate)
    return found


@dataclass(frozen=True)
class MergePreview:
    source: RecordView
    target: RecordView


async def _merge_pair(
    session: AsyncSession,
    actor: Principal | None,
    association_id: str,
    source_id: str,
    target_id: str,
    *,
    lock: bool,
) -> tuple[ClientRecord, ClientRecord]:
    v = Validator()
    association = check_uuid(v, "association_id", association_id)
    source_uuid = check_uuid(v, "source_id", source_id)
    target_uuid = check_uuid(v, "target_id", target_id)
    if source_uuid is not None and source_uuid == target_uuid:
        v.check(False, "target_id", "must differ from source_id")
    v.raise_if_any()
    assert association is not None
    require_association_admin(actor, association)
    # Both rows locked in one order: concurrent merges of the same records queue up, no deadlock.
    query = select(ClientRecord).where(ClientRecord.id.in_([source_uuid, target_uuid]))
    if lock:
        query = query.order_by(ClientRecord.id).with_for_update()
    found = {r.id: r for r in await session.scalars(query)}
    source, target = found.get(source_uuid), found.get(target_uuid)  # type: ignore[arg-type]
    for record, which in ((source, "source"), (target, "target")):
        if record is None or record.association_id != association:
            raise NotFound(f"{which} client record not found")
    assert source is not None and target is not None
    if source.merged_into_id is not None:
        into = await session.get(ClientRecord, source.merged_into_id)
        raise FailedPrecondition(
            f"client {source.number} was already merged into client "
            f"{into.number if into else source.merged_into_id}",
            reason="already_merged",
        )
    if target.merged_into_id is not None:
        into = await session.get(ClientRecord, target.merged_into_id)
        raise FailedPrecondition(
            f"client {target.number} was merged into client "
            f"{into.number if into else target.merged_into_id}: merge into that one instead",
            reason="target_merged",
        )
    return source, target


async def preview_merge(
    *,
    session: AsyncSession,
    actor: Principal | None,
    association_id: str,
    source_id: str,
    target_id: str,
) -> MergePreview:
    source, target = await _merge_pair(
        session, actor, association_id, source_id, target_id, lock=False
    )
    views = await record_views(session, [source, target])
    return MergePreview(views[0], views[1])


@dataclass(frozen=True)
class MergeResult:
    source: RecordView
    target: RecordView
    registrations_moved: int
    coverage_moved: int
    audit: ClientRecordAudit


async def merge_client_records(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    association_id: str,
    source_id: str,
    target_id: str,
) -> MergeResult:
    """Moves every event (training registrations, coverage requests) of the source to the
    target and marks the source merged; audited. Of two concurrent merges of one source, the
    second finds it merged and is refused with the number it went to."""
    source, target = await _merge_pair(
        session, actor, association_id, source_id, target_id, lock=True
    )
    moved_registrations = cast(
        "CursorResult[Any]",
        await session.execute(
            update(TrainingRegistration)
            .where(TrainingRegistration.client_record_id == source.id)
            .values(client_record_id=target.id)
        ),
    ).rowcount
    moved_coverage = cast(
        "CursorResult[Any]",
        await session.execute(
            update(CoverageRequest)
            .where(CoverageRequest.client_record_id == source.id)
            .values(client_record_id=target.id)
        ),
    ).rowcount
    source.merged_into_id = target.id
    source.merged_at = now
    candidates.note_change(session, source.association_id, now)
    # The target keeps its own details; what it lacks is taken from the source.
    target.siret = target.siret or source.siret
    target.email = target.email or source.email
    target.contact_name = target.contact_name or source.contact_name
    entry = audit_entry(
        session,
        now=now,
        actor=actor,
        event="merged",
        record=source,
        target=target,
        registrations_moved=moved_registrations,
        coverage_requests_moved=moved_coverage,
        source_name=source.company_name,
        target_name=target.company_name,
    )
    await session.flush()
    views = await record_views(session, [source, target])
    return MergeResult(views[0], views[1], int(moved_registrations), int(moved_coverage), entry)
