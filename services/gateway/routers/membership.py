"""Membership: `/v1/workshops/…` (banner program), `/v1/associations/…` (members, trainings,
coverage requests, client records), plus the program team's `/v1/banner-programs` and
`/v1/training-courses`.

Every authenticated route forwards the caller's token; the membership service decides (a workshop
sees its own page and gets 404 for any other; the program team sees every workshop; an
association admin sees their association). Three routes are public — the upcoming public
trainings, a civilian's registration and a first-aid coverage request — and are rate-limited per
client address like the other routes that send mail.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from google.protobuf.timestamp_pb2 import Timestamp
from guichet.common.v1 import common_pb2
from guichet.membership.v1 import membership_pb2 as pb, membership_pb2_grpc

from services.gateway.auth import CurrentCaller, public_metadata
from services.gateway.openapi import errors
from services.gateway.ratelimit import auth_rate_limit
from services.gateway.schemas_membership import (
    AuditEntry,
    AuditPage,
    Claim,
    ClaimBody,
    ClaimPage,
    ClaimStatus,
    ClientRecord,
    ClientRecordPage,
    ContactsBody,
    Course,
    CourseBody,
    CoursePage,
    CourseRegistration,
    CourseRegistrationBody,
    CourseRegistrationPage,
    CourseRegistrationUpdate,
    Coverage,
    CoverageBody,
    CoveragePage,
    CoverageResult,
    Decision,
    DecisionBody,
    DuplicateCandidate,
    DuplicateGroup,
    DuplicateKind,
    DuplicatePage,
    DuplicateTotals,
    EmailBody,
    FeeBody,
    FeeFilter,
    FeeStatus,
    Member,
    MemberBody,
    MemberPage,
    MembershipBody,
    MembershipPage,
    MergeBody,
    MergePreview,
    MergeResult,
    OptionBody,
    OptionChangeBody,
    OptionChangeRequest,
    OptionChangeRequestPage,
    Program,
    ProgramBody,
    ProgramOption,
    ProgramPage,
    ReasonBody,
    RecordDuplicates,
    Registration,
    RegistrationBody,
    RegistrationPage,
    RegistrationResult,
    RenewalDateBody,
    Technician,
    TechnicianBody,
    TechnicianPage,
    Training,
    TrainingBody,
    TrainingPage,
    TransitionBody,
    WorkshopMembership,
    WorkshopView,
    iso,
)
from services.kit.grpcclient import create_channel

router = APIRouter()
braked = [Depends(auth_rate_limit)]

WorkshopId = Annotated[uuid.UUID, Path(description="The workshop (identity organisation) id.")]
AssociationId = Annotated[uuid.UUID, Path(description="The association (organisation) id.")]
ResourceId = Annotated[uuid.UUID, Path(description="The resource's id.")]


async def membership_stub(request: Request) -> membership_pb2_grpc.MembershipServiceStub:
    """The channel to membership, made on first use (deadlines from the gateway's settings)."""
    state = request.app.state
    stub: membership_pb2_grpc.MembershipServiceStub | None = getattr(state, "membership", None)
    if stub is None:
        settings = state.settings
        channel = create_channel(
            settings.membership_addr, default_timeout=settings.grpc_default_timeout
        )
        state.membership_channel = channel
        stub = state.membership = membership_pb2_grpc.MembershipServiceStub(channel)
    return stub


async def close_channel(state: object) -> None:
    channel = getattr(state, "membership_channel", None)
    if channel is not None:
        await channel.close()


Membership = Annotated[membership_pb2_grpc.MembershipServiceStub, Depends(membership_stub)]


def page_request(
    page_size: Annotated[
        int | None, Query(ge=1, le=500, description="Items per page (default 50).")
    ] = None,
    page_token: Annotated[
        str | None, Query(max_length=1024, description="next_page_token of the previous page.")
    ] = None,
) -> common_pb2.PageRequest:
    return common_pb2.PageRequest(page_size=page_size or 0, page_token=page_token or "")


Page = Annotated[common_pb2.PageRequest, Depends(page_request)]


def _next(page: common_pb2.PageResponse) -> str | None:
    return page.next_page_token or None


# ================================================================================================
# Banner programs and courses (the program team)
# ================================================================================================


@router.get(
    "/v1/banner-programs",
    tags=["workshops"],
    summary="Banner programs and their options (program team)",
    responses=errors(400, 401, 403),
)
async def list_programs(caller: CurrentCaller, stub: Membership, page: Page) -> ProgramPage:
    response = await stub.ListPrograms(pb.ListProgramsRequest(page=page), metadata=caller.metadata)
    return ProgramPage(
        items=[Program.from_proto(p) for p in response.programs],
        next_page_token=_next(response.page),
    )


@router.post(
    "/v1/banner-programs",
    tags=["workshops"],
    summary="Create a banner program (program team)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 409),
)
async def create_program(body: ProgramBody, caller: CurrentCaller, stub: Membership) -> Program:
    response = await stub.CreateProgram(
        pb.CreateProgramRequest(
            code=body.code, name=body.name, description=body.description, benefits=body.benefits
        ),
        metadata=caller.metadata,
    )
    return Program.from_proto(response.program)


@router.post(
    "/v1/banner-programs/{program_id}/options",
    tags=["workshops"],
    summary="Add an option to a program (program team)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 404, 409),
)
async def add_option(
    program_id: ResourceId, body: OptionBody, caller: CurrentCaller, stub: Membership
) -> ProgramOption:
    response = await stub.AddProgramOption(
        pb.AddProgramOptionRequest(
            program_id=str(program_id), code=body.code, name=body.name, benefit=body.benefit
        ),
        metadata=caller.metadata,
    )
    return ProgramOption.from_proto(response.option)


@router.get(
    "/v1/training-courses",
    tags=["workshops"],
    summary="The training courses for technicians",
    responses=errors(400, 401, 403),
)
async def list_courses(
    caller: CurrentCaller,
    stub: Membership,
    page: Page,
    upcoming: Annotated[bool, Query(description="Only courses not started yet.")] = True,
) -> CoursePage:
    response = await stub.ListTrainingCourses(
        pb.ListTrainingCoursesRequest(upcoming_only=upcoming, page=page), metadata=caller.metadata
    )
    return CoursePage(
        items=[Course.from_proto(c) for c in response.courses], next_page_token=_next(response.page)
    )


@router.post(
    "/v1/training-courses",
    tags=["workshops"],
    summary="Create a training course (program team)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 409),
)
async def create_course(body: CourseBody, caller: CurrentCaller, stub: Membership) -> Course:
    response = await stub.CreateTrainingCourse(
        pb.CreateTrainingCourseRequest(
            code=body.code,
            title=body.title,
            description=body.description,
            starts_on=body.starts_on.isoformat(),
            ends_on=iso(body.ends_on),
            location=body.location,
            capacity=body.capacity,
        ),
        metadata=caller.metadata,
    )
    return Course.from_proto(response.course)


# ================================================================================================
# Workshops
# ================================================================================================


@router.get(
    "/v1/workshops",
    tags=["workshops"],
    summary="Every workshop membership (program team)",
    responses=errors(400, 401, 403),
)
async def list_memberships(caller: CurrentCaller, stub: Membership, page: Page) -> MembershipPage:
    response = await stub.ListWorkshopMemberships(
        pb.ListWorkshopMembershipsRequest(page=page), metadata=caller.metadata
    )
    return MembershipPage(
        items=[WorkshopMembership.from_proto(m) for m in response.memberships],
        next_page_token=_next(response.page),
    )


@router.post(
    "/v1/workshops/{workshop_id}/membership",
    tags=["workshops"],
    summary="Enrol a workshop in a banner program (program team)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 404, 409),
)
async def create_membership(
    workshop_id: WorkshopId, body: MembershipBody, caller: CurrentCaller, stub: Membership
) -> WorkshopMembership:
    """Starts the renewal workflow `renewal/<membership_id>` (letter 30 days before each
    renewal date, option-removal window from the renewal date)."""
    response = await stub.CreateWorkshopMembership(
        pb.CreateWorkshopMembershipRequest(
            workshop_id=str(workshop_id),
            program_id=str(body.program_id),
            renewal_date=body.renewal_date.isoformat(),
            workshop=body.workshop.to_proto(),
            wholesaler=body.wholesaler.to_proto(),
            distributor=body.distributor.to_proto(),
            option_ids=[str(o) for o in body.option_ids],
        ),
        metadata=caller.metadata,
    )
    return WorkshopMembership.from_proto(response.membership)


@router.get(
    "/v1/workshops/{workshop_id}",
    tags=["workshops"],
    summary="The workshop's page: information, program, options, removal window",
    responses=errors(400, 401, 404),
)
async def get_workshop(
    workshop_id: WorkshopId, caller: CurrentCaller, stub: Membership
) -> WorkshopView:
    """Read-only for the workshop: contact details and options change through the program team."""
    response = await stub.GetWorkshop(
        pb.GetWorkshopRequest(workshop_id=str(workshop_id)), metadata=caller.metadata
    )
    return WorkshopView(
        membership=WorkshopMembership.from_proto(response.membership),
        program=Program.from_proto(response.program),
    )


@router.put(
    "/v1/workshops/{workshop_id}/contacts",
    tags=["workshops"],
    summary="Change the workshop's contact details (program team)",
    responses=errors(400, 401, 403, 404, 409),
)
async def update_contacts(
    workshop_id: WorkshopId, body: ContactsBody, caller: CurrentCaller, stub: Membership
) -> WorkshopMembership:
    response = await stub.UpdateWorkshopContacts(
        pb.UpdateWorkshopContactsRequest(
            workshop_id=str(workshop_id),
            workshop=body.workshop.to_proto(),
            wholesaler=body.wholesaler.to_proto(),
            distributor=body.distributor.to_proto(),
        ),
        metadata=caller.metadata,
    )
    return WorkshopMembership.from_proto(response.membership)


@router.put(
    "/v1/workshops/{workshop_id}/renewal-date",
    tags=["workshops"],
    summary="Move the renewal date (program team)",
    responses=errors(400, 401, 403, 404, 409),
)
async def change_renewal_date(
    workshop_id: WorkshopId, body: RenewalDateBody, caller: CurrentCaller, stub: Membership
) -> WorkshopMembership:
    response = await stub.ChangeRenewalDate(
        pb.ChangeRenewalDateRequest(
            workshop_id=str(workshop_id), renewal_date=body.renewal_date.isoformat()
        ),
        metadata=caller.metadata,
    )
    return WorkshopMembership.from_proto(response.membership)


@router.post(
    "/v1/workshops/{workshop_id}/membership/end",
    tags=["workshops"],
    summary="End the workshop's membership (program team)",
    responses=errors(400, 401, 403, 404, 409),
)
async def end_membership(
    workshop_id: WorkshopId, body: ReasonBody, caller: CurrentCaller, stub: Membership
) -> WorkshopMembership:
    response = await stub.EndWorkshopMembership(
        pb.EndWorkshopMembershipRequest(workshop_id=str(workshop_id), reason=body.reason),
        metadata=caller.metadata,
    )
    return WorkshopMembership.from_proto(response.membership)


@router.get(
    "/v1/workshops/{workshop_id}/option-change-requests",
    tags=["workshops"],
    summary="The workshop's option-change requests, newest first",
    responses=errors(400, 401, 404),
)
async def list_option_requests(
    workshop_id: WorkshopId, caller: CurrentCaller, stub: Membership, page: Page
) -> OptionChangeRequestPage:
    response = await stub.ListOptionChangeRequests(
        pb.ListOptionChangeRequestsRequest(workshop_id=str(workshop_id), page=page),
        metadata=caller.metadata,
    )
    return OptionChangeRequestPage(
        items=[OptionChangeRequest.from_proto(r) for r in response.requests],
        next_page_token=_next(response.page),
    )


@router.post(
    "/v1/workshops/{workshop_id}/option-change-requests",
    tags=["workshops"],
    summary="Request an option added (any time) or removed (in the yearly window)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 404, 409),
)
async def request_option_change(
    workshop_id: WorkshopId, body: OptionChangeBody, caller: CurrentCaller, stub: Membership
) -> OptionChangeRequest:
    """Outside the removal window a removal answers 409 `removal_window_closed`, naming the date
    the window opens. Requests by phone are never accepted."""
    response = await stub.RequestOptionChange(
        pb.RequestOptionChangeRequest(
            workshop_id=str(workshop_id),
            option_id=str(body.option_id),
            change=body.change.to_proto(),
            channel=body.channel.to_proto() if body.channel else pb.REQUEST_CHANNEL_UNSPECIFIED,
            note=body.note,
        ),
        metadata=caller.metadata,
    )
    return OptionChangeRequest.from_proto(response.request)


@router.post(
    "/v1/workshops/{workshop_id}/option-change-requests/{request_id}/decision",
    tags=["workshops"],
    summary="Approve or reject an option-change request (program team)",
    responses=errors(400, 401, 403, 404, 409),
)
async def decide_option_change(
    workshop_id: WorkshopId,
    request_id: ResourceId,
    body: DecisionBody,
    caller: CurrentCaller,
    stub: Membership,
) -> Decision:
    response = await stub.DecideOptionChange(
        pb.DecideOptionChangeRequest(
            workshop_id=str(workshop_id),
            request_id=str(request_id),
            approve=body.approve,
            note=body.note,
        ),
        metadata=caller.metadata,
    )
    return Decision(
        request=OptionChangeRequest.from_proto(response.request),
        membership=WorkshopMembership.from_proto(response.membership),
    )


@router.get(
    "/v1/workshops/{workshop_id}/technicians",
    tags=["workshops"],
    summary="The workshop's technicians",
    responses=errors(400, 401, 404),
)
async def list_technicians(
    workshop_id: WorkshopId, caller: CurrentCaller, stub: Membership, page: Page
) -> TechnicianPage:
    response = await stub.ListTechnicians(
        pb.ListTechniciansRequest(workshop_id=str(workshop_id), page=page),
        metadata=caller.metadata,
    )
    return TechnicianPage(
        items=[Technician.from_proto(t) for t in response.technicians],
        next_page_token=_next(response.page),
    )


@router.post(
    "/v1/workshops/{workshop_id}/technicians",
    tags=["workshops"],
    summary="Add a technician",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 404, 409),
)
async def add_technician(
    workshop_id: WorkshopId, body: TechnicianBody, caller: CurrentCaller, stub: Membership
) -> Technician:
    response = await stub.AddTechnician(
        pb.AddTechnicianRequest(
            workshop_id=str(workshop_id),
            first_name=body.first_name,
            last_name=body.last_name,
            email=body.email,
        ),
        metadata=caller.metadata,
    )
    return Technician.from_proto(response.technician)


