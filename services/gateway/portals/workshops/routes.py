"""The banner program's workshops portal: `/v1/workshops/…`, `/v1/banner-programs`,
`/v1/training-courses`.

Every authenticated route forwards the caller's token; the membership service decides.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status
from guichet.membership.v1 import membership_pb2 as pb

from services.gateway.auth import CurrentCaller
from services.gateway.openapi import errors
from services.gateway.portals.membership import (
    MEMBERSHIP_SERVICE,
    ClaimStatus,
    Membership,
    ResourceId,
    WorkshopId,
    iso,
)
from services.gateway.portals.workshops.schemas import (
    Claim,
    ClaimBody,
    ClaimPage,
    ContactsBody,
    Course,
    CourseBody,
    CoursePage,
    CourseRegistration,
    CourseRegistrationBody,
    CourseRegistrationPage,
    CourseRegistrationUpdate,
    Decision,
    DecisionBody,
    MembershipBody,
    MembershipPage,
    OptionBody,
    OptionChangeBody,
    OptionChangeRequest,
    OptionChangeRequestPage,
    OptionUpdateBody,
    Program,
    ProgramBody,
    ProgramOption,
    ProgramPage,
    ReasonBody,
    RenewalDateBody,
    Technician,
    TechnicianBody,
    TechnicianPage,
    TimeZoneBody,
    TransitionBody,
    WorkshopMembership,
    WorkshopTimeZoneBody,
    WorkshopView,
)
from services.gateway.ratelimit import auth_rate_limit
from services.gateway.rpc import (
    Operations,
    Page,
    one,
    operation_id,
    page_of,
)

OptionId = Annotated[uuid.UUID, Path(description="The option's id.")]

router = APIRouter(tags=["workshops"], generate_unique_id_function=operation_id)
ops = Operations(router, MEMBERSHIP_SERVICE, Membership)
braked = [Depends(auth_rate_limit)]


# ================================================================================================
# Banner programs and courses (the program team)
# ================================================================================================


@ops.get(
    "/v1/banner-programs",
    rpc="ListPrograms",
    answer=page_of(ProgramPage, Program, "programs"),
    summary="Banner programs and their options (program team)",
    responses=errors(400, 401, 403),
)
def list_programs(page: Page) -> pb.ListProgramsRequest:
    return pb.ListProgramsRequest(page=page)


@ops.post(
    "/v1/banner-programs",
    rpc="CreateProgram",
    answer=one(Program, "program"),
    summary="Create a banner program (program team)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 409),
)
def create_program(body: ProgramBody) -> pb.CreateProgramRequest:
    return pb.CreateProgramRequest(
        code=body.code,
        name=body.name,
        description=body.description,
        benefits=body.benefits,
        time_zone=body.time_zone,
    )


@ops.put(
    "/v1/banner-programs/{program_id}/time-zone",
    rpc="SetProgramTimeZone",
    answer=one(Program, "program"),
    summary="Move a program to another time zone (program team)",
    responses=errors(400, 401, 403, 404),
)
def set_program_time_zone(
    program_id: ResourceId, body: TimeZoneBody
) -> pb.SetProgramTimeZoneRequest:
    """The renewal workflows of the memberships that follow the program plan their letters and
    windows again, at midnight of the new zone."""
    return pb.SetProgramTimeZoneRequest(program_id=str(program_id), time_zone=body.time_zone)


@ops.post(
    "/v1/banner-programs/{program_id}/options",
    rpc="AddProgramOption",
    answer=one(ProgramOption, "option"),
    summary="Add an option to a program (program team)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 404, 409),
)
def add_option(program_id: ResourceId, body: OptionBody) -> pb.AddProgramOptionRequest:
    return pb.AddProgramOptionRequest(
        program_id=str(program_id),
        code=body.code,
        name=body.name,
        benefit=body.benefit,
        translations=[t.to_proto() for t in body.translations],
    )


@ops.put(
    "/v1/banner-programs/{program_id}/options/{option_id}",
    rpc="UpdateProgramOption",
    answer=one(ProgramOption, "option"),
    summary="Replace an option's name, benefit and their translations (program team)",
    responses=errors(400, 401, 403, 404),
)
def update_option(
    program_id: ResourceId, option_id: OptionId, body: OptionUpdateBody
) -> pb.UpdateProgramOptionRequest:
    return pb.UpdateProgramOptionRequest(
        program_id=str(program_id),
        option_id=str(option_id),
        name=body.name,
        benefit=body.benefit,
        translations=[t.to_proto() for t in body.translations],
    )


@ops.get(
    "/v1/training-courses",
    rpc="ListTrainingCourses",
    answer=page_of(CoursePage, Course, "courses"),
    summary="The training courses for technicians",
    responses=errors(400, 401, 403),
)
def list_courses(
    page: Page, upcoming: Annotated[bool, Query(description="Only courses not started yet.")] = True
) -> pb.ListTrainingCoursesRequest:
    return pb.ListTrainingCoursesRequest(upcoming_only=upcoming, page=page)


@ops.post(
    "/v1/training-courses",
    rpc="CreateTrainingCourse",
    answer=one(Course, "course"),
    summary="Create a training course (program team)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 409),
)
def create_course(body: CourseBody) -> pb.CreateTrainingCourseRequest:
    return pb.CreateTrainingCourseRequest(
        code=body.code,
        title=body.title,
        description=body.description,
        starts_on=body.starts_on.isoformat(),
        ends_on=iso(body.ends_on),
        location=body.location,
        capacity=body.capacity,
    )


# ================================================================================================
# Workshops
# ================================================================================================


@ops.get(
    "/v1/workshops",
    rpc="ListWorkshopMemberships",
    answer=page_of(MembershipPage, WorkshopMembership, "memberships"),
    summary="Every workshop membership (program team)",
    responses=errors(400, 401, 403),
)
def list_memberships(page: Page) -> pb.ListWorkshopMembershipsRequest:
    return pb.ListWorkshopMembershipsRequest(page=page)


@ops.post(
    "/v1/workshops/{workshop_id}/membership",
    rpc="CreateWorkshopMembership",
    answer=one(WorkshopMembership, "membership"),
    summary="Enrol a workshop in a banner program (program team)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 404, 409),
)
def create_membership(
    workshop_id: WorkshopId, body: MembershipBody
) -> pb.CreateWorkshopMembershipRequest:
    """Starts the renewal workflow `renewal/<membership_id>` (letter 30 days before each
    renewal date, option-removal window from the renewal date)."""
    return pb.CreateWorkshopMembershipRequest(
        workshop_id=str(workshop_id),
        program_id=str(body.program_id),
        renewal_date=body.renewal_date.isoformat(),
        workshop=body.workshop.to_proto(),
        wholesaler=body.wholesaler.to_proto(),
        distributor=body.distributor.to_proto(),
        option_ids=[str(o) for o in body.option_ids],
        time_zone=body.time_zone,
    )


@router.get(
    "/v1/workshops/{workshop_id}",
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


@ops.put(
    "/v1/workshops/{workshop_id}/contacts",
    rpc="UpdateWorkshopContacts",
    answer=one(WorkshopMembership, "membership"),
    summary="Change the workshop's contact details (program team)",
    responses=errors(400, 401, 403, 404, 409),
)
def update_contacts(
    workshop_id: WorkshopId, body: ContactsBody
) -> pb.UpdateWorkshopContactsRequest:
    return pb.UpdateWorkshopContactsRequest(
        workshop_id=str(workshop_id),
        workshop=body.workshop.to_proto(),
        wholesaler=body.wholesaler.to_proto(),
        distributor=body.distributor.to_proto(),
    )


@ops.put(
    "/v1/workshops/{workshop_id}/renewal-date",
    rpc="ChangeRenewalDate",
    answer=one(WorkshopMembership, "membership"),
    summary="Move the renewal date (program team)",
    responses=errors(400, 401, 403, 404, 409),
)
def change_renewal_date(
    workshop_id: WorkshopId, body: RenewalDateBody
) -> pb.ChangeRenewalDateRequest:
    return pb.ChangeRenewalDateRequest(
        workshop_id=str(workshop_id), renewal_date=body.renewal_date.isoformat()
    )


@ops.post(
    "/v1/workshops/{workshop_id}/membership/end",
    rpc="EndWorkshopMembership",
    answer=one(WorkshopMembership, "membership"),
    summary="End the workshop's membership (program team)",
    responses=errors(400, 401, 403, 404, 409),
)
def end_membership(workshop_id: WorkshopId, body: ReasonBody) -> pb.EndWorkshopMembershipRequest:
    return pb.EndWorkshopMembershipRequest(workshop_id=str(workshop_id), reason=body.reason)


@ops.put(
    "/v1/workshops/{workshop_id}/time-zone",
    rpc="SetWorkshopTimeZone",
    answer=one(WorkshopMembership, "membership"),
    summary="Set the workshop's own time zone, or follow its program's (program team)",
    responses=errors(400, 401, 403, 404, 409),
)
def set_workshop_time_zone(
    workshop_id: WorkshopId, body: WorkshopTimeZoneBody
) -> pb.SetWorkshopTimeZoneRequest:
    return pb.SetWorkshopTimeZoneRequest(workshop_id=str(workshop_id), time_zone=body.time_zone)


@ops.post(
    "/v1/workshops/{workshop_id}/anniversary-letter/resend",
    rpc="ResendAnniversaryLetter",
    answer=one(WorkshopMembership, "membership"),
    summary="Send this renewal's anniversary letter again (program team, with a reason)",
    responses=errors(400, 401, 403, 404, 409),
)
def resend_letter(workshop_id: WorkshopId, body: ReasonBody) -> pb.ResendAnniversaryLetterRequest:
    """A letter is sent once per renewal, whatever corrections its date gets; the program team
    may send it again (announcing the date as it is now). Who, when and why are recorded.
    Before the letter's day: 409 `letter_not_sent`."""
    return pb.ResendAnniversaryLetterRequest(workshop_id=str(workshop_id), reason=body.reason)


