"""The membership gRPC servicer (thin: request → transaction → domain → proto) and its SPEC.

Each method opens one transaction, calls one domain function and maps the result. Mails and
workflow starts are recorded in the outbox inside that transaction, renewal signals in their own
outbox; after the commit the relays are woken so that they leave at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeAlias

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from guichet.common.v1 import common_pb2
from guichet.membership.v1 import membership_pb2 as pb, membership_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.kit.auth import current_principal
from services.kit.identity_client import connect_identity
from services.kit.outbox import OutboxRelay
from services.kit.runtime import ServiceContext, ServiceSpec, Wiring
from services.kit.temporal import connect_temporal
from services.membership import domain
from services.membership.directory import IdentityDirectory
from services.membership.models import (
    ClaimStatus,
    ClientRecord,
    ClientRecordAudit,
    CourseRegistrationStatus,
    MembershipStatus,
    OptionChange,
    OptionChangeStatus,
    ProgramOption,
    RegistrationStatus,
    RequestChannel,
    Technician,
    WorkshopMembership,
    outbox as outbox_table,
)
from services.membership.settings import MembershipSettings
from services.membership.signals import RenewalSignalRelay

Context: TypeAlias = Any  # grpc.aio.ServicerContext (grpc ships no type stubs)
Clock = Callable[[], datetime]

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["MembershipService"].full_name

# Civilians and event organisers use these without an account (the gateway rate-limits them).
PUBLIC_METHODS = frozenset(
    f"/{SERVICE_NAME}/{method}"
    for method in ("ListPublicTrainings", "RegisterForTraining", "RequestCoverage")
)


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- enums ------------------------------------------------------------------------------------

_MEMBERSHIP_STATUS = {
    MembershipStatus.ACTIVE: pb.MEMBERSHIP_STATUS_ACTIVE,
    MembershipStatus.ENDED: pb.MEMBERSHIP_STATUS_ENDED,
}
_OPTION_CHANGE = {
    OptionChange.ADD: pb.OPTION_CHANGE_ADD,
    OptionChange.REMOVE: pb.OPTION_CHANGE_REMOVE,
}
_CHANNEL = {
    RequestChannel.PORTAL: pb.REQUEST_CHANNEL_PORTAL,
    RequestChannel.EMAIL: pb.REQUEST_CHANNEL_EMAIL,
}
_CHANNEL_IN = {
    pb.REQUEST_CHANNEL_PORTAL: "portal",
    pb.REQUEST_CHANNEL_EMAIL: "email",
    pb.REQUEST_CHANNEL_PHONE: "phone",
}
_OPTION_STATUS = {
    OptionChangeStatus.PENDING: pb.OPTION_CHANGE_STATUS_PENDING,
    OptionChangeStatus.APPROVED: pb.OPTION_CHANGE_STATUS_APPROVED,
    OptionChangeStatus.REJECTED: pb.OPTION_CHANGE_STATUS_REJECTED,
}
_COURSE_STATUS = {
    CourseRegistrationStatus.REGISTERED: pb.COURSE_REGISTRATION_STATUS_REGISTERED,
    CourseRegistrationStatus.CANCELLED: pb.COURSE_REGISTRATION_STATUS_CANCELLED,
    CourseRegistrationStatus.COMPLETED: pb.COURSE_REGISTRATION_STATUS_COMPLETED,
    CourseRegistrationStatus.ABSENT: pb.COURSE_REGISTRATION_STATUS_ABSENT,
}
_CLAIM_STATUS = {
    ClaimStatus.SUBMITTED: pb.WARRANTY_CLAIM_STATUS_SUBMITTED,
    ClaimStatus.UNDER_REVIEW: pb.WARRANTY_CLAIM_STATUS_UNDER_REVIEW,
    ClaimStatus.NEEDS_INFORMATION: pb.WARRANTY_CLAIM_STATUS_NEEDS_INFORMATION,
    ClaimStatus.APPROVED: pb.WARRANTY_CLAIM_STATUS_APPROVED,
    ClaimStatus.REJECTED: pb.WARRANTY_CLAIM_STATUS_REJECTED,
    ClaimStatus.PAID: pb.WARRANTY_CLAIM_STATUS_PAID,
    ClaimStatus.WITHDRAWN: pb.WARRANTY_CLAIM_STATUS_WITHDRAWN,
}
_REGISTRATION_STATUS = {
    RegistrationStatus.REGISTERED: pb.REGISTRATION_STATUS_REGISTERED,
    RegistrationStatus.VALIDATED: pb.REGISTRATION_STATUS_VALIDATED,
    RegistrationStatus.CANCELLED: pb.REGISTRATION_STATUS_CANCELLED,
}
_DUPLICATE_KIND = {"certain": pb.DUPLICATE_KIND_CERTAIN, "probable": pb.DUPLICATE_KIND_PROBABLE}


def _name_of(value: int, table: dict[Any, Any]) -> str:
    """The domain's name for a proto enum value: "" when unspecified, a non-name when unknown."""
    if value == 0:
        return ""
    for name, proto in table.items():
        if proto == value:
            return str(name)
    return f"#{value}"