@router.get(
    "/v1/workshops/{workshop_id}/training-registrations",
    tags=["workshops"],
    summary="The technicians' training history, newest first",
    responses=errors(400, 401, 404),
)
async def list_course_registrations(
    workshop_id: WorkshopId,
    caller: CurrentCaller,
    stub: Membership,
    page: Page,
    technician_id: Annotated[uuid.UUID | None, Query(description="One technician only.")] = None,
) -> CourseRegistrationPage:
    response = await stub.ListCourseRegistrations(
        pb.ListCourseRegistrationsRequest(
            workshop_id=str(workshop_id),
            technician_id=str(technician_id) if technician_id else "",
            page=page,
        ),
        metadata=caller.metadata,
    )
    return CourseRegistrationPage(
        items=[CourseRegistration.from_proto(r) for r in response.registrations],
        next_page_token=_next(response.page),
    )


@router.post(
    "/v1/workshops/{workshop_id}/training-registrations",
    tags=["workshops"],
    summary="Register a technician for a training course",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 404, 409),
)
async def register_technician(
    workshop_id: WorkshopId, body: CourseRegistrationBody, caller: CurrentCaller, stub: Membership
) -> CourseRegistration:
    response = await stub.RegisterTechnician(
        pb.RegisterTechnicianRequest(
            workshop_id=str(workshop_id),
            course_id=str(body.course_id),
            technician_id=str(body.technician_id),
        ),
        metadata=caller.metadata,
    )
    return CourseRegistration.from_proto(response.registration)


