"""Bank details: a partner's change request, its proof document, an operator's decision.

The IBAN is checked (ISO 13616 checksum) and shown masked everywhere except to operators
deciding; a proof's declared type must match what its bytes are.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import AlreadyExists, FailedPrecondition, NotFound, Validator
from services.kit.paging import Page, keyset_after as _after, parse_page as _parse_page
from services.partners.domain.common import (
    NOTE_MAX,
    _fetch_page,
    _require,
    _require_operator,
    _store_for,
    _text,
    _timestamp,
    _uuid,
    _uuid_or_none,
    actor_label,
)
from services.partners.models import BankChangeStatus, BankDetailChange, ProofDocument, Store
from services.partners.settings import PartnersSettings

_BIC = re.compile(r"^[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$")
_IBAN = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")
_FILENAME_BAD = re.compile(r"[\x00-\x1f\x7f/\\]")

# Proof documents: the declared type must match what the bytes are.
PROOF_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
}


def iban_is_valid(iban: str) -> bool:
    """ISO 13616: shape, then the mod-97 check of the rearranged number."""
    if not _IBAN.match(iban):
        return False
    rearranged = iban[4:] + iban[:4]
    digits = "".join(str(int(char, 36)) for char in rearranged)
    return int(digits) % 97 == 1


def mask_iban(iban: str | None) -> str:
    if not iban:
        return ""
    return f"{iban[:4]} **** {iban[-4:]}"


def _normalise_iban(raw: str) -> str:
    return re.sub(r"\s+", "", raw).upper()


@dataclass(frozen=True)
class BankChangeView:
    change: BankDetailChange
    proof: ProofDocument | None


async def _bank_change_view(session: AsyncSession, change: BankDetailChange) -> BankChangeView:
    """The change with its proof's metadata (never the bytes: `deferred` would be one more
    round trip, so the columns are read explicitly)."""
    row = (
        await session.execute(
            select(
                ProofDocument.filename,
                ProofDocument.content_type,
                ProofDocument.size_bytes,
                ProofDocument.sha256,
                ProofDocument.uploaded_at,
            ).where(ProofDocument.change_id == change.id)
        )
    ).first()
    proof = None
    if row is not None:
        proof = ProofDocument(
            change_id=change.id,
            store_id=change.store_id,
            filename=row.filename,
            content_type=row.content_type,
            size_bytes=row.size_bytes,
            sha256=row.sha256,
            uploaded_at=row.uploaded_at,
        )
    return BankChangeView(change, proof)


async def submit_bank_detail_change(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    store_id: str,
    iban: str,
    bic: str,
    account_holder: str,
) -> BankChangeView:
    """New bank details wait for a proof from the bank and an operator's approval."""
    v = Validator()
    clean_iban = _normalise_iban(iban)
    clean_bic = _normalise_iban(bic)
    v.require("iban", clean_iban)
    if clean_iban and not iban_is_valid(clean_iban):
        v.check(False, "iban", "is not a valid IBAN", code="iban_checksum")
    v.require("bic", clean_bic)
    if clean_bic and not _BIC.match(clean_bic):
        v.check(
            False, "bic", "is not a valid BIC (8 or 11 characters)", code="string_pattern_mismatch"
        )
    holder = _text(v, "account_holder", account_holder, 200)
    v.raise_if_any()
    store = await _store_for(session, actor, store_id, manage=True)
    actor = _require(actor)
    change = BankDetailChange(
        id=uuid.uuid4(),
        store_id=store.id,
        iban=clean_iban,
        bic=clean_bic,
        account_holder=holder,
        status=BankChangeStatus.AWAITING_PROOF.value,
        requested_by=actor_label(actor),
        created_at=now,
        updated_at=now,
    )
    session.add(change)
    try:
        await session.flush()
    except IntegrityError:
        raise AlreadyExists(
            "a bank-detail change is already open for this store", reason="change_open"
        ) from None
    return BankChangeView(change, None)


async def _bank_change_of(
    session: AsyncSession, store: Store, change_id: str, *, lock: bool = False
) -> BankDetailChange:
    parsed = _uuid_or_none(change_id)
    query = select(BankDetailChange).where(
        BankDetailChange.id == parsed, BankDetailChange.store_id == store.id
    )
    if lock:
        query = query.with_for_update()
    change = None if parsed is None else await session.scalar(query)
    if change is None:
        raise NotFound("bank-detail change not found")
    return change


def check_proof(
    v: Validator, *, filename: str, content_type: str, content: bytes, max_bytes: int
) -> str:
    """Size, type, and bytes that are what the type says; returns the clean file name."""
    name = filename.strip()
    v.require("filename", name)
    if len(name) > 200 or _FILENAME_BAD.search(name):
        v.check(False, "filename", "must be a plain file name of at most 200 characters")
    kind = content_type.split(";", 1)[0].strip().lower()
    signatures = PROOF_SIGNATURES.get(kind)
    if signatures is None:
        v.check(
            False,
            "content_type",
            "must be application/pdf, image/png or image/jpeg",
            code="content_type",
        )
    if not content:
        v.check(False, "content", "is empty", code="empty_file")
    elif len(content) > max_bytes:
        v.check(False, "content", f"is larger than {max_bytes} bytes", code="file_too_large")
    elif signatures is not None and not content.startswith(signatures):
        v.check(False, "content", f"is not a {kind} document", code="content_mismatch")
    return name


