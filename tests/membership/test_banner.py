"""The banner program on the real service: programs, memberships, the workshop's read-only view,
option changes and the yearly window, the renewal RPCs, technicians, courses, warranty claims —
each with who may and who may not."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import grpc
from guichet.membership.v1 import membership_pb2 as pb
from sqlalchemy import text

from tests.identity.harness import ASSOCIATION, unique
from tests.membership.harness import World, days_from_today, fails, fields, today
from workflows.contracts.membership import renewal_workflow_id
from workflows.renewal import Renewal

PORTAL = pb.REQUEST_CHANNEL_PORTAL
ADD, REMOVE = pb.OPTION_CHANGE_ADD, pb.OPTION_CHANGE_REMOVE


# --- programs -----------------------------------------------------------------------------------


async def test_operators_create_programs_and_options_others_may_not(world: World) -> None:
    code = unique("P")[:10].upper()
    created = await world.stub.CreateProgram(
        pb.CreateProgramRequest(code=code, name="Atelier Plus", benefits=["Garantie"]),
        metadata=world.operator_auth,
    )
    assert created.program.code == code and list(created.program.benefits) == ["Garantie"]
    clash = await fails(
        world.stub.CreateProgram(
            pb.CreateProgramRequest(code=code, name="Autre"), metadata=world.ops
        )
    )
    assert clash.code == grpc.StatusCode.ALREADY_EXISTS and fields(clash) == {"code"}
    bad = await fails(
        world.stub.CreateProgram(
            pb.CreateProgramRequest(code="pas de code!", name="", benefits=[""]),
            metadata=world.ops,
        )
    )
    assert bad.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(bad) == {"code", "name", "benefits[0]"}
    shop = await world.workshop()
    refused = await fails(
        world.stub.CreateProgram(pb.CreateProgramRequest(code="X1", name="X"), metadata=shop.auth)
    )
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    option = await world.stub.AddProgramOption(
        pb.AddProgramOptionRequest(
            program_id=created.program.id, code="depannage", name="Dépannage", benefit="24/7"
        ),
        metadata=world.ops,
    )
    assert option.option.code == "DEPANNAGE"
    missing = await fails(
        world.stub.AddProgramOption(
            pb.AddProgramOptionRequest(
                program_id=str(uuid.uuid4()), code="X", name="X", benefit="X"
            ),
            metadata=world.ops,
        )
    )
    assert missing.code == grpc.StatusCode.NOT_FOUND


async def test_the_program_team_translates_an_option_and_workshops_read_it(world: World) -> None:
    """An option's name and benefit may carry translations (one per language tag); changing
    them keeps its code; a bad tag, a repeated one or a missing text is refused by field, with
    nothing saved; another program's option is not found; a workshop may not."""
    created = await world.stub.CreateProgram(
        pb.CreateProgramRequest(code=unique("P")[:10].upper(), name="Atelier Plus"),
        metadata=world.ops,
    )
    program_id = created.program.id
    added = await world.stub.AddProgramOption(
        pb.AddProgramOptionRequest(
            program_id=program_id,
            code="VO",
            name="Véhicules d'occasion",
            benefit="Garantie VO 12 mois",
            translations=[
                pb.ProgramOptionTranslation(
                    locale="pt-BR", name="Veículos usados", benefit="Garantia de 12 meses"
                )
            ],
        ),
        metadata=world.ops,
    )
    option = added.option
    assert [(t.locale, t.name) for t in option.translations] == [("pt-BR", "Veículos usados")]
    updated = await world.stub.UpdateProgramOption(
        pb.UpdateProgramOptionRequest(
            program_id=program_id,
            option_id=option.id,
            name="Véhicules d'occasion",
            benefit="Garantie VO 12 mois",
            translations=[
                pb.ProgramOptionTranslation(
                    locale="en", name="Used vehicles", benefit="12-month warranty"
                ),
                pb.ProgramOptionTranslation(
                    locale="pt-BR", name="Seminovos", benefit="Garantia de 12 meses"
                ),
            ],
        ),
        metadata=world.ops,
    )
    assert updated.option.code == "VO"
    assert {t.locale: t.name for t in updated.option.translations} == {
        "en": "Used vehicles",
        "pt-BR": "Seminovos",
    }
    listed = await world.stub.ListPrograms(pb.ListProgramsRequest(), metadata=world.ops)
    [program] = [p for p in listed.programs if p.id == program_id]
    saved = ["Used vehicles", "Seminovos"]
    assert [t.name for o in program.options for t in o.translations] == saved

    refused = await fails(
        world.stub.UpdateProgramOption(
            pb.UpdateProgramOptionRequest(
                program_id=program_id,
                option_id=option.id,
                name="Véhicules d'occasion",
                benefit="Garantie VO 12 mois",
                translations=[
                    pb.ProgramOptionTranslation(locale="PT_br", name="X", benefit="Y"),
                    pb.ProgramOptionTranslation(locale="en", name="", benefit="Y"),
                    pb.ProgramOptionTranslation(locale="en", name="Z", benefit="Y"),
                ],
            ),
            metadata=world.ops,
        )
    )
    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(refused) == {
        "translations[0].locale",
        "translations[1].name",
        "translations[2].locale",
    }
    again = await world.stub.ListPrograms(pb.ListProgramsRequest(), metadata=world.ops)
    [same] = [p for p in again.programs if p.id == program_id]
    assert [t.name for o in same.options for t in o.translations] == saved

    other = await world.stub.CreateProgram(
        pb.CreateProgramRequest(code=unique("P")[:10].upper(), name="Autre"), metadata=world.ops
    )
    elsewhere = await fails(
        world.stub.UpdateProgramOption(
            pb.UpdateProgramOptionRequest(
                program_id=other.program.id, option_id=option.id, name="X", benefit="Y"
            ),
            metadata=world.ops,
        )
    )
    assert elsewhere.code == grpc.StatusCode.NOT_FOUND
    shop = await world.workshop()
    denied = await fails(
        world.stub.UpdateProgramOption(
            pb.UpdateProgramOptionRequest(
                program_id=program_id, option_id=option.id, name="X", benefit="Y"
            ),
            metadata=shop.auth,
        )
    )
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED


