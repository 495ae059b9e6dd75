"""The associations portal: `/v1/associations/…` (members and fees, trainings, coverage
requests, client records).

Every authenticated route forwards the caller's token; the membership service decides.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

import grpc
from fastapi import APIRouter, Depends, Query, Request, Response, status
from google.protobuf.timestamp_pb2 import Timestamp
from guichet.membership.v1 import membership_pb2 as pb

from services.gateway.auth import CurrentCaller, public_metadata
from services.gateway.openapi import errors
from services.gateway.portals.associations.schemas import (
    AssociationSettings,
    AssociationTimeZoneBody,
    AuditEntry,
    AuditPage,
    ClientRecord,
    ClientRecordPage,
    Coverage,
    CoverageBody,
    CoveragePage,
    CoverageResult,
    DuplicateCandidate,
    DuplicateGroup,
    DuplicatePage,
    DuplicateTotals,
    FeeBody,
    FeeStatus,
    Member,
    MemberBody,
    MemberPage,
    MergeBody,
    MergePreview,
    MergeResult,
    RecordDuplicates,
    Registration,
    RegistrationPage,
    RegistrationResult,
    TraineeEmailBody,
    Training,
    TrainingBody,
    TrainingPage,
    TrainingRegistrationBody,
)
from services.gateway.portals.membership import (
    MEMBERSHIP_SERVICE,
    AssociationId,
    DuplicateKind,
    FeeFilter,
    Membership,
    ResourceId,
    iso,
)
from services.gateway.problems import problem_from_rpc_error
from services.gateway.ratelimit import auth_rate_limit
from services.gateway.rpc import (
    DeleteConfirmation,
    Operations,
    Page,
    next_token,
    one,
    operation_id,
    page_of,
)

router = APIRouter(tags=["associations"], generate_unique_id_function=operation_id)
ops = Operations(router, MEMBERSHIP_SERVICE, Membership)
braked = [Depends(auth_rate_limit)]


# ================================================================================================
# Associations: members and fees
# ================================================================================================


@ops.get(
    "/v1/associations/{association_id}/settings",
    rpc="GetAssociationSettings",
    answer=one(AssociationSettings, "settings"),
    summary="The association's settings: the time zone its days are counted in",
    responses=errors(400, 401, 403, 404),
)
def get_association_settings(association_id: AssociationId) -> pb.GetAssociationSettingsRequest:
    return pb.GetAssociationSettingsRequest(association_id=str(association_id))


@ops.put(
    "/v1/associations/{association_id}/time-zone",
    rpc="SetAssociationTimeZone",
    answer=one(AssociationSettings, "settings"),
    summary="Set the time zone the association's days are counted in (its admins)",
    responses=errors(400, 401, 403, 404),
)
def set_association_time_zone(
    association_id: AssociationId, body: AssociationTimeZoneBody
) -> pb.SetAssociationTimeZoneRequest:
    return pb.SetAssociationTimeZoneRequest(
        association_id=str(association_id), time_zone=body.time_zone
    )


@ops.get(
    "/v1/associations/{association_id}/members",
    rpc="ListMembers",
    answer=page_of(MemberPage, Member, "members"),
    summary="Members and their yearly fees",
    responses=errors(400, 401, 403, 404),
)
def list_association_members(
    association_id: AssociationId,
    page: Page,
    fee_year: Annotated[
        int | None, Query(ge=1900, le=2200, description="Default: this year.")
    ] = None,
    fee: Annotated[FeeFilter | None, Query(description="Only paid, or unpaid, fees.")] = None,
) -> pb.ListMembersRequest:
    return pb.ListMembersRequest(
        association_id=str(association_id),
        fee_year=fee_year or 0,
        fee_filter=fee.to_proto() if fee else pb.FEE_FILTER_UNSPECIFIED,
        page=page,
    )


@ops.post(
    "/v1/associations/{association_id}/members",
    rpc="AddMember",
    answer=one(Member, "member"),
    summary="Record a member",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 404, 409),
)
def add_member(association_id: AssociationId, body: MemberBody) -> pb.AddMemberRequest:
    return pb.AddMemberRequest(
        association_id=str(association_id),
        user_id=str(body.user_id) if body.user_id else "",
        first_name=body.first_name,
        last_name=body.last_name,
        email=body.email or "",
        joined_on=iso(body.joined_on),
    )


@ops.post(
    "/v1/associations/{association_id}/members/{member_id}/fees",
    rpc="RecordFeePayment",
    answer=one(Member, "member"),
    summary="Record a member's yearly fee",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 404, 409),
)
def record_fee(
    association_id: AssociationId, member_id: ResourceId, body: FeeBody
) -> pb.RecordFeePaymentRequest:
    return pb.RecordFeePaymentRequest(
        association_id=str(association_id),
        member_id=str(member_id),
        year=body.year,
        amount_cents=body.amount_cents,
        paid_on=iso(body.paid_on),
    )


@ops.get(
    "/v1/associations/{association_id}/fee-status",
    rpc="IsFeePaid",
    answer=one(FeeStatus),
    summary="Whether an account's fee is paid (what account validation checks)",
    responses=errors(400, 401, 403, 404),
)
def fee_status(
    association_id: AssociationId,
    user_id: Annotated[uuid.UUID, Query(description="The identity account.")],
    year: Annotated[int | None, Query(ge=1900, le=2200)] = None,
) -> pb.IsFeePaidRequest:
    return pb.IsFeePaidRequest(
        organisation_id=str(association_id), user_id=str(user_id), year=year or 0
    )


# ================================================================================================
# Associations: trainings, registrations, coverage requests
# ================================================================================================


@ops.get(
    "/v1/associations/{association_id}/trainings",
    rpc="ListTrainings",
    answer=page_of(TrainingPage, Training, "trainings"),
    summary="Every training of the association (admin)",
    responses=errors(400, 401, 403, 404),
)
def list_trainings(association_id: AssociationId, page: Page) -> pb.ListTrainingsRequest:
    return pb.ListTrainingsRequest(association_id=str(association_id), page=page)


@router.post(
    "/v1/associations/{association_id}/trainings",
    summary="Schedule a training (admin)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 404),
)
async def create_training(
    association_id: AssociationId, body: TrainingBody, caller: CurrentCaller, stub: Membership
) -> Training:
    start = Timestamp()
    start.FromDatetime(body.start_time)
    response = await stub.CreateTraining(
        pb.CreateTrainingRequest(
            association_id=str(association_id),
            training_type=body.training_type,
            title=body.title,
            start_time=start,
            location=body.location,
            capacity=body.capacity,
            public=body.public,
        ),
        metadata=caller.metadata,
    )
    return Training.from_proto(response.training)


@router.get(
    "/v1/associations/{association_id}/public-trainings",
    summary="Upcoming public trainings (no account needed)",
    responses=errors(400),
)
async def list_public_trainings(
    association_id: AssociationId, request: Request, stub: Membership, page: Page
) -> TrainingPage:
    response = await stub.ListPublicTrainings(
        pb.ListPublicTrainingsRequest(association_id=str(association_id), page=page),
        metadata=public_metadata(request),
    )
    return TrainingPage(
        items=[Training.from_proto(t) for t in response.trainings],
        next_page_token=next_token(response.page),
    )


@router.post(
    "/v1/associations/{association_id}/trainings/{training_id}/registrations",
    summary="Register for a public training (no account needed)",
    status_code=status.HTTP_201_CREATED,
    dependencies=braked,
    responses=errors(400, 404, 409, 429),
)
async def register_for_training(
    association_id: AssociationId,
    training_id: ResourceId,
    body: TrainingRegistrationBody,
    request: Request,
    stub: Membership,
) -> RegistrationResult:
    """Registering again for a training of the same type cancels the earlier registration, unless
    it was validated: then 409 `already_validated`. A confirmation with the client number is
    mailed."""
    trainee = body.trainee
    request_message = pb.RegisterForTrainingRequest(
        association_id=str(association_id),
        training_id=str(training_id),
        trainee=pb.Trainee(
            first_name=trainee.first_name,
            last_name=trainee.last_name,
            birth_date=trainee.birth_date.isoformat(),
            email=trainee.email,
            phone=trainee.phone,
        ),
        requester=pb.Requester(
            company_name=body.company_name,
            siret=body.siret,
            client_number=body.client_number or 0,
        ),
    )
    try:
        response = await stub.RegisterForTraining(
            request_message, metadata=public_metadata(request)
        )
    except grpc.aio.AioRpcError as error:
        # The proto nests who pays under `requester`; this body has its fields at the top.
        raise problem_from_rpc_error(error, field_prefix="requester.") from None
    return RegistrationResult(
        registration=Registration.from_proto(response.registration),
        cancelled_registration_id=(
            uuid.UUID(response.cancelled_registration_id)
            if response.cancelled_registration_id
            else None
        ),
        new_client_record=response.new_client_record,
    )


@ops.get(
    "/v1/associations/{association_id}/trainings/{training_id}/trainees",
    rpc="ListTrainees",
    answer=page_of(RegistrationPage, Registration, "registrations"),
    summary="The trainees of a training (admin)",
    responses=errors(400, 401, 403, 404),
)
def list_trainees(
    association_id: AssociationId,
    training_id: ResourceId,
    page: Page,
    include_cancelled: bool = False,
) -> pb.ListTraineesRequest:
    return pb.ListTraineesRequest(
        association_id=str(association_id),
        training_id=str(training_id),
        include_cancelled=include_cancelled,
        page=page,
    )


@ops.post(
    "/v1/associations/{association_id}/registrations/{registration_id}/validation",
    rpc="ValidateRegistration",
    answer=one(Registration, "registration"),
    summary="Validate a registration (admin)",
    responses=errors(400, 401, 403, 404, 409),
)
def validate_registration(
    association_id: AssociationId, registration_id: ResourceId
) -> pb.ValidateRegistrationRequest:
    return pb.ValidateRegistrationRequest(
        association_id=str(association_id), registration_id=str(registration_id)
    )


@ops.put(
    "/v1/associations/{association_id}/registrations/{registration_id}/email",
    rpc="CorrectTraineeEmail",
    answer=one(Registration, "registration"),
    summary="Correct a trainee's e-mail (admin); mails already sent are not sent again",
    responses=errors(400, 401, 403, 404),
)
def correct_email(
    association_id: AssociationId, registration_id: ResourceId, body: TraineeEmailBody
) -> pb.CorrectTraineeEmailRequest:
    return pb.CorrectTraineeEmailRequest(
        association_id=str(association_id),
        registration_id=str(registration_id),
        email=body.email,
    )


@router.post(
    "/v1/associations/{association_id}/dps-requests",
    summary="Ask for first-aid coverage of an event (no account needed)",
    status_code=status.HTTP_201_CREATED,
    dependencies=braked,
    responses=errors(400, 404, 429),
)
async def request_coverage(
    association_id: AssociationId, body: CoverageBody, request: Request, stub: Membership
) -> CoverageResult:
    o = body.organiser
    response = await stub.RequestCoverage(
        pb.RequestCoverageRequest(
            association_id=str(association_id),
            event_name=body.event_name,
            event_date=body.event_date.isoformat(),
            location=body.location,
            expected_attendance=body.expected_attendance,
            organiser=pb.Organiser(
                company_name=o.company_name,
                siret=o.siret,
                client_number=o.client_number or 0,
                contact_name=o.contact_name,
                email=o.email,
                phone=o.phone,
            ),
        ),
        metadata=public_metadata(request),
    )
    return CoverageResult(
        request=Coverage.from_proto(response.request), new_client_record=response.new_client_record
    )


@ops.get(
    "/v1/associations/{association_id}/dps-requests",
    rpc="ListCoverageRequests",
    answer=page_of(CoveragePage, Coverage, "requests"),
    summary="First-aid coverage requests, newest first (admin)",
    responses=errors(400, 401, 403, 404),
)
def list_coverage(association_id: AssociationId, page: Page) -> pb.ListCoverageRequestsRequest:
    return pb.ListCoverageRequestsRequest(association_id=str(association_id), page=page)


# ================================================================================================
# Associations: client records
# ================================================================================================


@ops.get(
    "/v1/associations/{association_id}/client-records",
    rpc="ListClientRecords",
    answer=page_of(ClientRecordPage, ClientRecord, "records"),
    summary="Client records by name (merged ones left out)",
    responses=errors(400, 401, 403, 404),
)
def list_records(
    association_id: AssociationId,
    page: Page,
    name: Annotated[str | None, Query(max_length=200, description="Name prefix.")] = None,
) -> pb.ListClientRecordsRequest:
    return pb.ListClientRecordsRequest(
        association_id=str(association_id), name_prefix=name or "", page=page
    )


@ops.get(
    "/v1/associations/{association_id}/client-records/{record_id}",
    rpc="GetClientRecord",
    answer=one(ClientRecord, "record"),
    summary="One client record",
    responses=errors(400, 401, 403, 404),
)
def get_record(association_id: AssociationId, record_id: ResourceId) -> pb.GetClientRecordRequest:
    return pb.GetClientRecordRequest(association_id=str(association_id), record_id=str(record_id))


@router.get(
    "/v1/associations/{association_id}/duplicates",
    summary="Certain and probable duplicate groups, with totals",
    responses=errors(400, 401, 403, 404),
)
async def list_duplicates(
    association_id: AssociationId,
    caller: CurrentCaller,
    stub: Membership,
    page: Page,
    kind: Annotated[DuplicateKind | None, Query(description="Only this kind.")] = None,
) -> DuplicatePage:
    """Certain: identical names once accents, case and punctuation are set aside. Probable: one
    name's significant words include all of another's (at most two more), or differ by one slip
    of the keyboard."""
    response = await stub.ListDuplicates(
        pb.ListDuplicatesRequest(
            association_id=str(association_id),
            kind=kind.to_proto() if kind else pb.DUPLICATE_KIND_UNSPECIFIED,
            page=page,
        ),
        metadata=caller.metadata,
    )
    t = response.totals
    return DuplicatePage(
        items=[
            DuplicateGroup(
                kind=DuplicateKind.from_proto(g.kind),
                key=g.key,
                records=[ClientRecord.from_proto(r) for r in g.records],
            )
            for g in response.groups
        ],
        totals=DuplicateTotals(
            records=t.records,
            certain_groups=t.certain_groups,
            certain_pairs=t.certain_pairs,
            probable_groups=t.probable_groups,
            probable_pairs=t.probable_pairs,
            elapsed_ms=t.elapsed_ms,
            computed_at=t.computed_at.ToDatetime(tzinfo=dt.UTC)
            if t.HasField("computed_at")
            else None,
            stale=t.stale,
        ),
        next_page_token=next_token(response.page),
    )


@router.get(
    "/v1/associations/{association_id}/client-records/{record_id}/duplicates",
    summary="The duplicates of one record (the merge screen)",
    responses=errors(400, 401, 403, 404),
)
async def record_duplicates(
    association_id: AssociationId, record_id: ResourceId, caller: CurrentCaller, stub: Membership
) -> RecordDuplicates:
    response = await stub.FindDuplicatesOf(
        pb.FindDuplicatesOfRequest(association_id=str(association_id), record_id=str(record_id)),
        metadata=caller.metadata,
    )
    return RecordDuplicates(
        record=ClientRecord.from_proto(response.record),
        candidates=[
            DuplicateCandidate(
                kind=DuplicateKind.from_proto(c.kind), record=ClientRecord.from_proto(c.record)
            )
            for c in response.candidates
        ],
    )


@router.get(
    "/v1/associations/{association_id}/client-records/{record_id}/merge-preview",
    summary="What merging this record into a target would move",
    responses=errors(400, 401, 403, 404, 409),
)
async def merge_preview(
    association_id: AssociationId,
    record_id: ResourceId,
    caller: CurrentCaller,
    stub: Membership,
    target_id: Annotated[uuid.UUID, Query(description="The record that would keep the events.")],
) -> MergePreview:
    response = await stub.PreviewMerge(
        pb.PreviewMergeRequest(
            association_id=str(association_id),
            source_id=str(record_id),
            target_id=str(target_id),
        ),
        metadata=caller.metadata,
    )
    return MergePreview(
        source=ClientRecord.from_proto(response.source),
        target=ClientRecord.from_proto(response.target),
        registrations_to_move=response.registrations_to_move,
        coverage_requests_to_move=response.coverage_requests_to_move,
    )


@router.post(
    "/v1/associations/{association_id}/client-records/{record_id}/merge",
    summary="Move every event of this record to a target record (audited)",
    responses=errors(400, 401, 403, 404, 409),
)
async def merge_records(
    association_id: AssociationId,
    record_id: ResourceId,
    body: MergeBody,
    caller: CurrentCaller,
    stub: Membership,
) -> MergeResult:
    """The emptied record stays until it is deleted, deliberately, as a separate step."""
    response = await stub.MergeClientRecords(
        pb.MergeClientRecordsRequest(
            association_id=str(association_id),
            source_id=str(record_id),
            target_id=str(body.target_id),
        ),
        metadata=caller.metadata,
    )
    return MergeResult(
        source=ClientRecord.from_proto(response.source),
        target=ClientRecord.from_proto(response.target),
        registrations_moved=response.registrations_moved,
        coverage_requests_moved=response.coverage_requests_moved,
        audit=AuditEntry.from_proto(response.audit),
    )


@router.delete(
    "/v1/associations/{association_id}/client-records/{record_id}",
    summary="Delete an emptied record, for good",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=errors(400, 401, 403, 404, 409),
)
async def delete_record(
    association_id: AssociationId,
    record_id: ResourceId,
    caller: CurrentCaller,
    stub: Membership,
    confirmation: DeleteConfirmation,
) -> Response:
    await stub.DeleteClientRecord(
        pb.DeleteClientRecordRequest(
            association_id=str(association_id),
            record_id=str(record_id),
            confirmation=confirmation,
        ),
        metadata=caller.metadata,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@ops.get(
    "/v1/associations/{association_id}/client-record-audit",
    rpc="ListClientRecordAudit",
    answer=page_of(AuditPage, AuditEntry, "entries"),
    summary="Every merge and deletion of client records, newest first",
    responses=errors(400, 401, 403, 404),
)
def list_client_record_audit(
    association_id: AssociationId, page: Page
) -> pb.ListClientRecordAuditRequest:
    return pb.ListClientRecordAuditRequest(association_id=str(association_id), page=page)
