"""The banner portal's RPCs: programs, workshop memberships and option-change requests."""

from __future__ import annotations

from datetime import timedelta

from guichet.membership.v1 import membership_pb2 as pb

from services.kit.auth import current_principal
from services.membership.domain.banner import (
    ContactInput,
    MembershipView,
    OptionTranslation,
    ProgramView,
    WorkshopInput,
    add_program_option,
    change_renewal_date,
    create_program,
    create_workshop_membership,
    end_workshop_membership,
    get_workshop,
    list_programs,
    list_workshop_memberships,
    set_program_time_zone,
    set_workshop_time_zone,
    update_program_option,
    update_workshop_contacts,
)
from services.membership.domain.options import (
    OptionRequestView,
    decide_option_change,
    list_option_change_requests,
    request_option_change,
)
from services.membership.domain.renewals import resend_anniversary_letter
from services.membership.models import (
    MembershipStatus,
    OptionChange,
    OptionChangeStatus,
    ProgramOption,
    RequestChannel,
    WorkshopMembership,
)
from services.membership.servicer.base import (
    MEMBERSHIP_STATUS,
    Context,
    ServicerBase,
    name_of,
    proto_day,
    proto_page,
    proto_time,
)

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


def option_to_proto(option: ProgramOption) -> pb.ProgramOption:
    return pb.ProgramOption(
        id=str(option.id),
        program_id=str(option.program_id),
        code=option.code,
        name=option.name,
        benefit=option.benefit,
        translations=[
            pb.ProgramOptionTranslation(locale=tag, name=texts["name"], benefit=texts["benefit"])
            for tag, texts in sorted(option.translations.items())
        ],
    )


def program_to_proto(view: ProgramView) -> pb.Program:
    program = view.program
    return pb.Program(
        id=str(program.id),
        code=program.code,
        name=program.name,
        description=program.description,
        benefits=program.benefits,
        options=[option_to_proto(o) for o in view.options],
        create_time=proto_time(program.created_at),
        time_zone=program.time_zone,
    )


def letter_to_proto(view: MembershipView, letter_lead_days: int) -> pb.AnniversaryLetter:
    """This renewal's letter: sent (when, to whom, sent again by whom and why), or its day."""
    m, letter = view.membership, view.letter
    if letter is None:
        due = m.renewal_date - timedelta(days=letter_lead_days)
        return pb.AnniversaryLetter(due_on=proto_day(due), sent=False)
    return pb.AnniversaryLetter(
        renewal_date=proto_day(letter.renewal_date),
        sent_time=proto_time(letter.sent_at),
        recipients=list(letter.recipients),
        sent=True,
        resends=[
            pb.LetterResend(
                renewal_date=proto_day(r.renewal_date),
                time=proto_time(r.at),
                requested_by=r.requested_by,
                reason=r.reason,
            )
            for r in view.resends
        ],
    )


def membership_to_proto(view: MembershipView, letter_lead_days: int) -> pb.WorkshopMembership:
    m: WorkshopMembership = view.membership
    window = pb.RemovalWindow(open=m.window_open)
    if m.window_open:
        window.opened_on = proto_day(m.window_opened_on)
        window.closes_on = proto_day(m.window_closes_on)
    if m.status == MembershipStatus.ACTIVE:
        window.next_opens_on = proto_day(m.renewal_date)
    return pb.WorkshopMembership(
        id=str(m.id),
        workshop_id=str(m.workshop_id),
        program_id=str(m.program_id),
        program_name=view.program.name,
        status=MEMBERSHIP_STATUS[MembershipStatus(m.status)],
        renewal_date=proto_day(m.renewal_date),
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
        ended_on=proto_day(m.ended_on),
        create_time=proto_time(m.created_at),
        time_zone=m.time_zone,
        effective_time_zone=view.time_zone,
        anniversary=proto_day(m.anniversary),
        workshop_code=m.workshop_code,
        letter=letter_to_proto(view, letter_lead_days)
        if m.status == MembershipStatus.ACTIVE
        else None,
    )