# --- memberships and the workshop's view ----------------------------------------------------------


async def test_enrolment_checks_the_workshop_the_dates_and_the_contacts(world: World) -> None:
    program = await world.program()
    association = await world.identity.organisation(ASSOCIATION)
    problem = await fails(
        world.stub.CreateWorkshopMembership(
            pb.CreateWorkshopMembershipRequest(
                workshop_id=association,
                program_id=str(uuid.uuid4()),
                renewal_date=today().isoformat(),
                workshop=pb.WorkshopInfo(email="pas-une-adresse"),
                wholesaler=pb.Contact(name="", email="g@example.org"),
                distributor=pb.Contact(name="DDA", email=""),
                option_ids=["nope"],
            ),
            metadata=world.ops,
        )
    )
    assert problem.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(problem) == {
        "workshop_id",
        "program_id",
        "renewal_date",
        "workshop.email",
        "wholesaler.name",
        "distributor.email",
        "option_ids[0]",
    }
    shop = await world.workshop("Garage des Tests")
    membership = await world.membership(shop, program, options=2)
    # The workshop's name defaults to identity's; one active membership per workshop.
    assert membership.workshop.name == "Garage des Tests"
    assert membership.status == pb.MEMBERSHIP_STATUS_ACTIVE
    assert len(membership.options) == 2
    again = await fails(world.membership(shop, program))
    assert again.code == grpc.StatusCode.ALREADY_EXISTS and fields(again) == {"workshop_id"}
    # The renewal workflow was started through the outbox, with its business id.
    handle = world.temporal.get_workflow_handle_for(Renewal.run, renewal_workflow_id(membership.id))

    async def started() -> bool:
        try:
            status = await handle.query(Renewal.status)
        except Exception:
            return False
        return status.phase == "waiting_for_letter"

    await world.wait(started, what="renewal workflow waiting for the letter")