# --- mapping ----------------------------------------------------------------------------------


def _timestamp(moment: datetime | None) -> Timestamp | None:
    if moment is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _day(value: date | None) -> str:
    return value.isoformat() if value else ""


def _page(token: str) -> common_pb2.PageResponse:
    return common_pb2.PageResponse(next_page_token=token)


def option_to_proto(option: ProgramOption) -> pb.ProgramOption:
    return pb.ProgramOption(
        id=str(option.id),
        program_id=str(option.program_id),
        code=option.code,
        name=option.name,
        benefit=option.benefit,
    )


def program_to_proto(view: domain.ProgramView) -> pb.Program:
    program = view.program
    return pb.Program(
        id=str(program.id),
        code=program.code,
        name=program.name,
        description=program.description,
        benefits=program.benefits,
        options=[option_to_proto(o) for o in view.options],
        create_time=_timestamp(program.created_at),
    )


def membership_to_proto(view: domain.MembershipView) -> pb.WorkshopMembership:
    m: WorkshopMembership = view.membership
    window = pb.RemovalWindow(open=m.window_open)
    if m.window_open:
        window.opened_on = _day(m.window_opened_on)
        window.closes_on = _day(m.window_closes_on)
    if m.status == MembershipStatus.ACTIVE:
        window.next_opens_on = _day(m.renewal_date)
    return pb.WorkshopMembership(
        id=str(m.id),
        workshop_id=str(m.workshop_id),
        program_id=str(m.program_id),
        program_name=view.program.name,
        status=_MEMBERSHIP_STATUS[MembershipStatus(m.status)],
        renewal_date=_day(m.renewal_date),
        workshop=pb.WorkshopInfo(
            name=m.workshop_name,
            email=m.workshop_email,
            phone=m.workshop_phone,
            address_line=m.address_line,
            postal_code=m.postal_code,
            city=m.city,
        ),
        wholesaler=pb.Contact(name=m.wholesaler_name, email=m.wholesaler_email),
        distributor=pb.Contact(name=m.distributor_name, email=m.distributor_email),
        options=[option_to_proto(o) for o in view.options],
        removal_window=window,
        ended_on=_day(m.ended_on),
        create_time=_timestamp(m.created_at),
    )


def option_request_to_proto(view: domain.OptionRequestView) -> pb.OptionChangeRequest:
    r = view.request
    return pb.OptionChangeRequest(
        id=str(r.id),
        membership_id=str(r.membership_id),
        workshop_id=str(view.membership.workshop_id),
        option=option_to_proto(view.option),
        change=_OPTION_CHANGE[OptionChange(r.change)],
        channel=_CHANNEL[RequestChannel(r.channel)],
        status=_OPTION_STATUS[OptionChangeStatus(r.status)],
        note=r.note,
        requested_by=r.requested_by,
        create_time=_timestamp(r.created_at),
        decided_by=r.decided_by or "",
        decision_note=r.decision_note or "",
        decide_time=_timestamp(r.decided_at),
    )


def technician_to_proto(technician: Technician) -> pb.Technician:
    return pb.Technician(
        id=str(technician.id),
        workshop_id=str(technician.workshop_id),
        first_name=technician.first_name,
        last_name=technician.last_name,
        email=technician.email,
        create_time=_timestamp(technician.created_at),
    )


def course_to_proto(view: domain.CourseView) -> pb.TrainingCourse:
    c = view.course
    return pb.TrainingCourse(
        id=str(c.id),
        code=c.code,
        title=c.title,
        description=c.description,
        starts_on=_day(c.starts_on),
        ends_on=_day(c.ends_on),
        location=c.location,
        capacity=c.capacity,
        seats_taken=view.seats_taken,
        create_time=_timestamp(c.created_at),
    )


def course_registration_to_proto(view: domain.CourseRegistrationView) -> pb.CourseRegistration:
    r, t = view.registration, view.technician
    return pb.CourseRegistration(
        id=str(r.id),
        course=course_to_proto(view.course),
        technician_id=str(t.id),
        technician_name=f"{t.first_name} {t.last_name}",
        workshop_id=str(r.workshop_id),
        status=_COURSE_STATUS[CourseRegistrationStatus(r.status)],
        create_time=_timestamp(r.created_at),
        update_time=_timestamp(r.updated_at),
    )