@router.put(
    "/v1/workshops/{workshop_id}/training-registrations/{registration_id}",
    tags=["workshops"],
    summary="Cancel a registration, or record the outcome (program team)",
    responses=errors(400, 401, 403, 404, 409),
)
async def update_course_registration(
    workshop_id: WorkshopId,
    registration_id: ResourceId,
    body: CourseRegistrationUpdate,
    caller: CurrentCaller,
    stub: Membership,
) -> CourseRegistration:
    response = await stub.UpdateCourseRegistration(
        pb.UpdateCourseRegistrationRequest(
            workshop_id=str(workshop_id),
            registration_id=str(registration_id),
            status=body.status.to_proto(),
        ),
        metadata=caller.metadata,
    )
    return CourseRegistration.from_proto(response.registration)


@router.get(
    "/v1/workshops/{workshop_id}/warranty-claims",
    tags=["workshops"],
    summary="The workshop's labour-warranty claims, newest first",
    responses=errors(400, 401, 404),
)
async def list_claims(
    workshop_id: WorkshopId,
    caller: CurrentCaller,
    stub: Membership,
    page: Page,
    claim_status: Annotated[ClaimStatus | None, Query(alias="status")] = None,
) -> ClaimPage:
    response = await stub.ListWarrantyClaims(
        pb.ListWarrantyClaimsRequest(
            workshop_id=str(workshop_id),
            status=claim_status.to_proto()
            if claim_status
            else pb.WARRANTY_CLAIM_STATUS_UNSPECIFIED,
            page=page,
        ),
        metadata=caller.metadata,
    )
    return ClaimPage(
        items=[Claim.from_proto(c) for c in response.claims], next_page_token=_next(response.page)
    )