async def test_the_workshop_sees_its_page_and_nobody_else_does(world: World) -> None:
    program = await world.program()
    shop, other = await world.workshop(), await world.workshop()
    membership = await world.membership(shop, program, options=1)
    view = await world.stub.GetWorkshop(
        pb.GetWorkshopRequest(workshop_id=shop.id), metadata=shop.auth
    )
    assert view.membership.id == membership.id
    assert [o.code for o in view.membership.options] == ["OPT0"]
    assert [o.code for o in view.program.options] == ["OPT0", "OPT1", "OPT2"]
    window = view.membership.removal_window
    assert not window.open and window.next_opens_on == membership.renewal_date
    assert view.membership.wholesaler.email and view.membership.distributor.email
    # Another workshop, an association's admin: as if it did not exist.
    for auth in (other.auth, (await world.association()).auth):
        hidden = await fails(
            world.stub.GetWorkshop(pb.GetWorkshopRequest(workshop_id=shop.id), metadata=auth)
        )
        assert hidden.code == grpc.StatusCode.NOT_FOUND
    # The program team sees it; a workshop without membership has nothing to show.
    await world.stub.GetWorkshop(
        pb.GetWorkshopRequest(workshop_id=shop.id), metadata=world.operator_auth
    )
    empty = await fails(
        world.stub.GetWorkshop(pb.GetWorkshopRequest(workshop_id=other.id), metadata=other.auth)
    )
    assert empty.code == grpc.StatusCode.NOT_FOUND


async def test_only_the_program_team_changes_contact_details(world: World) -> None:
    program = await world.program()
    shop = await world.workshop()
    await world.membership(shop, program)
    request = pb.UpdateWorkshopContactsRequest(
        workshop_id=shop.id,
        workshop=pb.WorkshopInfo(name="Garage Neuf", email="neuf@example.org"),
        wholesaler=pb.Contact(name="Grossiste", email="g2@example.org"),
        distributor=pb.Contact(name="DDA", email="d2@example.org"),
    )
    refused = await fails(world.stub.UpdateWorkshopContacts(request, metadata=shop.auth))
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    assert "program team" in refused.message
    stranger = await world.workshop()
    hidden = await fails(world.stub.UpdateWorkshopContacts(request, metadata=stranger.auth))
    assert hidden.code == grpc.StatusCode.NOT_FOUND
    updated = await world.stub.UpdateWorkshopContacts(request, metadata=world.operator_auth)
    assert updated.membership.workshop.name == "Garage Neuf"
    assert updated.membership.wholesaler.email == "g2@example.org"


# --- option changes and the removal window -------------------------------------------------------