@ops.get(
    "/v1/workshops/{workshop_id}/option-change-requests",
    rpc="ListOptionChangeRequests",
    answer=page_of(OptionChangeRequestPage, OptionChangeRequest, "requests"),
    summary="The workshop's option-change requests, newest first",
    responses=errors(400, 401, 404),
)
def list_option_requests(workshop_id: WorkshopId, page: Page) -> pb.ListOptionChangeRequestsRequest:
    return pb.ListOptionChangeRequestsRequest(workshop_id=str(workshop_id), page=page)


@ops.post(
    "/v1/workshops/{workshop_id}/option-change-requests",
    rpc="RequestOptionChange",
    answer=one(OptionChangeRequest, "request"),
    summary="Request an option added (any time) or removed (in the yearly window)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 404, 409),
)
def request_option_change(
    workshop_id: WorkshopId, body: OptionChangeBody
) -> pb.RequestOptionChangeRequest:
    """Outside the removal window a removal answers 409 `removal_window_closed`, naming the date
    the window opens. Requests by phone are never accepted."""
    return pb.RequestOptionChangeRequest(
        workshop_id=str(workshop_id),
        option_id=str(body.option_id),
        change=body.change.to_proto(),
        channel=body.channel.to_proto() if body.channel else pb.REQUEST_CHANNEL_UNSPECIFIED,
        note=body.note,
    )


