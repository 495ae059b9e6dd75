"""The association portal's RPCs: members and fees, trainings and registrations,
first-aid coverage requests (three of them public)."""

from __future__ import annotations

from datetime import UTC

from guichet.membership.v1 import membership_pb2 as pb

from services.kit.auth import current_principal
from services.membership.domain.coverage import (
    CoverageView,
    OrganiserInput,
    list_coverage_requests,
    request_coverage,
)
from services.membership.domain.members import (
    MemberView,
    add_member,
    is_fee_paid,
    list_members,
    record_fee_payment,
)
from services.membership.domain.records import RequesterInput
from services.membership.domain.trainings import (
    RegistrationView,
    TraineeInput,
    TrainingView,
    correct_trainee_email,
    create_training,
    list_public_trainings,
    list_trainees,
    list_trainings,
    register_for_training,
    validate_registration,
)
from services.membership.domain.zones import (
    AssociationZone,
    get_association_zone,
    set_association_zone,
)
from services.membership.models import ClientRecord, RegistrationStatus
from services.membership.servicer.base import (
    Context,
    ServicerBase,
    proto_day,
    proto_page,
    proto_time,
)

_REGISTRATION_STATUS = {
    RegistrationStatus.REGISTERED: pb.REGISTRATION_STATUS_REGISTERED,
    RegistrationStatus.VALIDATED: pb.REGISTRATION_STATUS_VALIDATED,
    RegistrationStatus.CANCELLED: pb.REGISTRATION_STATUS_CANCELLED,
}


def association_settings_to_proto(zone: AssociationZone) -> pb.AssociationSettings:
    return pb.AssociationSettings(
        association_id=str(zone.association_id),
        time_zone=zone.time_zone,
        chosen=zone.chosen,
        updated_by=zone.updated_by,
        update_time=proto_time(zone.updated_at),
    )


def member_to_proto(view: MemberView) -> pb.Member:
    m = view.member
    return pb.Member(
        id=str(m.id),
        association_id=str(m.association_id),
        user_id=str(m.user_id) if m.user_id else "",
        first_name=m.first_name,
        last_name=m.last_name,
        email=m.email,
        joined_on=proto_day(m.joined_on),
        fees=[
            pb.FeePayment(
                year=f.year,
                amount_cents=f.amount_cents,
                paid_on=proto_day(f.paid_on),
                currency=f.currency,
            )
            for f in view.fees
        ],
        create_time=proto_time(m.created_at),
    )


def training_to_proto(view: TrainingView) -> pb.Training:
    t = view.training
    return pb.Training(
        id=str(t.id),
        association_id=str(t.association_id),
        training_type=t.training_type,
        title=t.title,
        start_time=proto_time(t.starts_at),
        location=t.location,
        capacity=t.capacity,
        seats_taken=view.seats_taken,
        public=t.public,
        create_time=proto_time(t.created_at),
    )


def client_ref(record: ClientRecord) -> pb.ClientRef:
    return pb.ClientRef(id=str(record.id), number=record.number, company_name=record.company_name)


def registration_to_proto(view: RegistrationView) -> pb.TrainingRegistration:
    r = view.registration
    return pb.TrainingRegistration(
        id=str(r.id),
        training_id=str(r.training_id),
        association_id=str(r.association_id),
        training_type=r.training_type,
        trainee=pb.Trainee(
            first_name=r.first_name,
            last_name=r.last_name,
            birth_date=proto_day(r.birth_date),
            email=r.email,
            phone=r.phone,
        ),
        status=_REGISTRATION_STATUS[RegistrationStatus(r.status)],
        cancel_reason=r.cancel_reason or "",
        client=client_ref(view.client),
        create_time=proto_time(r.created_at),
        validate_time=proto_time(r.validated_at),
    )


def coverage_to_proto(view: CoverageView) -> pb.CoverageRequest:
    r = view.request
    return pb.CoverageRequest(
        id=str(r.id),
        association_id=str(r.association_id),
        event_name=r.event_name,
        event_date=proto_day(r.event_date),
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
        create_time=proto_time(r.created_at),
    )