async def test_additions_any_time_removals_only_in_the_window(world: World) -> None:
    program = await world.program(options=3)
    shop = await world.workshop()
    membership = await world.membership(shop, program, options=1)
    held, free = program.options[0], program.options[1]

    added = await world.stub.RequestOptionChange(
        pb.RequestOptionChangeRequest(
            workshop_id=shop.id, option_id=free.id, change=ADD, note="Pour nos clients"
        ),
        metadata=shop.auth,
    )
    assert added.request.status == pb.OPTION_CHANGE_STATUS_PENDING
    assert added.request.channel == PORTAL
    twice = await fails(
        world.stub.RequestOptionChange(
            pb.RequestOptionChangeRequest(workshop_id=shop.id, option_id=free.id, change=ADD),
            metadata=shop.auth,
        )
    )
    assert twice.code == grpc.StatusCode.ALREADY_EXISTS
    already = await fails(
        world.stub.RequestOptionChange(
            pb.RequestOptionChangeRequest(workshop_id=shop.id, option_id=held.id, change=ADD),
            metadata=shop.auth,
        )
    )
    assert already.reason == "option_held"

    # Removal outside the window: refused, with the date the window opens.
    closed = await fails(
        world.stub.RequestOptionChange(
            pb.RequestOptionChangeRequest(workshop_id=shop.id, option_id=held.id, change=REMOVE),
            metadata=shop.auth,
        )
    )
    assert closed.code == grpc.StatusCode.FAILED_PRECONDITION
    assert closed.reason == "removal_window_closed"
    assert membership.renewal_date in closed.message
    assert closed.violations == [("change", f"removals open on {membership.renewal_date}")]
    # Never by phone; the program team records requests received by e-mail.
    phone = await fails(
        world.stub.RequestOptionChange(
            pb.RequestOptionChangeRequest(
                workshop_id=shop.id,
                option_id=program.options[2].id,
                change=ADD,
                channel=pb.REQUEST_CHANNEL_PHONE,
            ),
            metadata=world.operator_auth,
        )
    )
    assert phone.code == grpc.StatusCode.INVALID_ARGUMENT and fields(phone) == {"channel"}
    by_mail = await world.stub.RequestOptionChange(
        pb.RequestOptionChangeRequest(
            workshop_id=shop.id,
            option_id=program.options[2].id,
            change=ADD,
            channel=pb.REQUEST_CHANNEL_EMAIL,
        ),
        metadata=world.operator_auth,
    )
    assert by_mail.request.channel == pb.REQUEST_CHANNEL_EMAIL

    # The workflow opens the window at the renewal date (here: its activity, called directly).
    service = await world.service()
    opened = await world.stub.OpenRemovalWindow(
        pb.OpenRemovalWindowRequest(
            membership_id=membership.id, renewal_date=membership.renewal_date
        ),
        metadata=service,
    )
    assert opened.opened
    removal = await world.stub.RequestOptionChange(
        pb.RequestOptionChangeRequest(workshop_id=shop.id, option_id=held.id, change=REMOVE),
        metadata=shop.auth,
    )
    # The program team decides; a rejection needs a reason; the workshop cannot decide.
    decide = pb.DecideOptionChangeRequest(
        workshop_id=shop.id, request_id=removal.request.id, approve=True
    )
    assert (
        await fails(world.stub.DecideOptionChange(decide, metadata=shop.auth))
    ).code == grpc.StatusCode.PERMISSION_DENIED
    wrong_shop = await fails(
        world.stub.DecideOptionChange(
            pb.DecideOptionChangeRequest(
                workshop_id=(await world.workshop()).id,
                request_id=removal.request.id,
                approve=True,
            ),
            metadata=world.operator_auth,
        )
    )
    assert wrong_shop.code == grpc.StatusCode.NOT_FOUND
    no_reason = await fails(
        world.stub.DecideOptionChange(
            pb.DecideOptionChangeRequest(
                workshop_id=shop.id, request_id=added.request.id, approve=False
            ),
            metadata=world.operator_auth,
        )
    )
    assert fields(no_reason) == {"note"}
    decided = await world.stub.DecideOptionChange(decide, metadata=world.operator_auth)
    assert decided.request.status == pb.OPTION_CHANGE_STATUS_APPROVED
    assert [o.id for o in decided.membership.options] == []
    approved_add = await world.stub.DecideOptionChange(
        pb.DecideOptionChangeRequest(
            workshop_id=shop.id, request_id=added.request.id, approve=True
        ),
        metadata=world.operator_auth,
    )
    assert [o.id for o in approved_add.membership.options] == [free.id]
    again = await fails(world.stub.DecideOptionChange(decide, metadata=world.operator_auth))
    assert again.reason == "already_decided"
    listed = await world.stub.ListOptionChangeRequests(
        pb.ListOptionChangeRequestsRequest(workshop_id=shop.id), metadata=shop.auth
    )
    assert {r.id for r in listed.requests} == {
        added.request.id,
        by_mail.request.id,
        removal.request.id,
    }


# --- the renewal workflow's RPCs -----------------------------------------------------------------