@router.post(
    "/v1/workshops/{workshop_id}/warranty-claims",
    tags=["workshops"],
    summary="Submit a labour-warranty claim",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 404, 409),
)
async def submit_claim(
    workshop_id: WorkshopId, body: ClaimBody, caller: CurrentCaller, stub: Membership
) -> Claim:
    response = await stub.SubmitWarrantyClaim(
        pb.SubmitWarrantyClaimRequest(
            workshop_id=str(workshop_id),
            vehicle_vin=body.vehicle_vin,
            repair_order=body.repair_order,
            repair_date=body.repair_date.isoformat(),
            technician_id=str(body.technician_id) if body.technician_id else "",
            labour_minutes=body.labour_minutes,
            amount_cents=body.amount_cents,
            description=body.description,
        ),
        metadata=caller.metadata,
    )
    return Claim.from_proto(response.claim)


@router.get(
    "/v1/workshops/{workshop_id}/warranty-claims/{claim_id}",
    tags=["workshops"],
    summary="One claim and its history",
    responses=errors(400, 401, 404),
)
async def get_claim(
    workshop_id: WorkshopId, claim_id: ResourceId, caller: CurrentCaller, stub: Membership
) -> Claim:
    response = await stub.GetWarrantyClaim(
        pb.GetWarrantyClaimRequest(workshop_id=str(workshop_id), claim_id=str(claim_id)),
        metadata=caller.metadata,
    )
    return Claim.from_proto(response.claim)


