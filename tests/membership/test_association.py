"""The association platform on the real service: members and fees (and what identity's account
validation asks), public trainings and the one-registration-per-type rule (also under
concurrency), trainee e-mail corrections, coverage requests, client records matched at creation,
merges (with preview, audit and the double-merge race) and the deliberate deletion."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from guichet.membership.v1 import membership_pb2 as pb
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from services.membership.domain.normalise import luhn_complete
from services.membership.domain.records import ANALYZE_AFTER_IMPORT
from services.membership.models import TrainingRegistration
from tests.identity.harness import WORKSHOP, unique
from tests.membership.harness import (
    Association,
    World,
    days_from_today,
    fails,
    fields,
    timestamp,
)

NOW = datetime.now(UTC)


def siret() -> str:
    return luhn_complete(luhn_complete(f"{uuid.uuid4().int % 10**8:08d}") + "0001")


async def _training(
    world: World, association: Association, kind: str = "PSC1", *, capacity: int = 10
) -> pb.Training:
    created: pb.CreateTrainingResponse = await world.stub.CreateTraining(
        pb.CreateTrainingRequest(
            association_id=association.id,
            training_type=kind,
            title=f"Formation {kind} {unique('')}",
            start_time=timestamp(NOW + timedelta(days=20)),
            location="Paris 11e",
            capacity=capacity,
            public=True,
        ),
        metadata=association.auth,
    )
    return created.training


def trainee(email: str | None = None, **names: str) -> pb.Trainee:
    return pb.Trainee(
        first_name=names.get("first", "Jeanne"),
        last_name=names.get("last", "Martin"),
        birth_date=names.get("born", "1990-05-17"),
        email=email or f"{unique('t.')}@example.org",
    )


async def register(
    world: World,
    association: Association,
    training: pb.Training,
    person: pb.Trainee,
    requester: pb.Requester | None = None,
) -> pb.RegisterForTrainingResponse:
    """A civilian, without any token: the call is public."""
    response: pb.RegisterForTrainingResponse = await world.stub.RegisterForTraining(
        pb.RegisterForTrainingRequest(
            association_id=association.id,
            training_id=training.id,
            trainee=person,
            requester=requester or pb.Requester(),
        )
    )
    return response


# --- members and fees -----------------------------------------------------------------------------


async def test_fees_are_recorded_per_year_and_asked_by_identity(world: World) -> None:
    association, other = await world.association(), await world.association()
    added = await world.stub.AddMember(
        pb.AddMemberRequest(
            association_id=association.id,
            user_id=association.member.id,
            first_name="Marie",
            last_name="Dupont",
            email="marie@example.org",
        ),
        metadata=association.auth,
    )
    twice = await fails(
        world.stub.AddMember(
            pb.AddMemberRequest(
                association_id=association.id,
                user_id=association.member.id,
                first_name="Marie",
                last_name="Dupont",
            ),
            metadata=association.auth,
        )
    )
    assert twice.code == grpc.StatusCode.ALREADY_EXISTS and fields(twice) == {"user_id"}
    fee = pb.RecordFeePaymentRequest(
        association_id=association.id,
        member_id=added.member.id,
        year=NOW.year,
        amount_cents=3500,
    )
    assert (
        await fails(world.stub.RecordFeePayment(fee, metadata=association.member_auth))
    ).code == grpc.StatusCode.PERMISSION_DENIED
    assert (
        await fails(world.stub.RecordFeePayment(fee, metadata=other.auth))
    ).code == grpc.StatusCode.NOT_FOUND
    paid = await world.stub.RecordFeePayment(fee, metadata=association.auth)
    assert [(f.year, f.amount_cents) for f in paid.member.fees] == [(NOW.year, 3500)]
    again = await fails(world.stub.RecordFeePayment(fee, metadata=association.auth))
    assert again.code == grpc.StatusCode.ALREADY_EXISTS and fields(again) == {"year"}

    # What identity's account validation asks, with its service token.
    service = await world.service()

    async def asked(user_id: str, year: int = 0) -> pb.IsFeePaidResponse:
        response: pb.IsFeePaidResponse = await world.stub.IsFeePaid(
            pb.IsFeePaidRequest(organisation_id=association.id, user_id=user_id, year=year),
            metadata=service,
        )
        return response

    this_year = await asked(association.member.id)
    assert this_year.paid and this_year.year == NOW.year
    assert this_year.member_id == added.member.id and this_year.paid_on
    assert not (await asked(association.member.id, NOW.year - 1)).paid
    stranger = await asked(str(uuid.uuid4()))
    assert not stranger.paid and stranger.member_id == ""
    # An admin may ask too; a member or another association may not.
    await world.stub.IsFeePaid(
        pb.IsFeePaidRequest(organisation_id=association.id, user_id=association.member.id),
        metadata=association.auth,
    )
    for auth, code in (
        (association.member_auth, grpc.StatusCode.PERMISSION_DENIED),
        (other.auth, grpc.StatusCode.NOT_FOUND),
    ):
        problem = await fails(
            world.stub.IsFeePaid(
                pb.IsFeePaidRequest(organisation_id=association.id, user_id=association.member.id),
                metadata=auth,
            )
        )
        assert problem.code == code
    unpaid = await world.stub.AddMember(
        pb.AddMemberRequest(association_id=association.id, first_name="Paul", last_name="Azur"),
        metadata=association.auth,
    )
    listed = await world.stub.ListMembers(
        pb.ListMembersRequest(association_id=association.id, fee_filter=pb.FEE_FILTER_UNPAID),
        metadata=association.auth,
    )
    assert [m.id for m in listed.members] == [unpaid.member.id]


# --- trainings and the registration rule ---------------------------------------------------------


async def test_public_trainings_are_listed_without_an_account(world: World) -> None:
    association = await world.association()
    public = await _training(world, association)
    await world.stub.CreateTraining(
        pb.CreateTrainingRequest(
            association_id=association.id,
            training_type="PSE1",
            title="Interne",
            start_time=timestamp(NOW + timedelta(days=5)),
            location="Paris",
            capacity=5,
            public=False,
        ),
        metadata=association.auth,
    )
    listed = await world.stub.ListPublicTrainings(
        pb.ListPublicTrainingsRequest(association_id=association.id)
    )
    assert [t.id for t in listed.trainings] == [public.id]
    past = await fails(
        world.stub.CreateTraining(
            pb.CreateTrainingRequest(
                association_id=association.id,
                training_type="psc 1",
                title="",
                start_time=timestamp(NOW - timedelta(days=1)),
                location="Paris",
                capacity=0,
            ),
            metadata=association.auth,
        )
    )
    assert fields(past) == {"training_type", "title", "start_time", "capacity"}


async def test_registering_again_cancels_the_earlier_unless_it_was_validated(
    world: World,
) -> None:
    association = await world.association()
    first_psc1, second_psc1 = (
        await _training(world, association),
        await _training(world, association),
    )
    pse1 = await _training(world, association, "PSE1")
    address = f"{unique('jeanne.')}@example.org"
    first = await register(world, association, first_psc1, trainee(address))
    assert first.registration.status == pb.REGISTRATION_STATUS_REGISTERED
    assert first.new_client_record and first.registration.client.number > 0
    [confirmation] = await world.smtp.wait_for(address)
    assert str(first.registration.client.number) in confirmation.body

    # The same person (names in other case and accents), same type: the earlier one is cancelled.
    second = await register(
        world, association, second_psc1, trainee(address, first="JEANNE", last="Mârtin")
    )
    assert second.cancelled_registration_id == first.registration.id
    assert not second.new_client_record  # the same civilian's record
    trainees = await world.stub.ListTrainees(
        pb.ListTraineesRequest(
            association_id=association.id, training_id=first_psc1.id, include_cancelled=True
        ),
        metadata=association.auth,
    )
    [cancelled] = trainees.registrations
    assert cancelled.status == pb.REGISTRATION_STATUS_CANCELLED
    assert "replaced by a new registration" in cancelled.cancel_reason

    # Once validated, a new registration of that type is refused with the reason.
    validated = await world.stub.ValidateRegistration(
        pb.ValidateRegistrationRequest(
            association_id=association.id, registration_id=second.registration.id
        ),
        metadata=association.auth,
    )
    assert validated.registration.status == pb.REGISTRATION_STATUS_VALIDATED
    refused = await fails(register(world, association, first_psc1, trainee(address)))
    assert refused.code == grpc.StatusCode.FAILED_PRECONDITION
    assert refused.reason == "already_validated"
    assert "validated registration" in refused.message and "PSC1" in refused.message
    # Another type, or another person, is not affected.
    await register(world, association, pse1, trainee(address))
    await register(world, association, first_psc1, trainee(first="Paul"))
    again = await fails(
        world.stub.ValidateRegistration(
            pb.ValidateRegistrationRequest(
                association_id=association.id, registration_id=first.registration.id
            ),
            metadata=association.auth,
        )
    )
    assert again.reason == "cancelled"
    # A private training, or one of another association, is not found.
    other = await world.association()
    hidden = await fails(register(world, other, first_psc1, trainee()))
    assert hidden.code == grpc.StatusCode.NOT_FOUND


async def test_concurrent_registrations_leave_one_live_and_one_validated_at_most(
    world: World,
) -> None:
    association = await world.association()
    trainings = [await _training(world, association, "SST") for _ in range(3)]
    person = {"first": "Léa", "last": unique("Concurrente"), "born": "1985-01-02"}
    results = await asyncio.gather(
        *(register(world, association, trainings[i % 3], trainee(**person)) for i in range(8)),
        return_exceptions=True,
    )
    assert all(not isinstance(r, BaseException) for r in results), results
    async with world.sessions.begin() as session:
        rows = (
            (
                await session.execute(
                    select(TrainingRegistration.status).where(
                        TrainingRegistration.association_id == uuid.UUID(association.id),
                        TrainingRegistration.training_type == "SST",
                    )
                )
            )
            .scalars()
            .all()
        )
    assert sorted(rows) == ["cancelled"] * 7 + ["registered"]

    # Validating the live one while someone registers again: one of them wins, never both.
    live = next(r for r in results if isinstance(r, pb.RegisterForTrainingResponse) and r)
    async with world.sessions.begin() as session:
        live_id = await session.scalar(
            select(TrainingRegistration.id).where(
                TrainingRegistration.association_id == uuid.UUID(association.id),
                TrainingRegistration.status == "registered",
                TrainingRegistration.training_type == "SST",
            )
        )
    outcome = await asyncio.gather(
        world.stub.ValidateRegistration(
            pb.ValidateRegistrationRequest(
                association_id=association.id, registration_id=str(live_id)
            ),
            metadata=association.auth,
        ),
        register(world, association, trainings[0], trainee(**person)),
        return_exceptions=True,
    )
    assert sum(isinstance(o, BaseException) for o in outcome) == 1, outcome
    del live
    # The database itself refuses a second validated registration for the same person and type.
    async with world.sessions.begin() as session:
        key = await session.scalar(
            select(TrainingRegistration.person_key).where(TrainingRegistration.id == live_id)
        )
    with pytest.raises(IntegrityError):
        async with world.sessions.begin() as session:
            await session.execute(
                text(
                    "UPDATE training_registrations SET status = 'validated' "
                    "WHERE association_id = :a AND person_key = :k AND training_type = 'SST'"
                ),
                {"a": uuid.UUID(association.id), "k": key},
            )


async def test_a_corrected_email_gets_future_mails_only(world: World) -> None:
    association = await world.association()
    training = await _training(world, association)
    typo, right = f"{unique('jean.')}@exmaple.org", f"{unique('jean.')}@example.org"
    registration = (await register(world, association, training, trainee(typo))).registration
    await world.smtp.wait_for(typo)
    member = await fails(
        world.stub.CorrectTraineeEmail(
            pb.CorrectTraineeEmailRequest(
                association_id=association.id, registration_id=registration.id, email=right
            ),
            metadata=association.member_auth,
        )
    )
    assert member.code == grpc.StatusCode.PERMISSION_DENIED
    invalid = await fails(
        world.stub.CorrectTraineeEmail(
            pb.CorrectTraineeEmailRequest(
                association_id=association.id, registration_id=registration.id, email="x@"
            ),
            metadata=association.auth,
        )
    )
    assert fields(invalid) == {"email"}
    corrected = await world.stub.CorrectTraineeEmail(
        pb.CorrectTraineeEmailRequest(
            association_id=association.id, registration_id=registration.id, email=right
        ),
        metadata=association.auth,
    )
    assert corrected.registration.trainee.email == right
    await world.stub.ValidateRegistration(
        pb.ValidateRegistrationRequest(
            association_id=association.id, registration_id=registration.id
        ),
        metadata=association.auth,
    )
    [validated] = await world.smtp.wait_for(right)
    # The lost confirmation is not sent again: the new address got only the later mail.
    assert "validée" in validated.subject
    assert len(world.smtp.to(typo)) == 1


async def test_trainees_are_the_admins_business(world: World) -> None:
    association, other = await world.association(), await world.association()
    training = await _training(world, association)
    await register(world, association, training, trainee())
    listed = await world.stub.ListTrainees(
        pb.ListTraineesRequest(association_id=association.id, training_id=training.id),
        metadata=association.auth,
    )
    assert len(listed.registrations) == 1
    for auth, code in (
        (association.member_auth, grpc.StatusCode.PERMISSION_DENIED),
        (other.auth, grpc.StatusCode.NOT_FOUND),
    ):
        problem = await fails(
            world.stub.ListTrainees(
                pb.ListTraineesRequest(association_id=association.id, training_id=training.id),
                metadata=auth,
            )
        )
        assert problem.code == code
    wrong_path = await fails(
        world.stub.ListTrainees(
            pb.ListTraineesRequest(association_id=other.id, training_id=training.id),
            metadata=other.auth,
        )
    )
    assert wrong_path.code == grpc.StatusCode.NOT_FOUND


# --- coverage requests and client records matched at creation -------------------------------------


async def _coverage(
    world: World, association: Association, company: str, **organiser: object
) -> pb.RequestCoverageResponse:
    response: pb.RequestCoverageResponse = await world.stub.RequestCoverage(
        pb.RequestCoverageRequest(
            association_id=association.id,
            event_name="Fête de quartier",
            event_date=days_from_today(30),
            location="Paris 20e",
            expected_attendance=500,
            organiser=pb.Organiser(
                company_name=company,
                contact_name="Service des fêtes",
                email=str(organiser.pop("email", f"{unique('fetes.')}@example.org")),
                **organiser,  # type: ignore[arg-type]
            ),
        )
    )
    return response


async def test_records_are_matched_by_siret_exact_name_or_number(world: World) -> None:
    association = await world.association()
    company = unique("Mairie de Test ")
    email = f"{unique('mairie.')}@example.org"
    first = await _coverage(world, association, company, email=email)
    assert first.new_client_record
    [mail] = await world.smtp.wait_for(email)
    assert str(first.request.client.number) in mail.body
    # Exactly the same name: the same record, no new number.
    same = await _coverage(world, association, f"  {company} ")
    assert not same.new_client_record and same.request.client.id == first.request.client.id
    # Another spelling is a new record (a "certain" duplicate for the merge tool)...
    other = await _coverage(world, association, company.upper())
    assert other.new_client_record
    # ...unless the SIRET or the client number says who it is.
    number = siret()
    with_siret = await _coverage(world, association, unique("SARL "), siret=number)
    by_siret = await _coverage(world, association, unique("Autre nom "), siret=number)
    assert by_siret.request.client.id == with_siret.request.client.id
    by_number = await _coverage(
        world, association, "Nom fantaisiste", client_number=first.request.client.number
    )
    assert by_number.request.client.id == first.request.client.id
    unknown = await fails(_coverage(world, association, "X", client_number=999_999_999))
    assert fields(unknown) == {"organiser.client_number"}
    bad_siret = await fails(_coverage(world, association, "X", siret="12345678901234"))
    assert fields(bad_siret) == {"organiser.siret"}
    # Only associations take coverage requests.
    workshop = await world.identity.organisation(WORKSHOP)
    stray = await fails(
        _coverage(world, Association(workshop, association.admin, (), association.member, ()), "X")
    )
    assert stray.code == grpc.StatusCode.NOT_FOUND
    listed = await world.stub.ListCoverageRequests(
        pb.ListCoverageRequestsRequest(association_id=association.id), metadata=association.auth
    )
    assert len(listed.requests) == 6


async def test_concurrent_first_requests_of_a_company_share_one_record(world: World) -> None:
    association = await world.association()
    company = unique("Comité des fêtes ")
    results = await asyncio.gather(*(_coverage(world, association, company) for _ in range(5)))
    assert len({r.request.client.id for r in results}) == 1
    assert sum(r.new_client_record for r in results) == 1


# --- merges and deletions -------------------------------------------------------------------------


async def test_merge_preview_merge_audit_and_deliberate_deletion(world: World) -> None:
    association, other = await world.association(), await world.association()
    name = unique("Mairie de Toulon ")
    target = (await _coverage(world, association, name)).request.client
    training = await _training(world, association)
    source_registration = await register(
        world, association, training, trainee(), pb.Requester(company_name=name.upper())
    )
    source = source_registration.registration.client
    await _coverage(world, association, name.upper())
    ids = pb.PreviewMergeRequest(
        association_id=association.id, source_id=source.id, target_id=target.id
    )
    duplicates = await world.stub.FindDuplicatesOf(
        pb.FindDuplicatesOfRequest(association_id=association.id, record_id=source.id),
        metadata=association.auth,
    )
    assert [(c.kind, c.record.id) for c in duplicates.candidates] == [
        (pb.DUPLICATE_KIND_CERTAIN, target.id)
    ]
    preview = await world.stub.PreviewMerge(ids, metadata=association.auth)
    assert (preview.registrations_to_move, preview.coverage_requests_to_move) == (1, 1)
    for auth, code in (
        (association.member_auth, grpc.StatusCode.PERMISSION_DENIED),
        (other.auth, grpc.StatusCode.NOT_FOUND),
    ):
        assert (await fails(world.stub.PreviewMerge(ids, metadata=auth))).code == code
    same = await fails(
        world.stub.MergeClientRecords(
            pb.MergeClientRecordsRequest(
                association_id=association.id, source_id=source.id, target_id=source.id
            ),
            metadata=association.auth,
        )
    )
    assert fields(same) == {"target_id"}
    merge = pb.MergeClientRecordsRequest(
        association_id=association.id, source_id=source.id, target_id=target.id
    )
    merged = await world.stub.MergeClientRecords(merge, metadata=association.auth)
    assert (merged.registrations_moved, merged.coverage_requests_moved) == (1, 1)
    assert merged.source.merged_into_id == target.id
    assert (merged.source.registration_count, merged.source.coverage_count) == (0, 0)
    assert (merged.target.registration_count, merged.target.coverage_count) == (1, 2)
    assert merged.audit.event == "merged" and merged.audit.target_number == target.number
    again = await fails(world.stub.MergeClientRecords(merge, metadata=association.auth))
    assert again.reason == "already_merged" and str(target.number) in again.message
    into_merged = await fails(
        world.stub.MergeClientRecords(
            pb.MergeClientRecordsRequest(
                association_id=association.id, source_id=target.id, target_id=source.id
            ),
            metadata=association.auth,
        )
    )
    assert into_merged.reason == "target_merged"
    # The old client number still leads to the record its events went to.
    later = await _coverage(world, association, "peu importe", client_number=source.number)
    assert later.request.client.id == target.id

    # Deleting is separate, confirmed, and only for an emptied record.
    delete = pb.DeleteClientRecordRequest(
        association_id=association.id, record_id=source.id, confirmation="supprimer"
    )
    unconfirmed = await fails(
        world.stub.DeleteClientRecord(
            pb.DeleteClientRecordRequest(association_id=association.id, record_id=source.id),
            metadata=association.auth,
        )
    )
    assert fields(unconfirmed) == {"confirmation"}
    not_empty = await fails(
        world.stub.DeleteClientRecord(
            pb.DeleteClientRecordRequest(
                association_id=association.id, record_id=target.id, confirmation="DELETE"
            ),
            metadata=association.auth,
        )
    )
    assert not_empty.reason == "record_not_empty"
    deleted = await world.stub.DeleteClientRecord(delete, metadata=association.auth)
    assert deleted.audit.event == "deleted" and deleted.audit.record_number == source.number
    gone = await fails(
        world.stub.GetClientRecord(
            pb.GetClientRecordRequest(association_id=association.id, record_id=source.id),
            metadata=association.auth,
        )
    )
    assert gone.code == grpc.StatusCode.NOT_FOUND
    audit = await world.stub.ListClientRecordAudit(
        pb.ListClientRecordAuditRequest(association_id=association.id), metadata=association.auth
    )
    assert [e.event for e in audit.entries] == ["deleted", "merged"]
    assert audit.entries[1].detail["registrations_moved"] == "1"


async def test_two_concurrent_merges_of_one_record_one_wins(world: World) -> None:
    association = await world.association()
    name = unique("Club de judo ")
    source = (await _coverage(world, association, name.upper())).request.client
    first = (await _coverage(world, association, name)).request.client
    second = (await _coverage(world, association, name.lower())).request.client
    outcomes = await asyncio.gather(
        *(
            world.stub.MergeClientRecords(
                pb.MergeClientRecordsRequest(
                    association_id=association.id, source_id=source.id, target_id=target.id
                ),
                metadata=association.auth,
            )
            for target in (first, second)
        ),
        return_exceptions=True,
    )
    won = [o for o in outcomes if isinstance(o, pb.MergeClientRecordsResponse)]
    lost = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(won) == 1 and len(lost) == 1
    assert lost[0].code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "already merged into client" in (lost[0].details() or "")
    winner = won[0].target.id
    counts = {}
    for record_id in (first.id, second.id):
        found = await world.stub.GetClientRecord(
            pb.GetClientRecordRequest(association_id=association.id, record_id=record_id),
            metadata=association.auth,
        )
        counts[record_id] = found.record.coverage_count
    assert counts[winner] == 2 and sum(counts.values()) == 3


async def test_bulk_import_is_for_operators_and_idempotent(world: World) -> None:
    association = await world.association()
    records = [
        pb.ImportedClientRecord(external_ref=f"ref-{i}", company_name=f"Société {i} SARL")
        for i in range(50)
    ]
    request = pb.ImportClientRecordsRequest(association_id=association.id, records=records)
    refused = await fails(world.stub.ImportClientRecords(request, metadata=association.auth))
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    first = await world.stub.ImportClientRecords(request, metadata=world.ops)
    second = await world.stub.ImportClientRecords(request, metadata=await world.service())
    assert (first.inserted, first.skipped) == (50, 0)
    assert (second.inserted, second.skipped) == (0, 50)
    bad = await fails(
        world.stub.ImportClientRecords(
            pb.ImportClientRecordsRequest(
                association_id=association.id,
                records=[
                    pb.ImportedClientRecord(external_ref="ok", company_name="A"),
                    pb.ImportedClientRecord(external_ref="", company_name="B", siret="123"),
                ],
            ),
            metadata=world.ops,
        )
    )
    assert fields(bad) == {"records[1].external_ref", "records[1].siret"}
    page = await world.stub.ListClientRecords(
        pb.ListClientRecordsRequest(association_id=association.id, name_prefix="société 4"),
        metadata=association.auth,
    )
    assert sorted(r.company_name for r in page.records) == sorted(
        ["Société 4 SARL", *(f"Société {i} SARL" for i in range(40, 50))]
    )


async def test_a_large_import_leaves_the_planner_statistics_fresh(world: World) -> None:
    """Planned on a table believed empty, a look-up of one record's duplicates read every
    record; a bulk import of 1,000 or more refreshes the statistics before it returns (the
    table is small enough here for ANALYZE to count every row)."""
    association = await world.association()
    large = [
        pb.ImportedClientRecord(external_ref=f"large-{i}", company_name=f"Imprimerie {i}")
        for i in range(ANALYZE_AFTER_IMPORT)
    ]
    imported = await world.stub.ImportClientRecords(
        pb.ImportClientRecordsRequest(association_id=association.id, records=large),
        metadata=world.ops,
    )
    assert imported.inserted == ANALYZE_AFTER_IMPORT
    async with world.sessions() as session:
        believed = await session.scalar(
            text("SELECT reltuples FROM pg_class WHERE relname = 'client_records'")
        )
        counted = await session.scalar(text("SELECT count(*) FROM client_records"))
    assert believed == counted