async def test_renewal_rpcs_are_internal_and_idempotent(world: World) -> None:
    program = await world.program()
    shop = await world.workshop()
    membership = await world.membership(shop, program, renewal_date=days_from_today(90))
    service = await world.service()
    letter = pb.SendAnniversaryLetterRequest(
        membership_id=membership.id, renewal_date=membership.renewal_date
    )
    for auth in (shop.auth, world.ops):
        refused = await fails(world.stub.SendAnniversaryLetter(letter, metadata=auth))
        assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    first = await world.stub.SendAnniversaryLetter(letter, metadata=service)
    second = await world.stub.SendAnniversaryLetter(letter, metadata=service)
    recipients = [
        membership.workshop.email,
        membership.wholesaler.email,
        membership.distributor.email,
    ]
    assert first.sent and list(first.recipients) == recipients
    assert not second.sent and list(second.recipients) == recipients
    for address in recipients:
        [mail] = await world.smtp.wait_for(address)
        assert membership.renewal_date in mail.body and program.name in mail.body
    stale = await world.stub.SendAnniversaryLetter(
        pb.SendAnniversaryLetterRequest(
            membership_id=membership.id, renewal_date=days_from_today(91)
        ),
        metadata=service,
    )
    assert not stale.sent

    window = pb.OpenRemovalWindowRequest(
        membership_id=membership.id, renewal_date=membership.renewal_date
    )
    opened = await world.stub.OpenRemovalWindow(window, metadata=service)
    renewal = today() + timedelta(days=90)
    assert opened.opened and opened.closes_on == (renewal + timedelta(days=30)).isoformat()
    assert opened.next_renewal_date == renewal.replace(year=renewal.year + 1).isoformat()
    assert not (await world.stub.OpenRemovalWindow(window, metadata=service)).opened
    close = pb.CloseRemovalWindowRequest(
        membership_id=membership.id, renewal_date=membership.renewal_date
    )
    assert (await world.stub.CloseRemovalWindow(close, metadata=service)).closed
    assert not (await world.stub.CloseRemovalWindow(close, metadata=service)).closed
    state = await world.stub.GetRenewalState(
        pb.GetRenewalStateRequest(membership_id=membership.id), metadata=service
    )
    assert not state.window_open and state.window_days == 30 and state.letter_lead_days == 30
    # Three mails in all: a retried letter never mails twice. What the service asked to mail
    # is its outbox (the DeliverMail runs start from it): one row per recipient.
    async with world.sessions.begin() as session:
        queued = await session.scalar(
            text(
                "SELECT count(*) FROM outbox WHERE workflow = 'DeliverMail' "
                "AND (argument::text LIKE :a OR argument::text LIKE :b OR argument::text LIKE :c)"
            ),
            {key: f"%{address}%" for key, address in zip("abc", recipients, strict=True)},
        )
    assert queued == 3
    assert all(len(world.smtp.to(address)) == 1 for address in recipients)


async def test_a_changed_renewal_date_reaches_the_running_workflow(world: World) -> None:
    program = await world.program()
    shop = await world.workshop()
    membership = await world.membership(shop, program, renewal_date=days_from_today(120))
    handle = world.temporal.get_workflow_handle_for(Renewal.run, renewal_workflow_id(membership.id))

    async def phase(renewal_date: str, version: int) -> bool:
        try:
            status = await handle.query(Renewal.status)
        except Exception:
            return False
        return status.renewal_date == renewal_date and status.version == version

    await world.wait(lambda: phase(membership.renewal_date, 1), what="workflow planned")
    refused = await fails(
        world.stub.ChangeRenewalDate(
            pb.ChangeRenewalDateRequest(workshop_id=shop.id, renewal_date=days_from_today(150)),
            metadata=shop.auth,
        )
    )
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    past = await fails(
        world.stub.ChangeRenewalDate(
            pb.ChangeRenewalDateRequest(workshop_id=shop.id, renewal_date=days_from_today(-1)),
            metadata=world.operator_auth,
        )
    )
    assert fields(past) == {"renewal_date"}
    moved = await world.stub.ChangeRenewalDate(
        pb.ChangeRenewalDateRequest(workshop_id=shop.id, renewal_date=days_from_today(150)),
        metadata=world.operator_auth,
    )
    assert moved.membership.renewal_date == days_from_today(150)
    await world.wait(lambda: phase(days_from_today(150), 2), what="workflow re-planned")
    ended = await world.stub.EndWorkshopMembership(
        pb.EndWorkshopMembershipRequest(workshop_id=shop.id, reason="Départ de la bannière"),
        metadata=world.operator_auth,
    )
    assert ended.membership.status == pb.MEMBERSHIP_STATUS_ENDED
    result = await asyncio.wait_for(handle.result(), timeout=30)
    assert result.ended
    # An ended membership takes no more requests; the page still shows it.
    gone = await fails(
        world.stub.RequestOptionChange(
            pb.RequestOptionChangeRequest(
                workshop_id=shop.id, option_id=program.options[1].id, change=ADD
            ),
            metadata=shop.auth,
        )
    )
    assert gone.reason == "membership_ended"