@router.post(
    "/v1/workshops/{workshop_id}/warranty-claims/{claim_id}/transitions",
    tags=["workshops"],
    summary="Move a claim to its next status",
    responses=errors(400, 401, 403, 404, 409),
)
async def transition_claim(
    workshop_id: WorkshopId,
    claim_id: ResourceId,
    body: TransitionBody,
    caller: CurrentCaller,
    stub: Membership,
) -> Claim:
    """The program team reviews, approves, rejects, asks for information and pays; the workshop
    answers a request for information or withdraws. Other moves answer 409."""
    response = await stub.TransitionWarrantyClaim(
        pb.TransitionWarrantyClaimRequest(
            workshop_id=str(workshop_id),
            claim_id=str(claim_id),
            to_status=body.to_status.to_proto(),
            note=body.note,
        ),
        metadata=caller.metadata,
    )
    return Claim.from_proto(response.claim)


# ================================================================================================
# Associations: members and fees
# ================================================================================================


@router.get(
    "/v1/associations/{association_id}/members",
    tags=["associations"],
    summary="Members and their yearly fees",
    responses=errors(400, 401, 403, 404),
)
async def list_members(
    association_id: AssociationId,
    caller: CurrentCaller,
    stub: Membership,
    page: Page,
    fee_year: Annotated[
        int | None, Query(ge=1900, le=2200, description="Default: this year.")
    ] = None,
    fee: Annotated[FeeFilter | None, Query(description="Only paid, or unpaid, fees.")] = None,
) -> MemberPage:
    response = await stub.ListMembers(
        pb.ListMembersRequest(
            association_id=str(association_id),
            fee_year=fee_year or 0,
            fee_filter=fee.to_proto() if fee else pb.FEE_FILTER_UNSPECIFIED,
            page=page,
        ),
        metadata=caller.metadata,
    )
    return MemberPage(
        items=[Member.from_proto(m) for m in response.members], next_page_token=_next(response.page)
    )