@router.post(
    "/v1/workshops/{workshop_id}/option-change-requests/{request_id}/decision",
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


@ops.get(
    "/v1/workshops/{workshop_id}/technicians",
    rpc="ListTechnicians",
    answer=page_of(TechnicianPage, Technician, "technicians"),
    summary="The workshop's technicians",
    responses=errors(400, 401, 404),
)
def list_technicians(workshop_id: WorkshopId, page: Page) -> pb.ListTechniciansRequest:
    return pb.ListTechniciansRequest(workshop_id=str(workshop_id), page=page)


@ops.post(
    "/v1/workshops/{workshop_id}/technicians",
    rpc="AddTechnician",
    answer=one(Technician, "technician"),
    summary="Add a technician",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 404, 409),
)
def add_technician(workshop_id: WorkshopId, body: TechnicianBody) -> pb.AddTechnicianRequest:
    return pb.AddTechnicianRequest(
        workshop_id=str(workshop_id),
        first_name=body.first_name,
        last_name=body.last_name,
        email=body.email or "",
    )


@ops.get(
    "/v1/workshops/{workshop_id}/training-registrations",
    rpc="ListCourseRegistrations",
    answer=page_of(CourseRegistrationPage, CourseRegistration, "registrations"),
    summary="The technicians' training history, newest first",
    responses=errors(400, 401, 404),
)
def list_course_registrations(
    workshop_id: WorkshopId,
    page: Page,
    technician_id: Annotated[uuid.UUID | None, Query(description="One technician only.")] = None,
) -> pb.ListCourseRegistrationsRequest:
    return pb.ListCourseRegistrationsRequest(
        workshop_id=str(workshop_id),
        technician_id=str(technician_id) if technician_id else "",
        page=page,
    )