async def upload_bank_detail_proof(
    *,
    session: AsyncSession,
    settings: PartnersSettings,
    actor: Principal | None,
    now: datetime,
    store_id: str,
    change_id: str,
    filename: str,
    content_type: str,
    content: bytes,
) -> BankChangeView:
    """The bank's proof; a new upload replaces the previous one until an operator decides."""
    v = Validator()
    name = check_proof(
        v,
        filename=filename,
        content_type=content_type,
        content=content,
        max_bytes=settings.proof_max_bytes,
    )
    v.raise_if_any()
    store = await _store_for(session, actor, store_id, manage=True)
    actor = _require(actor)
    change = await _bank_change_of(session, store, change_id, lock=True)
    if change.status not in (BankChangeStatus.AWAITING_PROOF, BankChangeStatus.PROOF_SUBMITTED):
        raise FailedPrecondition(
            f"this change is {change.status}: no proof can be added", reason="change_decided"
        )
    document = await session.get(ProofDocument, change.id)
    if document is None:
        document = ProofDocument(change_id=change.id, store_id=store.id)
        session.add(document)
    document.filename = name
    document.content_type = content_type.split(";", 1)[0].strip().lower()
    document.size_bytes = len(content)
    document.sha256 = hashlib.sha256(content).hexdigest()
    document.content = content
    document.uploaded_by = actor_label(actor)
    document.uploaded_at = now
    change.status = BankChangeStatus.PROOF_SUBMITTED.value
    change.updated_at = now
    await session.flush()
    return await _bank_change_view(session, change)


async def list_bank_detail_changes(
    *,
    session: AsyncSession,
    actor: Principal | None,
    store_id: str,
    status: str,
    page_size: int,
    page_token: str,
) -> Page[BankChangeView]:
    """A store's own changes (newest first); operators may list every store's by status."""
    v = Validator()
    if status and status not in {s.value for s in BankChangeStatus}:
        v.check(False, "status", "is not a bank-detail change status")
    page = _parse_page(
        v, "bank-changes", page_size, page_token, [_timestamp, uuid.UUID], f"{store_id}|{status}"
    )
    v.raise_if_any()
    conditions: list[ColumnElement[bool]] = []
    if store_id.strip():
        store = await _store_for(session, actor, store_id, manage=False)
        conditions.append(BankDetailChange.store_id == store.id)
    else:
        _require_operator(actor)
    if status:
        conditions.append(BankDetailChange.status == status)
    columns = [BankDetailChange.created_at, BankDetailChange.id]
    query = (
        select(BankDetailChange)
        .where(*conditions, *_after(page, columns, descending=True))
        .order_by(BankDetailChange.created_at.desc(), BankDetailChange.id.desc())
    )
    found = await _fetch_page(
        session,
        query,
        page,
        "bank-changes",
        lambda c: (c.created_at.isoformat(), c.id),
        f"{store_id}|{status}",
    )
    views = [await _bank_change_view(session, change) for change in found.items]
    return Page(views, found.next_page_token)


async def get_bank_detail_proof(
    *, session: AsyncSession, actor: Principal | None, store_id: str, change_id: str
) -> ProofDocument:
    """The proof goes to its own store and to operators; to anyone else it does not exist."""
    parsed = _uuid_or_none(change_id)
    if store_id.strip():
        store = await _store_for(session, actor, store_id, manage=False)
        document = None
        if parsed is not None:
            document = await session.scalar(
                select(ProofDocument).where(
                    ProofDocument.change_id == parsed, ProofDocument.store_id == store.id
                )
            )
    else:
        _require_operator(actor)
        document = None if parsed is None else await session.get(ProofDocument, parsed)
    if document is None:
        raise NotFound("proof not found")
    return document


async def decide_bank_detail_change(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    change_id: str,
    approve: bool,
    reason: str,
) -> BankChangeView:
    """Operators approve (the store's bank details change now) or reject with a reason. Only a
    change with an uploaded proof can be decided."""
    actor = _require_operator(actor)
    v = Validator()
    parsed = _uuid(v, "change_id", change_id)
    clean_reason = _text(v, "reason", reason, NOTE_MAX, required=not approve, lines=True)
    v.raise_if_any()
    change = await session.get(BankDetailChange, parsed, with_for_update=True)
    if change is None:
        raise NotFound("bank-detail change not found")
    if change.status == BankChangeStatus.AWAITING_PROOF:
        raise FailedPrecondition(
            "no proof from the bank has been uploaded for this change", reason="proof_missing"
        )
    if change.status != BankChangeStatus.PROOF_SUBMITTED:
        raise FailedPrecondition(f"this change is already {change.status}", reason="decided")
    if approve:
        store = await session.get(Store, change.store_id, with_for_update=True)
        assert store is not None
        store.iban = change.iban
        store.bic = change.bic
        store.account_holder = change.account_holder
        store.updated_at = now
    change.status = (BankChangeStatus.APPROVED if approve else BankChangeStatus.REJECTED).value
    change.decision_reason = clean_reason or None
    change.decided_by = actor_label(actor)
    change.decided_at = now
    change.updated_at = now
    return await _bank_change_view(session, change)
