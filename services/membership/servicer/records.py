"""The association portal's RPCs for client records: lists, duplicates, merges,
deletions, audit and bulk imports."""

from __future__ import annotations

from guichet.membership.v1 import membership_pb2 as pb

from services.kit.auth import current_principal
from services.membership.domain.merges import (
    find_duplicates_of,
    list_duplicates,
    merge_client_records,
    preview_merge,
)
from services.membership.domain.records import (
    ImportedRecord,
    RecordView,
    delete_client_record,
    get_client_record,
    import_client_records,
    list_client_record_audit,
    list_client_records,
)
from services.membership.models import ClientRecordAudit
from services.membership.servicer.base import Context, ServicerBase, name_of, proto_page, proto_time

_DUPLICATE_KIND = {"certain": pb.DUPLICATE_KIND_CERTAIN, "probable": pb.DUPLICATE_KIND_PROBABLE}


def record_to_proto(view: RecordView) -> pb.ClientRecord:
    r = view.record
    return pb.ClientRecord(
        id=str(r.id),
        association_id=str(r.association_id),
        number=r.number,
        company_name=r.company_name,
        siret=r.siret or "",
        email=r.email or "",
        contact_name=r.contact_name or "",
        registration_count=view.registrations,
        coverage_count=view.coverage_requests,
        merged_into_id=str(r.merged_into_id) if r.merged_into_id else "",
        create_time=proto_time(r.created_at),
    )


def audit_to_proto(entry: ClientRecordAudit) -> pb.ClientRecordAuditEntry:
    return pb.ClientRecordAuditEntry(
        id=str(entry.id),
        association_id=str(entry.association_id),
        event=entry.event,
        record_id=str(entry.record_id),
        record_number=entry.record_number,
        target_id=str(entry.target_id) if entry.target_id else "",
        target_number=entry.target_number or 0,
        detail={key: str(value) for key, value in entry.detail.items()},
        actor_id=entry.actor_id,
        time=proto_time(entry.at),
    )


class RecordRpcs(ServicerBase):
    """Client records: lists, duplicates, merges, deletions, audit, imports."""

    # --- client records ---------------------------------------------------------------------------

    async def ListClientRecords(
        self, request: pb.ListClientRecordsRequest, context: Context
    ) -> pb.ListClientRecordsResponse:
        async with self._sessions.begin() as session:
            page = await list_client_records(
                session=session,
                actor=current_principal(),
                association_id=request.association_id,
                name_prefix=request.name_prefix,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListClientRecordsResponse(
            records=[record_to_proto(r) for r in page.items], page=proto_page(page.next_page_token)
        )

    async def GetClientRecord(
        self, request: pb.GetClientRecordRequest, context: Context
    ) -> pb.GetClientRecordResponse:
        async with self._sessions.begin() as session:
            view = await get_client_record(
                session=session,
                actor=current_principal(),
                association_id=request.association_id,
                record_id=request.record_id,
            )
        return pb.GetClientRecordResponse(record=record_to_proto(view))

    async def ListDuplicates(
        self, request: pb.ListDuplicatesRequest, context: Context
    ) -> pb.ListDuplicatesResponse:
        async with self._sessions.begin() as session:
            page, totals = await list_duplicates(
                session=session,
                actor=current_principal(),
                association_id=request.association_id,
                kind=name_of(request.kind, _DUPLICATE_KIND),
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListDuplicatesResponse(
            groups=[
                pb.DuplicateGroup(
                    kind=_DUPLICATE_KIND[g.kind],
                    key=g.key,
                    records=[record_to_proto(r) for r in g.records],
                )
                for g in page.items
            ],
            totals=pb.DuplicateTotals(
                records=totals.records,
                certain_groups=totals.certain_groups,
                certain_pairs=totals.certain_pairs,
                probable_groups=totals.probable_groups,
                probable_pairs=totals.probable_pairs,
                elapsed_ms=totals.elapsed_ms,
                computed_at=proto_time(totals.computed_at),
                stale=totals.stale,
            ),
            page=proto_page(page.next_page_token),
        )

    async def FindDuplicatesOf(
        self, request: pb.FindDuplicatesOfRequest, context: Context
    ) -> pb.FindDuplicatesOfResponse:
        async with self._sessions.begin() as session:
            record, candidates = await find_duplicates_of(
                session=session,
                actor=current_principal(),
                association_id=request.association_id,
                record_id=request.record_id,
            )
        return pb.FindDuplicatesOfResponse(
            record=record_to_proto(record),
            candidates=[
                pb.DuplicateCandidate(kind=_DUPLICATE_KIND[kind], record=record_to_proto(view))
                for kind, view in candidates
            ],
        )

    async def PreviewMerge(
        self, request: pb.PreviewMergeRequest, context: Context
    ) -> pb.PreviewMergeResponse:
        async with self._sessions.begin() as session:
            preview = await preview_merge(
                session=session,
                actor=current_principal(),
                association_id=request.association_id,
                source_id=request.source_id,
                target_id=request.target_id,
            )
        return pb.PreviewMergeResponse(
            source=record_to_proto(preview.source),
            target=record_to_proto(preview.target),
            registrations_to_move=preview.source.registrations,
            coverage_requests_to_move=preview.source.coverage_requests,
        )

    async def MergeClientRecords(
        self, request: pb.MergeClientRecordsRequest, context: Context
    ) -> pb.MergeClientRecordsResponse:
        async with self._sessions.begin() as session:
            result = await merge_client_records(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                association_id=request.association_id,
                source_id=request.source_id,
                target_id=request.target_id,
            )
        self._records_changed()
        return pb.MergeClientRecordsResponse(
            source=record_to_proto(result.source),
            target=record_to_proto(result.target),
            registrations_moved=result.registrations_moved,
            coverage_requests_moved=result.coverage_moved,
            audit=audit_to_proto(result.audit),
        )

    async def DeleteClientRecord(
        self, request: pb.DeleteClientRecordRequest, context: Context
    ) -> pb.DeleteClientRecordResponse:
        async with self._sessions.begin() as session:
            entry = await delete_client_record(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                association_id=request.association_id,
                record_id=request.record_id,
                confirmation=request.confirmation,
            )
        self._records_changed()
        return pb.DeleteClientRecordResponse(audit=audit_to_proto(entry))

    async def ListClientRecordAudit(
        self, request: pb.ListClientRecordAuditRequest, context: Context
    ) -> pb.ListClientRecordAuditResponse:
        async with self._sessions.begin() as session:
            page = await list_client_record_audit(
                session=session,
                actor=current_principal(),
                association_id=request.association_id,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListClientRecordAuditResponse(
            entries=[audit_to_proto(e) for e in page.items], page=proto_page(page.next_page_token)
        )

    async def ImportClientRecords(
        self, request: pb.ImportClientRecordsRequest, context: Context
    ) -> pb.ImportClientRecordsResponse:
        async with self._sessions.begin() as session:
            inserted, skipped = await import_client_records(
                session=session,
                directory=self._directory,
                actor=current_principal(),
                now=self._clock(),
                association_id=request.association_id,
                records=[
                    ImportedRecord(
                        external_ref=r.external_ref,
                        company_name=r.company_name,
                        siret=r.siret,
                        email=r.email,
                        contact_name=r.contact_name,
                    )
                    for r in request.records
                ],
            )
        self._records_changed()
        return pb.ImportClientRecordsResponse(inserted=inserted, skipped=skipped)