@ops.post(
    "/v1/workshops/{workshop_id}/training-registrations",
    rpc="RegisterTechnician",
    answer=one(CourseRegistration, "registration"),
    summary="Register a technician for a training course",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 404, 409),
)
def register_technician(
    workshop_id: WorkshopId, body: CourseRegistrationBody
) -> pb.RegisterTechnicianRequest:
    return pb.RegisterTechnicianRequest(
        workshop_id=str(workshop_id),
        course_id=str(body.course_id),
        technician_id=str(body.technician_id),
    )


@ops.put(
    "/v1/workshops/{workshop_id}/training-registrations/{registration_id}",
    rpc="UpdateCourseRegistration",
    answer=one(CourseRegistration, "registration"),
    summary="Cancel a registration, or record the outcome (program team)",
    responses=errors(400, 401, 403, 404, 409),
)
def update_course_registration(
    workshop_id: WorkshopId, registration_id: ResourceId, body: CourseRegistrationUpdate
) -> pb.UpdateCourseRegistrationRequest:
    return pb.UpdateCourseRegistrationRequest(
        workshop_id=str(workshop_id),
        registration_id=str(registration_id),
        status=body.status.to_proto(),
    )


@ops.get(
    "/v1/workshops/{workshop_id}/warranty-claims",
    rpc="ListWarrantyClaims",
    answer=page_of(ClaimPage, Claim, "claims"),
    summary="The workshop's labour-warranty claims, newest first",
    responses=errors(400, 401, 404),
)
def list_claims(
    workshop_id: WorkshopId,
    page: Page,
    claim_status: Annotated[ClaimStatus | None, Query(alias="status")] = None,
) -> pb.ListWarrantyClaimsRequest:
    return pb.ListWarrantyClaimsRequest(
        workshop_id=str(workshop_id),
        status=claim_status.to_proto() if claim_status else pb.WARRANTY_CLAIM_STATUS_UNSPECIFIED,
        page=page,
    )


@ops.post(
    "/v1/workshops/{workshop_id}/warranty-claims",
    rpc="SubmitWarrantyClaim",
    answer=one(Claim, "claim"),
    summary="Submit a labour-warranty claim",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 404, 409),
)
def submit_claim(workshop_id: WorkshopId, body: ClaimBody) -> pb.SubmitWarrantyClaimRequest:
    return pb.SubmitWarrantyClaimRequest(
        workshop_id=str(workshop_id),
        vehicle_vin=body.vehicle_vin,
        repair_order=body.repair_order,
        repair_date=body.repair_date.isoformat(),
        technician_id=str(body.technician_id) if body.technician_id else "",
        labour_minutes=body.labour_minutes,
        amount_cents=body.amount_cents,
        description=body.description,
    )


@ops.get(
    "/v1/workshops/{workshop_id}/warranty-claims/{claim_id}",
    rpc="GetWarrantyClaim",
    answer=one(Claim, "claim"),
    summary="One claim and its history",
    responses=errors(400, 401, 404),
)
def get_claim(workshop_id: WorkshopId, claim_id: ResourceId) -> pb.GetWarrantyClaimRequest:
    return pb.GetWarrantyClaimRequest(workshop_id=str(workshop_id), claim_id=str(claim_id))


@ops.post(
    "/v1/workshops/{workshop_id}/warranty-claims/{claim_id}/transitions",
    rpc="TransitionWarrantyClaim",
    answer=one(Claim, "claim"),
    summary="Move a claim to its next status",
    responses=errors(400, 401, 403, 404, 409),
)
def transition_claim(
    workshop_id: WorkshopId, claim_id: ResourceId, body: TransitionBody
) -> pb.TransitionWarrantyClaimRequest:
    """The program team reviews, approves, rejects, asks for information and pays; the workshop
    answers a request for information or withdraws. Other moves answer 409."""
    return pb.TransitionWarrantyClaimRequest(
        workshop_id=str(workshop_id),
        claim_id=str(claim_id),
        to_status=body.to_status.to_proto(),
        note=body.note,
    )