# --- technicians and courses ----------------------------------------------------------------------


async def _course(world: World, *, capacity: int = 10, days: int = 20) -> pb.TrainingCourse:
    created: pb.CreateTrainingCourseResponse = await world.stub.CreateTrainingCourse(
        pb.CreateTrainingCourseRequest(
            code=unique("C")[:12].upper(),
            title="Diagnostic électronique",
            starts_on=days_from_today(days),
            location="Lyon",
            capacity=capacity,
        ),
        metadata=world.operator_auth,
    )
    return created.course


async def _technician(world: World, shop_id: str, auth: object, last: str) -> pb.Technician:
    added: pb.AddTechnicianResponse = await world.stub.AddTechnician(
        pb.AddTechnicianRequest(workshop_id=shop_id, first_name="Luc", last_name=last),
        metadata=auth,
    )
    return added.technician


async def test_technicians_register_for_courses_and_build_a_history(world: World) -> None:
    program = await world.program()
    shop, other = await world.workshop(), await world.workshop()
    await world.membership(shop, program)
    await world.membership(other, program)
    course = await _course(world, capacity=2)
    bad = await fails(
        world.stub.CreateTrainingCourse(
            pb.CreateTrainingCourseRequest(
                code="OK1", title="", starts_on=days_from_today(-1), location="X", capacity=0
            ),
            metadata=world.operator_auth,
        )
    )
    assert fields(bad) == {"title", "starts_on", "capacity"}
    refused = await fails(
        world.stub.CreateTrainingCourse(
            pb.CreateTrainingCourseRequest(
                code="OK2", title="T", starts_on=days_from_today(5), location="X", capacity=1
            ),
            metadata=shop.auth,
        )
    )
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    luc = await _technician(world, shop.id, shop.auth, "Bernard")
    ana = await _technician(world, shop.id, shop.auth, "Roux")
    theirs = await _technician(world, other.id, other.auth, "Petit")
    register = pb.RegisterTechnicianRequest(
        workshop_id=shop.id, course_id=course.id, technician_id=luc.id
    )
    first = await world.stub.RegisterTechnician(register, metadata=shop.auth)
    assert first.registration.status == pb.COURSE_REGISTRATION_STATUS_REGISTERED
    assert first.registration.course.seats_taken == 1
    twice = await fails(world.stub.RegisterTechnician(register, metadata=shop.auth))
    assert twice.code == grpc.StatusCode.ALREADY_EXISTS
    not_mine = await fails(
        world.stub.RegisterTechnician(
            pb.RegisterTechnicianRequest(
                workshop_id=shop.id, course_id=course.id, technician_id=theirs.id
            ),
            metadata=shop.auth,
        )
    )
    assert not_mine.code == grpc.StatusCode.NOT_FOUND
    await world.stub.RegisterTechnician(
        pb.RegisterTechnicianRequest(
            workshop_id=other.id, course_id=course.id, technician_id=theirs.id
        ),
        metadata=other.auth,
    )
    full = await fails(
        world.stub.RegisterTechnician(
            pb.RegisterTechnicianRequest(
                workshop_id=shop.id, course_id=course.id, technician_id=ana.id
            ),
            metadata=shop.auth,
        )
    )
    assert full.reason == "course_full"

    # Attendance is the program team's, once the course started.
    outcome = pb.UpdateCourseRegistrationRequest(
        workshop_id=shop.id,
        registration_id=first.registration.id,
        status=pb.COURSE_REGISTRATION_STATUS_COMPLETED,
    )
    early = await fails(world.stub.UpdateCourseRegistration(outcome, metadata=world.operator_auth))
    assert early.reason == "course_not_started"
    async with world.sessions.begin() as session:
        await session.execute(
            text("UPDATE training_courses SET starts_on = :day, ends_on = :day WHERE id = :id"),
            {"day": today() - timedelta(days=1), "id": uuid.UUID(course.id)},
        )
    assert (
        await fails(world.stub.UpdateCourseRegistration(outcome, metadata=shop.auth))
    ).code == grpc.StatusCode.PERMISSION_DENIED
    done = await world.stub.UpdateCourseRegistration(outcome, metadata=world.operator_auth)
    assert done.registration.status == pb.COURSE_REGISTRATION_STATUS_COMPLETED
    history = await world.stub.ListCourseRegistrations(
        pb.ListCourseRegistrationsRequest(workshop_id=shop.id, technician_id=luc.id),
        metadata=shop.auth,
    )
    assert [(r.technician_name, r.status) for r in history.registrations] == [
        ("Luc Bernard", pb.COURSE_REGISTRATION_STATUS_COMPLETED)
    ]
    hidden = await fails(
        world.stub.ListCourseRegistrations(
            pb.ListCourseRegistrationsRequest(workshop_id=shop.id), metadata=other.auth
        )
    )
    assert hidden.code == grpc.StatusCode.NOT_FOUND