@router.post(
    "/v1/associations/{association_id}/members",
    tags=["associations"],
    summary="Record a member",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 404, 409),
)
async def add_member(
    association_id: AssociationId, body: MemberBody, caller: CurrentCaller, stub: Membership
) -> Member:
    response = await stub.AddMember(
        pb.AddMemberRequest(
            association_id=str(association_id),
            user_id=str(body.user_id) if body.user_id else "",
            first_name=body.first_name,
            last_name=body.last_name,
            email=body.email,
            joined_on=iso(body.joined_on),
        ),
        metadata=caller.metadata,
    )
    return Member.from_proto(response.member)


@router.post(
    "/v1/associations/{association_id}/members/{member_id}/fees",
    tags=["associations"],
    summary="Record a member's yearly fee",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 404, 409),
)
async def record_fee(
    association_id: AssociationId,
    member_id: ResourceId,
    body: FeeBody,
    caller: CurrentCaller,
    stub: Membership,
) -> Member:
    response = await stub.RecordFeePayment(
        pb.RecordFeePaymentRequest(
            association_id=str(association_id),
            member_id=str(member_id),
            year=body.year,
            amount_cents=body.amount_cents,
            paid_on=iso(body.paid_on),
        ),
        metadata=caller.metadata,
    )
    return Member.from_proto(response.member)


@router.get(
    "/v1/associations/{association_id}/fee-status",
    tags=["associations"],
    summary="Whether an account's fee is paid (what account validation checks)",
    responses=errors(400, 401, 403, 404),
)
async def fee_status(
    association_id: AssociationId,
    caller: CurrentCaller,
    stub: Membership,
    user_id: Annotated[uuid.UUID, Query(description="The identity account.")],
    year: Annotated[int | None, Query(ge=1900, le=2200)] = None,
) -> FeeStatus:
    response = await stub.IsFeePaid(
        pb.IsFeePaidRequest(
            organisation_id=str(association_id), user_id=str(user_id), year=year or 0
        ),
        metadata=caller.metadata,
    )
    return FeeStatus.from_proto(response)