def option_request_to_proto(view: OptionRequestView) -> pb.OptionChangeRequest:
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
        create_time=proto_time(r.created_at),
        decided_by=r.decided_by or "",
        decision_note=r.decision_note or "",
        decide_time=proto_time(r.decided_at),
    )


def _workshop_input(info: pb.WorkshopInfo) -> WorkshopInput:
    return WorkshopInput(
        name=info.name,
        email=info.email,
        phone=info.phone,
        address_line=info.address_line,
        postal_code=info.postal_code,
        city=info.city,
    )


def _contact(contact: pb.Contact) -> ContactInput:
    return ContactInput(name=contact.name, email=contact.email)


class BannerRpcs(ServicerBase):
    """Banner programs, workshop memberships and option-change requests."""

    def _membership(self, view: MembershipView) -> pb.WorkshopMembership:
        return membership_to_proto(view, self._settings.letter_lead_days)

    # --- banner programs ----------------------------------------------------------------------

    async def CreateProgram(
        self, request: pb.CreateProgramRequest, context: Context
    ) -> pb.CreateProgramResponse:
        async with self._sessions.begin() as session:
            view = await create_program(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                code=request.code,
                name=request.name,
                description=request.description,
                benefits=list(request.benefits),
                time_zone=request.time_zone,
            )
        return pb.CreateProgramResponse(program=program_to_proto(view))

    async def ListPrograms(
        self, request: pb.ListProgramsRequest, context: Context
    ) -> pb.ListProgramsResponse:
        async with self._sessions.begin() as session:
            page = await list_programs(
                session=session,
                actor=current_principal(),
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListProgramsResponse(
            programs=[program_to_proto(p) for p in page.items],
            page=proto_page(page.next_page_token),
        )

    async def AddProgramOption(
        self, request: pb.AddProgramOptionRequest, context: Context
    ) -> pb.AddProgramOptionResponse:
        async with self._sessions.begin() as session:
            option = await add_program_option(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                program_id=request.program_id,
                code=request.code,
                name=request.name,
                benefit=request.benefit,
                translations=[
                    OptionTranslation(t.locale, t.name, t.benefit) for t in request.translations
                ],
            )
        return pb.AddProgramOptionResponse(option=option_to_proto(option))

    async def UpdateProgramOption(
        self, request: pb.UpdateProgramOptionRequest, context: Context
    ) -> pb.UpdateProgramOptionResponse:
        async with self._sessions.begin() as session:
            option = await update_program_option(
                session=session,
                actor=current_principal(),
                program_id=request.program_id,
                option_id=request.option_id,
                name=request.name,
                benefit=request.benefit,
                translations=[
                    OptionTranslation(t.locale, t.name, t.benefit) for t in request.translations
                ],
            )
        return pb.UpdateProgramOptionResponse(option=option_to_proto(option))

    async def SetProgramTimeZone(
        self, request: pb.SetProgramTimeZoneRequest, context: Context
    ) -> pb.SetProgramTimeZoneResponse:
        async with self._sessions.begin() as session:
            view = await set_program_time_zone(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                program_id=request.program_id,
                time_zone=request.time_zone,
            )
        self._signalled()
        return pb.SetProgramTimeZoneResponse(program=program_to_proto(view))

    # --- workshop memberships -------------------------------------------------------------------

    async def CreateWorkshopMembership(
        self, request: pb.CreateWorkshopMembershipRequest, context: Context
    ) -> pb.CreateWorkshopMembershipResponse:
        async with self._sessions.begin() as session:
            view = await create_workshop_membership(
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
                time_zone=request.time_zone,
            )
        self._enqueued()
        return pb.CreateWorkshopMembershipResponse(membership=self._membership(view))

    async def ListWorkshopMemberships(
        self, request: pb.ListWorkshopMembershipsRequest, context: Context
    ) -> pb.ListWorkshopMembershipsResponse:
        async with self._sessions.begin() as session:
            page = await list_workshop_memberships(
                session=session,
                actor=current_principal(),
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListWorkshopMembershipsResponse(
            memberships=[self._membership(m) for m in page.items],
            page=proto_page(page.next_page_token),
        )

    async def GetWorkshop(
        self, request: pb.GetWorkshopRequest, context: Context
    ) -> pb.GetWorkshopResponse:
        async with self._sessions.begin() as session:
            view = await get_workshop(
                session=session, actor=current_principal(), workshop_id=request.workshop_id
            )
        return pb.GetWorkshopResponse(
            membership=self._membership(view),
            program=program_to_proto(ProgramView(view.program, view.program_options)),
        )

    async def UpdateWorkshopContacts(
        self, request: pb.UpdateWorkshopContactsRequest, context: Context
    ) -> pb.UpdateWorkshopContactsResponse:
        async with self._sessions.begin() as session:
            view = await update_workshop_contacts(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                workshop_id=request.workshop_id,
                workshop=_workshop_input(request.workshop),
                wholesaler=_contact(request.wholesaler),
                distributor=_contact(request.distributor),
            )
        return pb.UpdateWorkshopContactsResponse(membership=self._membership(view))

    async def ChangeRenewalDate(
        self, request: pb.ChangeRenewalDateRequest, context: Context
    ) -> pb.ChangeRenewalDateResponse:
        async with self._sessions.begin() as session:
            view = await change_renewal_date(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                workshop_id=request.workshop_id,
                renewal_date=request.renewal_date,
            )
        self._signalled()
        return pb.ChangeRenewalDateResponse(membership=self._membership(view))

    async def EndWorkshopMembership(
        self, request: pb.EndWorkshopMembershipRequest, context: Context
    ) -> pb.EndWorkshopMembershipResponse:
        async with self._sessions.begin() as session:
            view = await end_workshop_membership(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                workshop_id=request.workshop_id,
                reason=request.reason,
            )
        self._signalled()
        return pb.EndWorkshopMembershipResponse(membership=self._membership(view))

    async def SetWorkshopTimeZone(
        self, request: pb.SetWorkshopTimeZoneRequest, context: Context
    ) -> pb.SetWorkshopTimeZoneResponse:
        async with self._sessions.begin() as session:
            view = await set_workshop_time_zone(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                workshop_id=request.workshop_id,
                time_zone=request.time_zone,
            )
        self._signalled()
        return pb.SetWorkshopTimeZoneResponse(membership=self._membership(view))

    async def ResendAnniversaryLetter(
        self, request: pb.ResendAnniversaryLetterRequest, context: Context
    ) -> pb.ResendAnniversaryLetterResponse:
        async with self._sessions.begin() as session:
            view = await resend_anniversary_letter(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                workshop_id=request.workshop_id,
                reason=request.reason,
            )
        self._enqueued()
        return pb.ResendAnniversaryLetterResponse(membership=self._membership(view))

    # --- option changes -------------------------------------------------------------------------

    async def RequestOptionChange(
        self, request: pb.RequestOptionChangeRequest, context: Context
    ) -> pb.RequestOptionChangeResponse:
        async with self._sessions.begin() as session:
            view = await request_option_change(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                workshop_id=request.workshop_id,
                option_id=request.option_id,
                change=name_of(request.change, _OPTION_CHANGE),
                channel=_CHANNEL_IN.get(request.channel, ""),
                note=request.note,
            )
        self._enqueued()
        return pb.RequestOptionChangeResponse(request=option_request_to_proto(view))

    async def ListOptionChangeRequests(
        self, request: pb.ListOptionChangeRequestsRequest, context: Context
    ) -> pb.ListOptionChangeRequestsResponse:
        async with self._sessions.begin() as session:
            page = await list_option_change_requests(
                session=session,
                actor=current_principal(),
                workshop_id=request.workshop_id,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return pb.ListOptionChangeRequestsResponse(
            requests=[option_request_to_proto(r) for r in page.items],
            page=proto_page(page.next_page_token),
        )

    async def DecideOptionChange(
        self, request: pb.DecideOptionChangeRequest, context: Context
    ) -> pb.DecideOptionChangeResponse:
        async with self._sessions.begin() as session:
            view, membership = await decide_option_change(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                workshop_id=request.workshop_id,
                request_id=request.request_id,
                approve=request.approve,
                note=request.note,
            )
        return pb.DecideOptionChangeResponse(
            request=option_request_to_proto(view), membership=self._membership(membership)
        )