async def test_concurrent_registrations_never_exceed_a_course_capacity(world: World) -> None:
    program = await world.program()
    shops = [await world.workshop() for _ in range(4)]
    course = await _course(world, capacity=2)
    calls = []
    for shop in shops:
        await world.membership(shop, program)
        technician = await _technician(world, shop.id, shop.auth, "Martin")
        calls.append(
            world.stub.RegisterTechnician(
                pb.RegisterTechnicianRequest(
                    workshop_id=shop.id, course_id=course.id, technician_id=technician.id
                ),
                metadata=shop.auth,
            )
        )
    results = await asyncio.gather(*calls, return_exceptions=True)
    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(won) == 2 and len(lost) == 2
    assert all(e.code() == grpc.StatusCode.FAILED_PRECONDITION for e in lost)


# --- warranty claims ------------------------------------------------------------------------------


async def test_warranty_claims_move_along_their_transitions_only(world: World) -> None:
    program = await world.program()
    shop, other = await world.workshop(), await world.workshop()
    await world.membership(shop, program)
    technician = await _technician(world, shop.id, shop.auth, "Bernard")
    submit = pb.SubmitWarrantyClaimRequest(
        workshop_id=shop.id,
        vehicle_vin="vf1rfb00x52345678",
        repair_order="OR-1",
        repair_date=days_from_today(-2),
        technician_id=technician.id,
        labour_minutes=90,
        amount_cents=13_500,
        description="Pompe à eau",
    )
    bad = await fails(
        world.stub.SubmitWarrantyClaim(
            pb.SubmitWarrantyClaimRequest(
                workshop_id=shop.id,
                vehicle_vin="VF1RFB00O52345678",
                repair_date=days_from_today(2),
                labour_minutes=0,
                amount_cents=-1,
            ),
            metadata=shop.auth,
        )
    )
    assert fields(bad) == {
        "vehicle_vin",
        "repair_order",
        "repair_date",
        "labour_minutes",
        "amount_cents",
        "description",
    }
    assert (
        await fails(world.stub.SubmitWarrantyClaim(submit, metadata=world.operator_auth))
    ).code == grpc.StatusCode.PERMISSION_DENIED
    claim = (await world.stub.SubmitWarrantyClaim(submit, metadata=shop.auth)).claim
    assert claim.status == pb.WARRANTY_CLAIM_STATUS_SUBMITTED
    assert claim.vehicle_vin == "VF1RFB00X52345678" and claim.number.startswith("GMO-")

    def move(to: int, note: str = "") -> pb.TransitionWarrantyClaimRequest:
        return pb.TransitionWarrantyClaimRequest(
            workshop_id=shop.id,
            claim_id=claim.id,
            to_status=to,  # type: ignore[arg-type]
            note=note,
        )

    invalid = await fails(
        world.stub.TransitionWarrantyClaim(
            move(pb.WARRANTY_CLAIM_STATUS_PAID), metadata=world.operator_auth
        )
    )
    assert invalid.reason == "invalid_transition"
    assert "under_review" in invalid.message and "withdrawn" in invalid.message
    not_theirs = await fails(
        world.stub.TransitionWarrantyClaim(
            move(pb.WARRANTY_CLAIM_STATUS_UNDER_REVIEW), metadata=shop.auth
        )
    )
    assert not_theirs.code == grpc.StatusCode.PERMISSION_DENIED
    await world.stub.TransitionWarrantyClaim(
        move(pb.WARRANTY_CLAIM_STATUS_UNDER_REVIEW), metadata=world.operator_auth
    )
    no_note = await fails(
        world.stub.TransitionWarrantyClaim(
            move(pb.WARRANTY_CLAIM_STATUS_NEEDS_INFORMATION), metadata=world.operator_auth
        )
    )
    assert fields(no_note) == {"note"}
    await world.stub.TransitionWarrantyClaim(
        move(pb.WARRANTY_CLAIM_STATUS_NEEDS_INFORMATION, "Photo de la pièce ?"),
        metadata=world.operator_auth,
    )
    await world.stub.TransitionWarrantyClaim(
        move(pb.WARRANTY_CLAIM_STATUS_UNDER_REVIEW, "Photo jointe"), metadata=shop.auth
    )
    await world.stub.TransitionWarrantyClaim(
        move(pb.WARRANTY_CLAIM_STATUS_APPROVED), metadata=world.operator_auth
    )
    paid = await world.stub.TransitionWarrantyClaim(
        move(pb.WARRANTY_CLAIM_STATUS_PAID), metadata=world.operator_auth
    )
    assert [e.to_status for e in paid.claim.history] == [
        pb.WARRANTY_CLAIM_STATUS_SUBMITTED,
        pb.WARRANTY_CLAIM_STATUS_UNDER_REVIEW,
        pb.WARRANTY_CLAIM_STATUS_NEEDS_INFORMATION,
        pb.WARRANTY_CLAIM_STATUS_UNDER_REVIEW,
        pb.WARRANTY_CLAIM_STATUS_APPROVED,
        pb.WARRANTY_CLAIM_STATUS_PAID,
    ]
    final = await fails(
        world.stub.TransitionWarrantyClaim(
            move(pb.WARRANTY_CLAIM_STATUS_WITHDRAWN), metadata=shop.auth
        )
    )
    assert final.reason == "invalid_transition" and "final" in final.message
    second = (await world.stub.SubmitWarrantyClaim(submit, metadata=shop.auth)).claim
    listed = await world.stub.ListWarrantyClaims(
        pb.ListWarrantyClaimsRequest(workshop_id=shop.id), metadata=shop.auth
    )
    assert [c.id for c in listed.claims] == [second.id, claim.id]
    only_paid = await world.stub.ListWarrantyClaims(
        pb.ListWarrantyClaimsRequest(workshop_id=shop.id, status=pb.WARRANTY_CLAIM_STATUS_PAID),
        metadata=world.operator_auth,
    )
    assert [c.id for c in only_paid.claims] == [claim.id]
    hidden = await fails(
        world.stub.GetWarrantyClaim(
            pb.GetWarrantyClaimRequest(workshop_id=other.id, claim_id=claim.id),
            metadata=other.auth,
        )
    )
    assert hidden.code == grpc.StatusCode.NOT_FOUND