# ================================================================================================
# Associations: trainings, registrations, coverage requests
# ================================================================================================


@router.get(
    "/v1/associations/{association_id}/trainings",
    tags=["associations"],
    summary="Every training of the association (admin)",
    responses=errors(400, 401, 403, 404),
)
async def list_trainings(
    association_id: AssociationId, caller: CurrentCaller, stub: Membership, page: Page
) -> TrainingPage:
    response = await stub.ListTrainings(
        pb.ListTrainingsRequest(association_id=str(association_id), page=page),
        metadata=caller.metadata,
    )
    return TrainingPage(
        items=[Training.from_proto(t) for t in response.trainings],
        next_page_token=_next(response.page),
    )


@router.post(
    "/v1/associations/{association_id}/trainings",
    tags=["associations"],
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
    tags=["associations"],
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
        next_page_token=_next(response.page),
    )


@router.post(
    "/v1/associations/{association_id}/trainings/{training_id}/registrations",
    tags=["associations"],
    summary="Register for a public training (no account needed)",
    status_code=status.HTTP_201_CREATED,
    dependencies=braked,
    responses=errors(400, 404, 409, 429),
)
async def register_for_training(
    association_id: AssociationId,
    training_id: ResourceId,
    body: RegistrationBody,
    request: Request,
    stub: Membership,
) -> RegistrationResult:
    """Registering again for a training of the same type cancels the earlier registration, unless
    it was validated: then 409 `already_validated`. A confirmation with the client number is
    mailed."""
    trainee = body.trainee
    response = await stub.RegisterForTraining(
        pb.RegisterForTrainingRequest(
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
        ),
        metadata=public_metadata(request),
    )
    return RegistrationResult(
        registration=Registration.from_proto(response.registration),
        cancelled_registration_id=(
            uuid.UUID(response.cancelled_registration_id)
            if response.cancelled_registration_id
            else None
        ),
        new_client_record=response.new_client_record,
    )


@router.get(
    "/v1/associations/{association_id}/trainings/{training_id}/trainees",
    tags=["associations"],
    summary="The trainees of a training (admin)",
    responses=errors(400, 401, 403, 404),
)
async def list_trainees(
    association_id: AssociationId,
    training_id: ResourceId,
    caller: CurrentCaller,
    stub: Membership,
    page: Page,
    include_cancelled: bool = False,
) -> RegistrationPage:
    response = await stub.ListTrainees(
        pb.ListTraineesRequest(
            association_id=str(association_id),
            training_id=str(training_id),
            include_cancelled=include_cancelled,
            page=page,
        ),
        metadata=caller.metadata,
    )
    return RegistrationPage(
        items=[Registration.from_proto(r) for r in response.registrations],
        next_page_token=_next(response.page),
    )


@router.post(
    "/v1/associations/{association_id}/registrations/{registration_id}/validation",
    tags=["associations"],
    summary="Validate a registration (admin)",
    responses=errors(400, 401, 403, 404, 409),
)
async def validate_registration(
    association_id: AssociationId,
    registration_id: ResourceId,
    caller: CurrentCaller,
    stub: Membership,
) -> Registration:
    response = await stub.ValidateRegistration(
        pb.ValidateRegistrationRequest(
            association_id=str(association_id), registration_id=str(registration_id)
        ),
        metadata=caller.metadata,
    )
    return Registration.from_proto(response.registration)


