"""Client records of an association: matched or created with every public request (client
number, SIRET, exact name), listed, deleted once empty, audited, and imported in bulk."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Validator,
)
from services.kit.paging import Page, keyset_after as _after, parse_page as _parse_page
from services.membership.domain.candidates import note_change
from services.membership.domain.common import (
    ASSOCIATION_KIND,
    Directory,
    actor_id,
    association_and,
    check_siret,
    check_text,
    check_uuid,
    fetch_page,
    is_ops_admin,
    parse_uuid,
    require_actor,
    require_association_admin,
    require_organisation,
)
from services.membership.domain.normalise import clean, fold, name_keys
from services.membership.models import (
    ClientRecord,
    ClientRecordAudit,
    CoverageRequest,
    TrainingRegistration,
)

MAX_IMPORT = 10_000
# An import this large refreshes the table's planner statistics (`import_client_records`).
ANALYZE_AFTER_IMPORT = 1_000
DELETE_CONFIRMATIONS = frozenset({"SUPPRIMER", "DELETE"})
_SIMPLE_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class RequesterInput:
    company_name: str
    siret: str
    client_number: int
    email: str
    contact_name: str


async def lock_keys(session: AsyncSession, keys: Iterable[str]) -> None:
    """Transaction-scoped advisory locks, always taken in the same order (no deadlock)."""
    for key in sorted(set(keys)):
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key}
        )


async def live_record(session: AsyncSession, record: ClientRecord) -> ClientRecord:
    """A merged record's number still leads to the record its events went to. The record is
    returned share-locked: a merge or a deletion of it waits until the new event is committed
    (and then moves it, or refuses to delete a record that is not empty)."""
    for _ in range(32):
        await session.refresh(record, with_for_update={"read": True})
        if record.merged_into_id is None:
            return record
        target = await session.get(ClientRecord, record.merged_into_id)
        if target is None:
            break
        record = target
    return record


async def resolve_client_record(
    session: AsyncSession,
    *,
    now: datetime,
    association_id: uuid.UUID,
    requester: RequesterInput,
    field_prefix: str,
) -> tuple[ClientRecord, bool]:
    """The record a request belongs to: the client number if given, else a record with the same
    SIRET, else one with exactly the same company name; otherwise a new record. Returns
    (record, created). Concurrent requests from the same company serialise on advisory locks,
    so they never create two records."""
    v = Validator()
    name = check_text(v, f"{field_prefix}company_name", requester.company_name)
    siret = check_siret(v, f"{field_prefix}siret", requester.siret)
    v.check(
        requester.client_number >= 0,
        f"{field_prefix}client_number",
        "must be positive",
        code="greater_than_equal",
    )
    v.raise_if_any()
    if requester.client_number:
        found = await session.scalar(
            select(ClientRecord).where(
                ClientRecord.association_id == association_id,
                ClientRecord.number == requester.client_number,
            )
        )
        if found is None:
            raise InvalidArgument(
                [
                    (
                        f"{field_prefix}client_number",
                        "is not a client number of this association",
                        "unknown_client_number",
                    )
                ]
            )
        return await live_record(session, found), False
    keys = [f"client-name:{association_id}:{name}"]
    if siret:
        keys.append(f"client-siret:{association_id}:{siret}")
    await lock_keys(session, keys)
    live = and_(
        ClientRecord.association_id == association_id, ClientRecord.merged_into_id.is_(None)
    )
    record = None
    if siret:
        record = await session.scalar(
            select(ClientRecord)
            .where(live, ClientRecord.siret == siret)
            .order_by(ClientRecord.number)
            .limit(1)
            .with_for_update(read=True)
        )
    if record is None:
        record = await session.scalar(
            select(ClientRecord)
            .where(live, ClientRecord.company_name == name)
            .order_by(ClientRecord.number)
            .limit(1)
            .with_for_update(read=True)
        )
    if record is not None:
        if siret and not record.siret:
            record.siret = siret
        if requester.email and not record.email:
            record.email = requester.email
        return record, False
    name_key, token_key = name_keys(name)
    record = ClientRecord(
        id=uuid.uuid4(),
        association_id=association_id,
        company_name=name,
        siret=siret,
        email=requester.email or None,
        contact_name=requester.contact_name or None,
        name_key=name_key,
        token_key=token_key,
        created_at=now,
    )
    session.add(record)
    note_change(session, association_id, now)
    await session.flush()
    await session.refresh(record, ["number"])
    return record, True


def client_number_text(record: ClientRecord, created: bool) -> str:
    if created:
        return (
            f"Votre numéro client est le {record.number}. Indiquez-le dans vos prochaines "
            "demandes (formations, dispositifs de secours) : il nous évite de créer une "
            "nouvelle fiche."
        )
    return f"Votre numéro client : {record.number}."


# ================================================================================================
# Lists, deletions, audit, imports (duplicates and merges: `merges`)
# ================================================================================================


@dataclass(frozen=True)
class RecordView:
    record: ClientRecord
    registrations: int
    coverage_requests: int


async def _event_counts(
    session: AsyncSession, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, tuple[int, int]]:
    wanted = list(set(ids))
    counts = {record_id: (0, 0) for record_id in wanted}
    if not wanted:
        return counts
    registrations = {
        record_id: count
        for record_id, count in await session.execute(
            select(TrainingRegistration.client_record_id, func.count())
            .where(TrainingRegistration.client_record_id.in_(wanted))
            .group_by(TrainingRegistration.client_record_id)
        )
    }
    coverage = {
        record_id: count
        for record_id, count in await session.execute(
            select(CoverageRequest.client_record_id, func.count())
            .where(CoverageRequest.client_record_id.in_(wanted))
            .group_by(CoverageRequest.client_record_id)
        )
    }
    return {
        record_id: (int(registrations.get(record_id, 0)), int(coverage.get(record_id, 0)))
        for record_id in wanted
    }


async def record_views(session: AsyncSession, records: Sequence[ClientRecord]) -> list[RecordView]:
    counts = await _event_counts(session, (r.id for r in records))
    return [RecordView(r, *counts[r.id]) for r in records]


async def record_for_admin(
    session: AsyncSession, actor: Principal | None, association_id: str, record_id: str
) -> ClientRecord:
    association, parsed = association_and(actor, association_id, "record_id", record_id)
    record = await session.get(ClientRecord, parsed)
    if record is None or record.association_id != association:
        raise NotFound("client record not found")
    return record


async def list_client_records(
    *,
    session: AsyncSession,
    actor: Principal | None,
    association_id: str,
    name_prefix: str,
    page_size: int,
    page_token: str,
) -> Page[RecordView]:
    """Live records by folded name (merged ones are left out), optionally by name prefix."""
    parsed = parse_uuid("association_id", association_id)
    require_association_admin(actor, parsed)
    v = Validator()
    page = _parse_page(v, "client-records", page_size, page_token, [str, int])
    v.raise_if_any()
    columns = [ClientRecord.name_key, ClientRecord.number]
    query = (
        select(ClientRecord)
        .where(
            ClientRecord.association_id == parsed,
            ClientRecord.merged_into_id.is_(None),
            *_after(page, columns),
        )
        .order_by(*columns)
    )
    prefix = fold(name_prefix)
    if prefix:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(ClientRecord.name_key.like(f"{escaped}%", escape="\\"))
    result = await fetch_page(
        session, query, page, "client-records", lambda r: (r.name_key, r.number)
    )
    return Page(await record_views(session, result.items), result.next_page_token)


async def get_client_record(
    *, session: AsyncSession, actor: Principal | None, association_id: str, record_id: str
) -> RecordView:
    record = await record_for_admin(session, actor, association_id, record_id)
    return (await record_views(session, [record]))[0]


def audit_entry(
    session: AsyncSession,
    *,
    now: datetime,
    actor: Principal | None,
    event: str,
    record: ClientRecord,
    target: ClientRecord | None = None,
    **detail: object,
) -> ClientRecordAudit:
    entry = ClientRecordAudit(
        id=uuid.uuid4(),
        association_id=record.association_id,
        event=event,
        record_id=record.id,
        record_number=record.number,
        target_id=target.id if target else None,
        target_number=target.number if target else None,
        detail={key: str(value) for key, value in detail.items() if value is not None},
        actor_id=actor_id(actor),
        at=now,
    )
    session.add(entry)
    return entry


async def delete_client_record(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    association_id: str,
    record_id: str,
    confirmation: str,
) -> ClientRecordAudit:
    """The deliberate, irreversible step after a merge: only a record without events, and only
    with the confirmation word."""
    v = Validator()
    v.check(
        confirmation.strip().upper() in DELETE_CONFIRMATIONS,
        "confirmation",
        "type SUPPRIMER (or DELETE) to confirm: deletion cannot be undone",
    )
    v.raise_if_any()
    record = await record_for_admin(session, actor, association_id, record_id)
    await session.refresh(record, with_for_update=True)
    registrations, coverage = (await _event_counts(session, [record.id]))[record.id]
    if registrations or coverage:
        raise FailedPrecondition(
            f"client {record.number} still has {registrations} training registration(s) and "
            f"{coverage} coverage request(s): merge them into another record first",
            reason="record_not_empty",
        )
    # Records merged into this one now point where this one went (or nowhere).
    await session.execute(
        update(ClientRecord)
        .where(ClientRecord.merged_into_id == record.id)
        .values(merged_into_id=record.merged_into_id)
    )
    entry = audit_entry(
        session,
        now=now,
        actor=actor,
        event="deleted",
        record=record,
        company_name=record.company_name,
        siret=record.siret,
        merged_into=record.merged_into_id,
    )
    await session.execute(delete(ClientRecord).where(ClientRecord.id == record.id))
    note_change(session, record.association_id, now)
    await session.flush()
    return entry


async def list_client_record_audit(
    *,
    session: AsyncSession,
    actor: Principal | None,
    association_id: str,
    page_size: int,
    page_token: str,
) -> Page[ClientRecordAudit]:
    parsed = parse_uuid("association_id", association_id)
    require_association_admin(actor, parsed)
    v = Validator()
    page = _parse_page(v, "record-audit", page_size, page_token, [int])
    v.raise_if_any()
    query = (
        select(ClientRecordAudit)
        .where(
            ClientRecordAudit.association_id == parsed,
            *_after(page, [ClientRecordAudit.seq], descending=True),
        )
        .order_by(ClientRecordAudit.seq.desc())
    )
    return await fetch_page(session, query, page, "record-audit", lambda e: (e.seq,))


@dataclass(frozen=True)
class ImportedRecord:
    external_ref: str
    company_name: str
    siret: str
    email: str
    contact_name: str


async def import_client_records(
    *,
    session: AsyncSession,
    directory: Directory,
    actor: Principal | None,
    now: datetime,
    association_id: str,
    records: Sequence[ImportedRecord],
) -> tuple[int, int]:
    """Bulk load (ops_admin or a service): keys computed here, one INSERT … SELECT unnest per
    call, a ref already imported is skipped. Returns (inserted, skipped)."""
    actor = require_actor(actor)
    if not (actor.is_service or is_ops_admin(actor)):
        raise PermissionDenied("bulk imports are for operators (ops_admin) and services")
    v = Validator()
    parsed = check_uuid(v, "association_id", association_id)
    v.check(len(records) <= MAX_IMPORT, "records", f"at most {MAX_IMPORT} records per call")
    columns: dict[str, list[Any]] = {
        name: []
        for name in (
            "id",
            "external_ref",
            "company_name",
            "siret",
            "email",
            "contact_name",
            "name_key",
            "token_key",
        )
    }
    for index, item in enumerate(records):
        if len(v.violations) >= 20:
            break
        ref = item.external_ref.strip()
        name = clean(item.company_name)
        v.check(0 < len(ref) <= 64, f"records[{index}].external_ref", "is required (64 at most)")
        v.check(0 < len(name) <= 200, f"records[{index}].company_name", "is required (200 at most)")
        siret = check_siret(v, f"records[{index}].siret", item.siret)
        email = item.email.strip()
        v.check(
            not email or (len(email) <= 320 and bool(_SIMPLE_EMAIL.match(email))),
            f"records[{index}].email",
            "is not an e-mail address",
        )
        name_key, token_key = name_keys(name)
        columns["id"].append(uuid.uuid4())
        columns["external_ref"].append(ref)
        columns["company_name"].append(name)
        columns["siret"].append(siret)
        columns["email"].append(email or None)
        columns["contact_name"].append(clean(item.contact_name)[:200] or None)
        columns["name_key"].append(name_key)
        columns["token_key"].append(token_key)
    v.raise_if_any()
    assert parsed is not None
    await require_organisation(directory, parsed, kind=ASSOCIATION_KIND, field="association_id")
    if not records:
        return 0, 0
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    status = await driver.execute(
        """
        INSERT INTO client_records (id, association_id, external_ref, company_name, siret, email,
                                    contact_name, name_key, token_key, created_at)
        SELECT r.id, $1, r.external_ref, r.company_name, r.siret, r.email, r.contact_name,
               r.name_key, r.token_key, $2
        FROM unnest($3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                    $9::text[], $10::text[])
             AS r(id, external_ref, company_name, siret, email, contact_name, name_key, token_key)
        ON CONFLICT (association_id, external_ref) DO NOTHING
        """,
        parsed,
        now,
        *columns.values(),
    )
    inserted = int(status.rsplit(" ", 1)[-1])
    if inserted and parsed is not None:
        note_change(session, parsed, now)
    if inserted >= ANALYZE_AFTER_IMPORT:
        # Fresh statistics for the next query, not whenever autovacuum gets to the table: planned
        # on a table it still believed empty, the merge screen's look-up of one record's
        # duplicates read all 100,000 records of the demo (121 ms) instead of two indexes (0.4 ms).
        # ANALYZE counts the rows this transaction inserted, and blocks no reader nor writer.
        await driver.execute("ANALYZE client_records")
    return inserted, len(records) - inserted