class AssociationRpcs(ServicerBase):
    """Association members and fees, trainings and registrations, coverage requests."""

    # --- association members and fees ---------------------------------------------------------

    async def AddMember(
        self, request: pb.AddMemberRequest, context: Context
    ) -> pb.AddMemberResponse:
        async with self._sessions.begin() as session:
            view = await add_member(
                session=session,
                settings=self._settings,
                directory=self._directory,
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
            page = await list_members(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                association_id=request.association_id,
                fee_year=request.fee_year,
                fee_filter=fee_filter.get(request.fee_filter, ""),
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListMembersResponse(
            members=[member_to_proto(m) for m in page.items], page=proto_page(page.next_page_token)
        )

    async def RecordFeePayment(
        self, request: pb.RecordFeePaymentRequest, context: Context
    ) -> pb.RecordFeePaymentResponse:
        async with self._sessions.begin() as session:
            view = await record_fee_payment(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                association_id=request.association_id,
                member_id=request.member_id,
                year=request.year,
                amount_cents=request.amount_cents,
                paid_on=request.paid_on,
            )
        return pb.RecordFeePaymentResponse(member=member_to_proto(view))

    async def GetAssociationSettings(
        self, request: pb.GetAssociationSettingsRequest, context: Context
    ) -> pb.GetAssociationSettingsResponse:
        async with self._sessions.begin() as session:
            zone = await get_association_zone(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                association_id=request.association_id,
            )
        return pb.GetAssociationSettingsResponse(settings=association_settings_to_proto(zone))

    async def SetAssociationTimeZone(
        self, request: pb.SetAssociationTimeZoneRequest, context: Context
    ) -> pb.SetAssociationTimeZoneResponse:
        async with self._sessions.begin() as session:
            zone = await set_association_zone(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                association_id=request.association_id,
                time_zone=request.time_zone,
            )
        return pb.SetAssociationTimeZoneResponse(settings=association_settings_to_proto(zone))

    async def IsFeePaid(
        self, request: pb.IsFeePaidRequest, context: Context
    ) -> pb.IsFeePaidResponse:
        async with self._sessions.begin() as session:
            status = await is_fee_paid(
                session=session,
                settings=self._settings,
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
            paid_on=proto_day(status.paid_on),
        )

    # --- association trainings -----------------------------------------------------------------

    async def CreateTraining(
        self, request: pb.CreateTrainingRequest, context: Context
    ) -> pb.CreateTrainingResponse:
        starts_at = (
            request.start_time.ToDatetime(tzinfo=UTC) if request.HasField("start_time") else None
        )
        async with self._sessions.begin() as session:
            view = await create_training(
                session=session,
                directory=self._directory,
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
            page = await list_trainings(
                session=session,
                actor=current_principal(),
                association_id=request.association_id,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListTrainingsResponse(
            trainings=[training_to_proto(t) for t in page.items],
            page=proto_page(page.next_page_token),
        )

    async def ListPublicTrainings(
        self, request: pb.ListPublicTrainingsRequest, context: Context
    ) -> pb.ListPublicTrainingsResponse:
        async with self._sessions.begin() as session:
            page = await list_public_trainings(
                session=session,
                now=self._clock(),
                association_id=request.association_id,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListPublicTrainingsResponse(
            trainings=[training_to_proto(t) for t in page.items],
            page=proto_page(page.next_page_token),
        )

    async def RegisterForTraining(
        self, request: pb.RegisterForTrainingRequest, context: Context
    ) -> pb.RegisterForTrainingResponse:
        trainee, requester = request.trainee, request.requester
        async with self._sessions.begin() as session:
            result = await register_for_training(
                session=session,
                settings=self._settings,
                now=self._clock(),
                association_id=request.association_id,
                training_id=request.training_id,
                trainee=TraineeInput(
                    first_name=trainee.first_name,
                    last_name=trainee.last_name,
                    birth_date=trainee.birth_date,
                    email=trainee.email,
                    phone=trainee.phone,
                ),
                requester=RequesterInput(
                    company_name=requester.company_name,
                    siret=requester.siret,
                    client_number=requester.client_number,
                    email="",
                    contact_name="",
                ),
            )
        self._enqueued()
        self._records_changed()
        return pb.RegisterForTrainingResponse(
            registration=registration_to_proto(result.view),
            cancelled_registration_id=str(result.cancelled_registration_id or ""),
            new_client_record=result.new_client_record,
        )

    async def ValidateRegistration(
        self, request: pb.ValidateRegistrationRequest, context: Context
    ) -> pb.ValidateRegistrationResponse:
        async with self._sessions.begin() as session:
            view = await validate_registration(
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
            page = await list_trainees(
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
            page=proto_page(page.next_page_token),
        )

    async def CorrectTraineeEmail(
        self, request: pb.CorrectTraineeEmailRequest, context: Context
    ) -> pb.CorrectTraineeEmailResponse:
        async with self._sessions.begin() as session:
            view = await correct_trainee_email(
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
            view, created = await request_coverage(
                session=session,
                settings=self._settings,
                directory=self._directory,
                now=self._clock(),
                association_id=request.association_id,
                event_name=request.event_name,
                event_date=request.event_date,
                location=request.location,
                expected_attendance=request.expected_attendance,
                organiser=OrganiserInput(
                    company_name=organiser.company_name,
                    siret=organiser.siret,
                    client_number=organiser.client_number,
                    contact_name=organiser.contact_name,
                    email=organiser.email,
                    phone=organiser.phone,
                ),
            )
        self._enqueued()
        self._records_changed()
        return pb.RequestCoverageResponse(
            request=coverage_to_proto(view), new_client_record=created
        )

    async def ListCoverageRequests(
        self, request: pb.ListCoverageRequestsRequest, context: Context
    ) -> pb.ListCoverageRequestsResponse:
        async with self._sessions.begin() as session:
            page = await list_coverage_requests(
                session=session,
                actor=current_principal(),
                association_id=request.association_id,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListCoverageRequestsResponse(
            requests=[coverage_to_proto(r) for r in page.items],
            page=proto_page(page.next_page_token),
        )