def claim_to_proto(view: domain.ClaimView) -> pb.WarrantyClaim:
    c = view.claim
    return pb.WarrantyClaim(
        id=str(c.id),
        number=f"GMO-{c.number:06d}",
        workshop_id=str(c.workshop_id),
        vehicle_vin=c.vehicle_vin,
        repair_order=c.repair_order,
        repair_date=_day(c.repair_date),
        technician_id=str(c.technician_id) if c.technician_id else "",
        labour_minutes=c.labour_minutes,
        amount_cents=c.amount_cents,
        description=c.description,
        status=_CLAIM_STATUS[ClaimStatus(c.status)],
        history=[
            pb.WarrantyClaimEvent(
                from_status=(
                    _CLAIM_STATUS[ClaimStatus(e.from_status)]
                    if e.from_status
                    else pb.WARRANTY_CLAIM_STATUS_UNSPECIFIED
                ),
                to_status=_CLAIM_STATUS[ClaimStatus(e.to_status)],
                actor_id=e.actor_id,
                note=e.note,
                time=_timestamp(e.at),
            )
            for e in view.history
        ],
        create_time=_timestamp(c.created_at),
        update_time=_timestamp(c.updated_at),
    )


def member_to_proto(view: domain.MemberView) -> pb.Member:
    m = view.member
    return pb.Member(
        id=str(m.id),
        association_id=str(m.association_id),
        user_id=str(m.user_id) if m.user_id else "",
        first_name=m.first_name,
        last_name=m.last_name,
        email=m.email,
        joined_on=_day(m.joined_on),
        fees=[
            pb.FeePayment(year=f.year, amount_cents=f.amount_cents, paid_on=_day(f.paid_on))
            for f in view.fees
        ],
        create_time=_timestamp(m.created_at),
    )


def training_to_proto(view: domain.TrainingView) -> pb.Training:
    t = view.training
    return pb.Training(
        id=str(t.id),
        association_id=str(t.association_id),
        training_type=t.training_type,
        title=t.title,
        start_time=_timestamp(t.starts_at),
        location=t.location,
        capacity=t.capacity,
        seats_taken=view.seats_taken,
        public=t.public,
        create_time=_timestamp(t.created_at),
    )


def client_ref(record: ClientRecord) -> pb.ClientRef:
    return pb.ClientRef(id=str(record.id), number=record.number, company_name=record.company_name)


def registration_to_proto(view: domain.RegistrationView) -> pb.TrainingRegistration:
    r = view.registration
    return pb.TrainingRegistration(
        id=str(r.id),
        training_id=str(r.training_id),
        association_id=str(r.association_id),
        training_type=r.training_type,
        trainee=pb.Trainee(
            first_name=r.first_name,
            last_name=r.last_name,
            birth_date=_day(r.birth_date),
            email=r.email,
            phone=r.phone,
        ),
        status=_REGISTRATION_STATUS[RegistrationStatus(r.status)],
        cancel_reason=r.cancel_reason or "",
        client=client_ref(view.client),
        create_time=_timestamp(r.created_at),
        validate_time=_timestamp(r.validated_at),
    )


def coverage_to_proto(view: domain.CoverageView) -> pb.CoverageRequest:
    r = view.request
    return pb.CoverageRequest(
        id=str(r.id),
        association_id=str(r.association_id),
        event_name=r.event_name,
        event_date=_day(r.event_date),
        location=r.location,
        expected_attendance=r.expected_attendance,
        organiser=pb.Organiser(
            company_name=r.company_name,
            siret=r.siret or "",
            client_number=view.client.number,
            contact_name=r.contact_name,
            email=r.email,
            phone=r.phone,
        ),
        client=client_ref(view.client),
        create_time=_timestamp(r.created_at),
    )


def record_to_proto(view: domain.RecordView) -> pb.ClientRecord:
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
        create_time=_timestamp(r.created_at),
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
        time=_timestamp(entry.at),
    )


def _workshop_input(info: pb.WorkshopInfo) -> domain.WorkshopInput:
    return domain.WorkshopInput(
        name=info.name,
        email=info.email,
        phone=info.phone,
        address_line=info.address_line,
        postal_code=info.postal_code,
        city=info.city,
    )


def _contact(contact: pb.Contact) -> domain.ContactInput:
    return domain.ContactInput(name=contact.name, email=contact.email)


# --- servicer ---------------------------------------------------------------------------------