@router.put(
    "/v1/associations/{association_id}/registrations/{registration_id}/email",
    tags=["associations"],
    summary="Correct a trainee's e-mail (admin); mails already sent are not sent again",
    responses=errors(400, 401, 403, 404),
)
async def correct_email(
    association_id: AssociationId,
    registration_id: ResourceId,
    body: EmailBody,
    caller: CurrentCaller,
    stub: Membership,
) -> Registration:
    response = await stub.CorrectTraineeEmail(
        pb.CorrectTraineeEmailRequest(
            association_id=str(association_id),
            registration_id=str(registration_id),
            email=body.email,
        ),
        metadata=caller.metadata,
    )
    return Registration.from_proto(response.registration)


@router.post(
    "/v1/associations/{association_id}/dps-requests",
    tags=["associations"],
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


@router.get(
    "/v1/associations/{association_id}/dps-requests",
    tags=["associations"],
    summary="First-aid coverage requests, newest first (admin)",
    responses=errors(400, 401, 403, 404),
)
async def list_coverage(
    association_id: AssociationId, caller: CurrentCaller, stub: Membership, page: Page
) -> CoveragePage:
    response = await stub.ListCoverageRequests(
        pb.ListCoverageRequestsRequest(association_id=str(association_id), page=page),
        metadata=caller.metadata,
    )
    return CoveragePage(
        items=[Coverage.from_proto(r) for r in response.requests],
        next_page_token=_next(response.page),
    )


# ================================================================================================
# Associations: client records
# ================================================================================================


@router.get(
    "/v1/associations/{association_id}/client-records",
    tags=["associations"],
    summary="Client records by name (merged ones left out)",
    responses=errors(400, 401, 403, 404),
)
async def list_records(
    association_id: AssociationId,
    caller: CurrentCaller,
    stub: Membership,
    page: Page,
    name: Annotated[str | None, Query(max_length=200, description="Name prefix.")] = None,
) -> ClientRecordPage:
    response = await stub.ListClientRecords(
        pb.ListClientRecordsRequest(
            association_id=str(association_id), name_prefix=name or "", page=page
        ),
        metadata=caller.metadata,
    )
    return ClientRecordPage(
        items=[ClientRecord.from_proto(r) for r in response.records],
        next_page_token=_next(response.page),
    )


@router.get(
    "/v1/associations/{association_id}/client-records/{record_id}",
    tags=["associations"],
    summary="One client record",
    responses=errors(400, 401, 403, 404),
)
async def get_record(
    association_id: AssociationId, record_id: ResourceId, caller: CurrentCaller, stub: Membership
) -> ClientRecord:
    response = await stub.GetClientRecord(
        pb.GetClientRecordRequest(association_id=str(association_id), record_id=str(record_id)),
        metadata=caller.metadata,
    )
    return ClientRecord.from_proto(response.record)


@router.get(
    "/v1/associations/{association_id}/duplicates",
    tags=["associations"],
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
        ),
        next_page_token=_next(response.page),
    )


@router.get(
    "/v1/associations/{association_id}/client-records/{record_id}/duplicates",
    tags=["associations"],
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
    tags=["associations"],
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
    tags=["associations"],
    summary="Move every event of this record to a target record (audited)",
    responses=errors(400, 401, 403, 404, 409),
)
async def merge(
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
    tags=["associations"],
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
    confirmation: Annotated[
        str, Query(max_length=20, description="SUPPRIMER (or DELETE): this cannot be undone.")
    ],
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


@router.get(
    "/v1/associations/{association_id}/client-record-audit",
    tags=["associations"],
    summary="Every merge and deletion of client records, newest first",
    responses=errors(400, 401, 403, 404),
)
async def list_audit(
    association_id: AssociationId, caller: CurrentCaller, stub: Membership, page: Page
) -> AuditPage:
    response = await stub.ListClientRecordAudit(
        pb.ListClientRecordAuditRequest(association_id=str(association_id), page=page),
        metadata=caller.metadata,
    )
    return AuditPage(
        items=[AuditEntry.from_proto(e) for e in response.entries],
        next_page_token=_next(response.page),
    )