class MembershipServicer(membership_pb2_grpc.MembershipServiceServicer):
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        settings: MembershipSettings,
        directory: domain.Directory,
        relay: OutboxRelay | None,
        signals: RenewalSignalRelay | None,
        clock: Clock = utcnow,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._directory = directory
        self._relay = relay
        self._signals = signals
        self._clock = clock

    def _enqueued(self) -> None:
        """After a commit that may have recorded mail or a workflow start."""
        if self._relay is not None:
            self._relay.wake()

    def _signalled(self) -> None:
        if self._signals is not None:
            self._signals.wake()

    # --- banner programs ----------------------------------------------------------------------

    async def CreateProgram(
        self, request: pb.CreateProgramRequest, context: Context
    ) -> pb.CreateProgramResponse:
        async with self._sessions.begin() as session:
            view = await domain.create_program(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                code=request.code,
                name=request.name,
                description=request.description,
                benefits=list(request.benefits),
            )
        return pb.CreateProgramResponse(program=program_to_proto(view))

    async def ListPrograms(
        self, request: pb.ListProgramsRequest, context: Context
    ) -> pb.ListProgramsResponse:
        async with self._sessions.begin() as session:
            page = await domain.list_programs(
                session=session,
                actor=current_principal(),
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListProgramsResponse(
            programs=[program_to_proto(p) for p in page.items], page=_page(page.next_page_token)
        )

    async def AddProgramOption(
        self, request: pb.AddProgramOptionRequest, context: Context
    ) -> pb.AddProgramOptionResponse:
        async with self._sessions.begin() as session:
            option = await domain.add_program_option(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                program_id=request.program_id,
                code=request.code,
                name=request.name,
                benefit=request.benefit,
            )
        return pb.AddProgramOptionResponse(option=option_to_proto(option))

    # --- workshop memberships -------------------------------------------------------------------

    async def CreateWorkshopMembership(
        self, request: pb.CreateWorkshopMembershipRequest, context: Context
    ) -> pb.CreateWorkshopMembershipResponse:
        async with self._sessions.begin() as session:
            view = await domain.create_workshop_membership(
                session=session,
                settings=self._settings,
                directory=self._directory,
                actor=current_principal(),
                now=self._clock(),
                workshop_id=request.workshop_id,
                program_id=request.program_id,
                renewal_date=request.renewal_date,
                workshop=_workshop_input(request.workshop),
                wholesaler=_contact(request.wholesaler),
                distributor=_contact(request.distributor),
                option_ids=list(request.option_ids),
            )
        self._enqueued()
        return pb.CreateWorkshopMembershipResponse(membership=membership_to_proto(view))

    async def ListWorkshopMemberships(
        self, request: pb.ListWorkshopMembershipsRequest, context: Context
    ) -> pb.ListWorkshopMembershipsResponse:
        async with self._sessions.begin() as session:
            page = await domain.list_workshop_memberships(
                session=session,
                actor=current_principal(),
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListWorkshopMembershipsResponse(
            memberships=[membership_to_proto(m) for m in page.items],
            page=_page(page.next_page_token),
        )

    async def GetWorkshop(
        self, request: pb.GetWorkshopRequest, context: Context
    ) -> pb.GetWorkshopResponse:
        async with self._sessions.begin() as session:
            view = await domain.get_workshop(
                session=session, actor=current_principal(), workshop_id=request.workshop_id
            )
        return pb.GetWorkshopResponse(
            membership=membership_to_proto(view),
            program=program_to_proto(domain.ProgramView(view.program, view.program_options)),
        )

    async def UpdateWorkshopContacts(
        self, request: pb.UpdateWorkshopContactsRequest, context: Context
    ) -> pb.UpdateWorkshopContactsResponse:
        async with self._sessions.begin() as session:
            view = await domain.update_workshop_contacts(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                workshop_id=request.workshop_id,
                workshop=_workshop_input(request.workshop),
                wholesaler=_contact(request.wholesaler),
                distributor=_contact(request.distributor),
            )
        return pb.UpdateWorkshopContactsResponse(membership=membership_to_proto(view))

    async def ChangeRenewalDate(
        self, request: pb.ChangeRenewalDateRequest, context: Context
    ) -> pb.ChangeRenewalDateResponse:
        async with self._sessions.begin() as session:
            view = await domain.change_renewal_date(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                workshop_id=request.workshop_id,
                renewal_date=request.renewal_date,
            )
        self._signalled()
        return pb.ChangeRenewalDateResponse(membership=membership_to_proto(view))

    async def EndWorkshopMembership(
        self, request: pb.EndWorkshopMembershipRequest, context: Context
    ) -> pb.EndWorkshopMembershipResponse:
        async with self._sessions.begin() as session:
            view = await domain.end_workshop_membership(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                workshop_id=request.workshop_id,
                reason=request.reason,
            )
        self._signalled()
        return pb.EndWorkshopMembershipResponse(membership=membership_to_proto(view))

    # --- option changes -------------------------------------------------------------------------

    async def RequestOptionChange(
        self, request: pb.RequestOptionChangeRequest, context: Context
    ) -> pb.RequestOptionChangeResponse:
        async with self._sessions.begin() as session:
            view = await domain.request_option_change(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                workshop_id=request.workshop_id,
                option_id=request.option_id,
                change=_name_of(request.change, _OPTION_CHANGE),
                channel=_CHANNEL_IN.get(request.channel, ""),
                note=request.note,
            )
        self._enqueued()
        return pb.RequestOptionChangeResponse(request=option_request_to_proto(view))

    async def ListOptionChangeRequests(
        self, request: pb.ListOptionChangeRequestsRequest, context: Context
    ) -> pb.ListOptionChangeRequestsResponse:
        async with self._sessions.begin() as session:
            page = await domain.list_option_change_requests(
                session=session,
                actor=current_principal(),
                workshop_id=request.workshop_id,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListOptionChangeRequestsResponse(
            requests=[option_request_to_proto(r) for r in page.items],
            page=_page(page.next_page_token),
        )

    async def DecideOptionChange(
        self, request: pb.DecideOptionChangeRequest, context: Context
    ) -> pb.DecideOptionChangeResponse:
        async with self._sessions.begin() as session:
            view, membership = await domain.decide_option_change(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                workshop_id=request.workshop_id,
                request_id=request.request_id,
                approve=request.approve,
                note=request.note,
            )
        return pb.DecideOptionChangeResponse(
            request=option_request_to_proto(view), membership=membership_to_proto(membership)
        )

    # --- technicians and courses -----------------------------------------------------------------

    async def AddTechnician(
        self, request: pb.AddTechnicianRequest, context: Context
    ) -> pb.AddTechnicianResponse:
        async with self._sessions.begin() as session:
            technician = await domain.add_technician(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                workshop_id=request.workshop_id,
                first_name=request.first_name,
                last_name=request.last_name,
                email=request.email,
            )
        return pb.AddTechnicianResponse(technician=technician_to_proto(technician))

    async def ListTechnicians(
        self, request: pb.ListTechniciansRequest, context: Context
    ) -> pb.ListTechniciansResponse:
        async with self._sessions.begin() as session:
            page = await domain.list_technicians(
                session=session,
                actor=current_principal(),
                workshop_id=request.workshop_id,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListTechniciansResponse(
            technicians=[technician_to_proto(t) for t in page.items],
            page=_page(page.next_page_token),
        )

    async def CreateTrainingCourse(
        self, request: pb.CreateTrainingCourseRequest, context: Context
    ) -> pb.CreateTrainingCourseResponse:
        async with self._sessions.begin() as session:
            view = await domain.create_training_course(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                code=request.code,
                title=request.title,
                description=request.description,
                starts_on=request.starts_on,
                ends_on=request.ends_on,
                location=request.location,
                capacity=request.capacity,
            )
        return pb.CreateTrainingCourseResponse(course=course_to_proto(view))

    async def ListTrainingCourses(
        self, request: pb.ListTrainingCoursesRequest, context: Context
    ) -> pb.ListTrainingCoursesResponse:
        async with self._sessions.begin() as session:
            page = await domain.list_training_courses(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                upcoming_only=request.upcoming_only,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListTrainingCoursesResponse(
            courses=[course_to_proto(c) for c in page.items], page=_page(page.next_page_token)
        )

    async def RegisterTechnician(
        self, request: pb.RegisterTechnicianRequest, context: Context
    ) -> pb.RegisterTechnicianResponse:
        async with self._sessions.begin() as session:
            view = await domain.register_technician(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                workshop_id=request.workshop_id,
                course_id=request.course_id,
                technician_id=request.technician_id,
            )
        return pb.RegisterTechnicianResponse(registration=course_registration_to_proto(view))

    async def UpdateCourseRegistration(
        self, request: pb.UpdateCourseRegistrationRequest, context: Context
    ) -> pb.UpdateCourseRegistrationResponse:
        async with self._sessions.begin() as session:
            view = await domain.update_course_registration(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                workshop_id=request.workshop_id,
                registration_id=request.registration_id,
                status=_name_of(request.status, _COURSE_STATUS),
            )
        return pb.UpdateCourseRegistrationResponse(registration=course_registration_to_proto(view))

    async def ListCourseRegistrations(
        self, request: pb.ListCourseRegistrationsRequest, context: Context
    ) -> pb.ListCourseRegistrationsResponse:
        async with self._sessions.begin() as session:
            page = await domain.list_course_registrations(
                session=session,
                actor=current_principal(),
                workshop_id=request.workshop_id,
                technician_id=request.technician_id,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListCourseRegistrationsResponse(
            registrations=[course_registration_to_proto(r) for r in page.items],
            page=_page(page.next_page_token),
        )

    # --- warranty claims -----------------------------------------------------------------------

    async def SubmitWarrantyClaim(
        self, request: pb.SubmitWarrantyClaimRequest, context: Context
    ) -> pb.SubmitWarrantyClaimResponse:
        async with self._sessions.begin() as session:
            view = await domain.submit_warranty_claim(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                workshop_id=request.workshop_id,
                vehicle_vin=request.vehicle_vin,
                repair_order=request.repair_order,
                repair_date=request.repair_date,
                technician_id=request.technician_id,
                labour_minutes=request.labour_minutes,
                amount_cents=request.amount_cents,
                description=request.description,
            )
        return pb.SubmitWarrantyClaimResponse(claim=claim_to_proto(view))

    async def GetWarrantyClaim(
        self, request: pb.GetWarrantyClaimRequest, context: Context
    ) -> pb.GetWarrantyClaimResponse:
        async with self._sessions.begin() as session:
            view = await domain.get_warranty_claim(
                session=session,
                actor=current_principal(),
                workshop_id=request.workshop_id,
                claim_id=request.claim_id,
            )
        return pb.GetWarrantyClaimResponse(claim=claim_to_proto(view))

    async def ListWarrantyClaims(
        self, request: pb.ListWarrantyClaimsRequest, context: Context
    ) -> pb.ListWarrantyClaimsResponse:
        async with self._sessions.begin() as session:
            page = await domain.list_warranty_claims(
                session=session,
                actor=current_principal(),
                workshop_id=request.workshop_id,
                status=_name_of(request.status, _CLAIM_STATUS),
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListWarrantyClaimsResponse(
            claims=[claim_to_proto(c) for c in page.items], page=_page(page.next_page_token)
        )

    async def TransitionWarrantyClaim(
        self, request: pb.TransitionWarrantyClaimRequest, context: Context
    ) -> pb.TransitionWarrantyClaimResponse:
        async with self._sessions.begin() as session:
            view = await domain.transition_warranty_claim(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                workshop_id=request.workshop_id,
                claim_id=request.claim_id,
                to_status=_name_of(request.to_status, _CLAIM_STATUS),
                note=request.note,
            )
        return pb.TransitionWarrantyClaimResponse(claim=claim_to_proto(view))

    # --- association members and fees ---------------------------------------------------------

    async def AddMember(
        self, request: pb.AddMemberRequest, context: Context
    ) -> pb.AddMemberResponse:
        async with self._sessions.begin() as session:
            view = await domain.add_member(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                association_id=request.association_id,
                user_id=request.user_id,
                first_name=request.first_name,
                last_name=request.last_name,
                email=request.email,
                joined_on=request.joined_on,
            )
        return pb.AddMemberResponse(member=member_to_proto(view))

    async def ListMembers(
        self, request: pb.ListMembersRequest, context: Context
    ) -> pb.ListMembersResponse:
        fee_filter = {pb.FEE_FILTER_PAID: "paid", pb.FEE_FILTER_UNPAID: "unpaid"}
        async with self._sessions.begin() as session:
            page = await domain.list_members(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                association_id=request.association_id,
                fee_year=request.fee_year,
                fee_filter=fee_filter.get(request.fee_filter, ""),
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListMembersResponse(
            members=[member_to_proto(m) for m in page.items], page=_page(page.next_page_token)
        )

    async def RecordFeePayment(
        self, request: pb.RecordFeePaymentRequest, context: Context
    ) -> pb.RecordFeePaymentResponse:
        async with self._sessions.begin() as session:
            view = await domain.record_fee_payment(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                association_id=request.association_id,
                member_id=request.member_id,
                year=request.year,
                amount_cents=request.amount_cents,
                paid_on=request.paid_on,
            )
        return pb.RecordFeePaymentResponse(member=member_to_proto(view))

    async def IsFeePaid(
        self, request: pb.IsFeePaidRequest, context: Context
    ) -> pb.IsFeePaidResponse:
        async with self._sessions.begin() as session:
            status = await domain.is_fee_paid(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                organisation_id=request.organisation_id,
                user_id=request.user_id,
                year=request.year,
            )
        return pb.IsFeePaidResponse(
            paid=status.paid,
            year=status.year,
            member_id=str(status.member_id) if status.member_id else "",
            paid_on=_day(status.paid_on),
        )

    # --- association trainings -----------------------------------------------------------------

    async def CreateTraining(
        self, request: pb.CreateTrainingRequest, context: Context
    ) -> pb.CreateTrainingResponse:
        starts_at = (
            request.start_time.ToDatetime(tzinfo=UTC) if request.HasField("start_time") else None
        )
        async with self._sessions.begin() as session:
            view = await domain.create_training(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                association_id=request.association_id,
                training_type=request.training_type,
                title=request.title,
                starts_at=starts_at,
                location=request.location,
                capacity=request.capacity,
                public=request.public,
            )
        return pb.CreateTrainingResponse(training=training_to_proto(view))

    async def ListTrainings(
        self, request: pb.ListTrainingsRequest, context: Context
    ) -> pb.ListTrainingsResponse:
        async with self._sessions.begin() as session:
            page = await domain.list_trainings(
                session=session,
                actor=current_principal(),
                association_id=request.association_id,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListTrainingsResponse(
            trainings=[training_to_proto(t) for t in page.items], page=_page(page.next_page_token)
        )

    async def ListPublicTrainings(
        self, request: pb.ListPublicTrainingsRequest, context: Context
    ) -> pb.ListPublicTrainingsResponse:
        async with self._sessions.begin() as session:
            page = await domain.list_public_trainings(
                session=session,
                now=self._clock(),
                association_id=request.association_id,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListPublicTrainingsResponse(
            trainings=[training_to_proto(t) for t in page.items], page=_page(page.next_page_token)
        )

    async def RegisterForTraining(
        self, request: pb.RegisterForTrainingRequest, context: Context
    ) -> pb.RegisterForTrainingResponse:
        trainee, requester = request.trainee, request.requester
        async with self._sessions.begin() as session:
            result = await domain.register_for_training(
                session=session,
                settings=self._settings,
                now=self._clock(),
                association_id=request.association_id,
                training_id=request.training_id,
                trainee=domain.TraineeInput(
                    first_name=trainee.first_name,
                    last_name=trainee.last_name,
                    birth_date=trainee.birth_date,
                    email=trainee.email,
                    phone=trainee.phone,
                ),
                requester=domain.RequesterInput(
                    company_name=requester.company_name,
                    siret=requester.siret,
                    client_number=requester.client_number,
                    email="",
                    contact_name="",
                ),
            )
        self._enqueued()
        return pb.RegisterForTrainingResponse(
            registration=registration_to_proto(result.view),
            cancelled_registration_id=str(result.cancelled_registration_id or ""),
            new_client_record=result.new_client_record,
        )

    async def ValidateRegistration(
        self, request: pb.ValidateRegistrationRequest, context: Context
    ) -> pb.ValidateRegistrationResponse:
        async with self._sessions.begin() as session:
            view = await domain.validate_registration(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                association_id=request.association_id,
                registration_id=request.registration_id,
            )
        self._enqueued()
        return pb.ValidateRegistrationResponse(registration=registration_to_proto(view))

    async def ListTrainees(
        self, request: pb.ListTraineesRequest, context: Context
    ) -> pb.ListTraineesResponse:
        async with self._sessions.begin() as session:
            page = await domain.list_trainees(
                session=session,
                actor=current_principal(),
                association_id=request.association_id,
                training_id=request.training_id,
                include_cancelled=request.include_cancelled,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListTraineesResponse(
            registrations=[registration_to_proto(r) for r in page.items],
            page=_page(page.next_page_token),
        )

    async def CorrectTraineeEmail(
        self, request: pb.CorrectTraineeEmailRequest, context: Context
    ) -> pb.CorrectTraineeEmailResponse:
        async with self._sessions.begin() as session:
            view = await domain.correct_trainee_email(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                association_id=request.association_id,
                registration_id=request.registration_id,
                email=request.email,
            )
        return pb.CorrectTraineeEmailResponse(registration=registration_to_proto(view))

    # --- coverage requests ------------------------------------------------------------------------

    async def RequestCoverage(
        self, request: pb.RequestCoverageRequest, context: Context
    ) -> pb.RequestCoverageResponse:
        organiser = request.organiser
        async with self._sessions.begin() as session:
            view, created = await domain.request_coverage(
                session=session,
                settings=self._settings,
                directory=self._directory,
                now=self._clock(),
                association_id=request.association_id,
                event_name=request.event_name,
                event_date=request.event_date,
                location=request.location,
                expected_attendance=request.expected_attendance,
                organiser=domain.OrganiserInput(
                    company_name=organiser.company_name,
                    siret=organiser.siret,
                    client_number=organiser.client_number,
                    contact_name=organiser.contact_name,
                    email=organiser.email,
                    phone=organiser.phone,
                ),
            )
        self._enqueued()
        return pb.RequestCoverageResponse(
            request=coverage_to_proto(view), new_client_record=created
        )

    async def ListCoverageRequests(
        self, request: pb.ListCoverageRequestsRequest, context: Context
    ) -> pb.ListCoverageRequestsResponse:
        async with self._sessions.begin() as session:
            page = await domain.list_coverage_requests(
                session=session,
                actor=current_principal(),
                association_id=request.association_id,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListCoverageRequestsResponse(
            requests=[coverage_to_proto(r) for r in page.items], page=_page(page.next_page_token)
        )

    # --- client records ---------------------------------------------------------------------------

    async def ListClientRecords(
        self, request: pb.ListClientRecordsRequest, context: Context
    ) -> pb.ListClientRecordsResponse:
        async with self._sessions.begin() as session:
            page = await domain.list_client_records(
                session=session,
                actor=current_principal(),
                association_id=request.association_id,
                name_prefix=request.name_prefix,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListClientRecordsResponse(
            records=[record_to_proto(r) for r in page.items], page=_page(page.next_page_token)
        )

    async def GetClientRecord(
        self, request: pb.GetClientRecordRequest, context: Context
    ) -> pb.GetClientRecordResponse:
        async with self._sessions.begin() as session:
            view = await domain.get_client_record(
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
            page, totals = await domain.list_duplicates(
                session=session,
                actor=current_principal(),
                association_id=request.association_id,
                kind=_name_of(request.kind, _DUPLICATE_KIND),
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
            ),
            page=_page(page.next_page_token),
        )

    async def FindDuplicatesOf(
        self, request: pb.FindDuplicatesOfRequest, context: Context
    ) -> pb.FindDuplicatesOfResponse:
        async with self._sessions.begin() as session:
            record, candidates = await domain.find_duplicates_of(
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
            preview = await domain.preview_merge(
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
            result = await domain.merge_client_records(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                association_id=request.association_id,
                source_id=request.source_id,
                target_id=request.target_id,
            )
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
            entry = await domain.delete_client_record(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                association_id=request.association_id,
                record_id=request.record_id,
                confirmation=request.confirmation,
            )
        return pb.DeleteClientRecordResponse(audit=audit_to_proto(entry))

    async def ListClientRecordAudit(
        self, request: pb.ListClientRecordAuditRequest, context: Context
    ) -> pb.ListClientRecordAuditResponse:
        async with self._sessions.begin() as session:
            page = await domain.list_client_record_audit(
                session=session,
                actor=current_principal(),
                association_id=request.association_id,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListClientRecordAuditResponse(
            entries=[audit_to_proto(e) for e in page.items], page=_page(page.next_page_token)
        )

    async def ImportClientRecords(
        self, request: pb.ImportClientRecordsRequest, context: Context
    ) -> pb.ImportClientRecordsResponse:
        async with self._sessions.begin() as session:
            inserted, skipped = await domain.import_client_records(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                association_id=request.association_id,
                records=[
                    domain.ImportedRecord(
                        external_ref=r.external_ref,
                        company_name=r.company_name,
                        siret=r.siret,
                        email=r.email,
                        contact_name=r.contact_name,
                    )
                    for r in request.records
                ],
            )
        return pb.ImportClientRecordsResponse(inserted=inserted, skipped=skipped)

    # --- internal: renewal workflow -------------------------------------------------------------

    async def GetRenewalState(
        self, request: pb.GetRenewalStateRequest, context: Context
    ) -> pb.GetRenewalStateResponse:
        async with self._sessions.begin() as session:
            state = await domain.get_renewal_state(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                membership_id=request.membership_id,
            )
        m = state.membership
        return pb.GetRenewalStateResponse(
            membership_id=str(m.id),
            workshop_id=str(m.workshop_id),
            status=_MEMBERSHIP_STATUS[MembershipStatus(m.status)],
            renewal_date=_day(m.renewal_date),
            window_open=m.window_open,
            window_opened_on=_day(m.window_opened_on),
            window_closes_on=_day(m.window_closes_on),
            version=m.version,
            window_days=state.window_days,
            letter_lead_days=state.letter_lead_days,
        )

    async def SendAnniversaryLetter(
        self, request: pb.SendAnniversaryLetterRequest, context: Context
    ) -> pb.SendAnniversaryLetterResponse:
        async with self._sessions.begin() as session:
            sent, recipients = await domain.send_anniversary_letter(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                membership_id=request.membership_id,
                renewal_date=request.renewal_date,
            )
        self._enqueued()
        return pb.SendAnniversaryLetterResponse(sent=sent, recipients=recipients)

    async def OpenRemovalWindow(
        self, request: pb.OpenRemovalWindowRequest, context: Context
    ) -> pb.OpenRemovalWindowResponse:
        async with self._sessions.begin() as session:
            opened, membership = await domain.open_removal_window(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                membership_id=request.membership_id,
                renewal_date=request.renewal_date,
            )
        return pb.OpenRemovalWindowResponse(
            opened=opened,
            closes_on=_day(membership.window_closes_on) if membership.window_open else "",
            next_renewal_date=_day(membership.renewal_date),
        )

    async def CloseRemovalWindow(
        self, request: pb.CloseRemovalWindowRequest, context: Context
    ) -> pb.CloseRemovalWindowResponse:
        async with self._sessions.begin() as session:
            closed = await domain.close_removal_window(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                membership_id=request.membership_id,
                renewal_date=request.renewal_date,
            )
        return pb.CloseRemovalWindowResponse(closed=closed)


async def build(context: ServiceContext, *, clock: Clock = utcnow) -> Wiring:
    """Links to identity (tokens, organisations) and Temporal (signals), then the servicer."""
    settings = context.settings
    if not isinstance(settings, MembershipSettings):
        raise TypeError("membership needs MembershipSettings")
    identity = connect_identity(settings)
    context.exit_stack.push_async_callback(identity.close)
    signals = RenewalSignalRelay(
        context.sessions,
        lambda: connect_temporal(settings),
        task_queue=settings.temporal_task_queue,
        poll_interval=settings.signal_poll_interval,
    )
    task = asyncio.create_task(signals.run(), name="membership-renewal-signals")

    async def stop_signals() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    context.exit_stack.push_async_callback(stop_signals)
    servicer = MembershipServicer(
        sessions=context.sessions,
        settings=settings,
        directory=IdentityDirectory(identity.stub),
        relay=context.relay,
        signals=signals,
        clock=clock,
    )

    def register(server: grpc.aio.Server) -> None:
        membership_pb2_grpc.add_MembershipServiceServicer_to_server(servicer, server)

    return Wiring(
        register=register,
        service_names=[SERVICE_NAME],
        verifier=identity.verifier,
        public_methods=PUBLIC_METHODS,
    )


SPEC = ServiceSpec(
    name="membership",
    settings_class=MembershipSettings,
    migrations_dir=Path(__file__).parent / "migrations",
    build=build,
    outbox=outbox_table,
)
