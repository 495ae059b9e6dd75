"""Membership's demo data for `make dev`, loaded over gRPC like everything else (idempotent).

* The banner program "Atelier Plus" with its options; "Garage du Centre" (WS-CENTRE, signed in as
  garage.owner) enrolled with a renewal date 45 days away (its anniversary letter leaves in 15
  days, its renewal workflow is visible in the Temporal UI), two technicians, one registered for a
  diagnostics course, and a labour-warranty claim under review.
* "Protection civile de Paris" (75, assoc.admin): PSC1 and PSE1 trainings, DUPONT.marie as a
  member with this year's fee paid, a civilian's registration and a first-aid coverage request
  (each with its client record), and 100,000 client records with realistic duplicates
  (`services.membership.samples`) imported in bulk — 2,000 when `large` is off.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from guichet.identity.v1 import identity_pb2, identity_pb2_grpc
from guichet.membership.v1 import membership_pb2 as pb, membership_pb2_grpc

from services.membership.samples import generate

T = TypeVar("T")
Metadata = tuple[tuple[str, str], ...]
TIMEOUT = 30.0
PROGRAM_CODE = "ATELIER-PLUS"
LARGE_RECORDS = 100_000
SMALL_RECORDS = 2_000
CHUNK = 10_000
OPTIONS = (
    ("DEPANNAGE", "Dépannage 24/7", "Assistance routière pour vos clients, jour et nuit"),
    ("VEHICULE-PRET", "Véhicule de prêt", "Un véhicule de courtoisie pendant les réparations"),
    ("DIAG-PLUS", "Diagnostic avancé", "Accès aux valises de diagnostic constructeur"),
    ("PUB-LOCALE", "Publicité locale", "Campagnes locales co-financées par la bannière"),
)


async def _token(
    identity: identity_pb2_grpc.IdentityServiceStub, username: str, password: str
) -> Metadata:
    login = await identity.Login(
        identity_pb2.LoginRequest(username=username, password=password), timeout=TIMEOUT
    )
    return (("authorization", f"Bearer {login.tokens.access_token}"),)


async def _ignore_existing(call: Awaitable[T]) -> T | None:
    try:
        return await call
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.ALREADY_EXISTS:
            return None
        raise


async def load_membership_demo(
    address: str,
    identity: identity_pb2_grpc.IdentityServiceStub,
    ops: Metadata,
    codes: Mapping[str, str],
    password: str,
    *,
    large: bool = True,
) -> dict[str, float]:
    """Loads the demo; returns how long the client-record import took (and how many)."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = membership_pb2_grpc.MembershipServiceStub(channel)
        await _banner_program(stub, identity, ops, codes["WS-CENTRE"], password)
        admin = await _token(identity, "assoc.admin", password)
        association = codes["75"]
        await _association(stub, identity, admin, association)
        return await _client_records(stub, ops, association, large=large)


async def _banner_program(
    stub: membership_pb2_grpc.MembershipServiceStub,
    identity: identity_pb2_grpc.IdentityServiceStub,
    ops: Metadata,
    workshop_id: str,
    password: str,
) -> None:
    programs = await stub.ListPrograms(pb.ListProgramsRequest(), metadata=ops, timeout=TIMEOUT)
    program = next((p for p in programs.programs if p.code == PROGRAM_CODE), None)
    if program is None:
        created = await stub.CreateProgram(
            pb.CreateProgramRequest(
                code=PROGRAM_CODE,
                name="Atelier Plus",
                description="La bannière des ateliers mécaniques indépendants.",
                # The seed's program team works from Québec: its days are Montréal's.
                time_zone="America/Montreal",
                benefits=[
                    "Garantie main d'œuvre nationale de 12 mois sur les réparations",
                    "Formations techniques pour vos techniciens",
                    "Visibilité de la bannière et enseigne lumineuse",
                    "Conditions d'achat négociées auprès de votre grossiste",
                ],
            ),
            metadata=ops,
            timeout=TIMEOUT,
        )
        program = created.program
    present = {o.code for o in program.options}
    for code, name, benefit in OPTIONS:
        if code not in present:
            await stub.AddProgramOption(
                pb.AddProgramOptionRequest(
                    program_id=program.id, code=code, name=name, benefit=benefit
                ),
                metadata=ops,
                timeout=TIMEOUT,
            )
    programs = await stub.ListPrograms(pb.ListProgramsRequest(), metadata=ops, timeout=TIMEOUT)
    program = next(p for p in programs.programs if p.code == PROGRAM_CODE)
    today = datetime.now(UTC).date()
    try:
        await stub.GetWorkshop(
            pb.GetWorkshopRequest(workshop_id=workshop_id), metadata=ops, timeout=TIMEOUT
        )
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        await stub.CreateWorkshopMembership(
            pb.CreateWorkshopMembershipRequest(
                workshop_id=workshop_id,
                program_id=program.id,
                renewal_date=(today + timedelta(days=45)).isoformat(),
                workshop=pb.WorkshopInfo(
                    name="Garage du Centre",
                    email="garage.owner@demo.guichet.example.com",
                    phone="+33 4 78 12 34 56",
                    address_line="12 rue de la République",
                    postal_code="69002",
                    city="Lyon",
                ),
                wholesaler=pb.Contact(
                    name="Pièces Auto Rhône (membre grossiste)",
                    email="adhesions@pieces-auto-rhone.demo.guichet.example.com",
                ),
                distributor=pb.Contact(
                    name="DDA Centre-Est", email="dda@centre-est.demo.guichet.example.com"
                ),
                option_ids=[o.id for o in program.options if o.code in ("DEPANNAGE", "DIAG-PLUS")],
            ),
            metadata=ops,
            timeout=TIMEOUT,
        )
    owner = await _token(identity, "garage.owner", password)
    technicians = await stub.ListTechnicians(
        pb.ListTechniciansRequest(workshop_id=workshop_id), metadata=owner, timeout=TIMEOUT
    )
    if not technicians.technicians:
        for first, last in (("Luc", "Bernard"), ("Amélie", "Roux")):
            await stub.AddTechnician(
                pb.AddTechnicianRequest(
                    workshop_id=workshop_id,
                    first_name=first,
                    last_name=last,
                    email=f"{first.lower()}.{last.lower()}@garageducentre.demo.guichet.example.com",
                ),
                metadata=owner,
                timeout=TIMEOUT,
            )
        technicians = await stub.ListTechnicians(
            pb.ListTechniciansRequest(workshop_id=workshop_id), metadata=owner, timeout=TIMEOUT
        )
    course_code = f"DIAG-{today.year}-{today.month:02d}"
    await _ignore_existing(
        stub.CreateTrainingCourse(
            pb.CreateTrainingCourseRequest(
                code=course_code,
                title="Diagnostic électronique avancé",
                description="Deux jours sur les valises constructeur et le multiplexage.",
                starts_on=(today + timedelta(days=30)).isoformat(),
                ends_on=(today + timedelta(days=31)).isoformat(),
                location="Centre technique, Lyon",
                capacity=12,
            ),
            metadata=ops,
            timeout=TIMEOUT,
        )
    )
    history = await stub.ListCourseRegistrations(
        pb.ListCourseRegistrationsRequest(workshop_id=workshop_id), metadata=owner, timeout=TIMEOUT
    )
    courses = await stub.ListTrainingCourses(
        pb.ListTrainingCoursesRequest(upcoming_only=True), metadata=owner, timeout=TIMEOUT
    )
    course = next((c for c in courses.courses if c.code == course_code), None)
    if not history.registrations and course is not None:
        await stub.RegisterTechnician(
            pb.RegisterTechnicianRequest(
                workshop_id=workshop_id,
                course_id=course.id,
                technician_id=technicians.technicians[0].id,
            ),
            metadata=owner,
            timeout=TIMEOUT,
        )
    claims = await stub.ListWarrantyClaims(
        pb.ListWarrantyClaimsRequest(workshop_id=workshop_id), metadata=owner, timeout=TIMEOUT
    )
    if not claims.claims:
        claim = await stub.SubmitWarrantyClaim(
            pb.SubmitWarrantyClaimRequest(
                workshop_id=workshop_id,
                vehicle_vin="VF1RFB00X52345678",
                repair_order="OR-2026-0412",
                repair_date=(today - timedelta(days=3)).isoformat(),
                technician_id=technicians.technicians[0].id,
                labour_minutes=90,
                amount_cents=13_500,
                description="Remplacement de la pompe à eau sous garantie : fuite au joint.",
            ),
            metadata=owner,
            timeout=TIMEOUT,
        )
        await stub.TransitionWarrantyClaim(
            pb.TransitionWarrantyClaimRequest(
                workshop_id=workshop_id,
                claim_id=claim.claim.id,
                to_status=pb.WARRANTY_CLAIM_STATUS_UNDER_REVIEW,
                note="Pièces reçues, en cours d'examen.",
            ),
            metadata=ops,
            timeout=TIMEOUT,
        )


async def _association(
    stub: membership_pb2_grpc.MembershipServiceStub,
    identity: identity_pb2_grpc.IdentityServiceStub,
    admin: Metadata,
    association: str,
) -> None:
    now = datetime.now(UTC)
    trainings = await stub.ListTrainings(
        pb.ListTrainingsRequest(association_id=association), metadata=admin, timeout=TIMEOUT
    )
    if not trainings.trainings:
        for kind, title, days in (
            ("PSC1", "Prévention et secours civiques de niveau 1", 20),
            ("PSE1", "Premiers secours en équipe de niveau 1", 40),
        ):
            start = Timestamp()
            start.FromDatetime((now + timedelta(days=days)).replace(hour=8, minute=30))
            await stub.CreateTraining(
                pb.CreateTrainingRequest(
                    association_id=association,
                    training_type=kind,
                    title=title,
                    start_time=start,
                    location="Centre de formation, 12 rue Oberkampf, Paris 11e",
                    capacity=10,
                    public=True,
                ),
                metadata=admin,
                timeout=TIMEOUT,
            )
        trainings = await stub.ListTrainings(
            pb.ListTrainingsRequest(association_id=association), metadata=admin, timeout=TIMEOUT
        )
    found = await identity.SearchUsers(
        identity_pb2.SearchUsersRequest(organisation_id=association, last_name="Dupont"),
        metadata=admin,
        timeout=TIMEOUT,
    )
    marie = next((u for u in found.users if u.username.lower() == "dupont.marie"), None)
    if marie is not None:
        member = await _ignore_existing(
            stub.AddMember(
                pb.AddMemberRequest(
                    association_id=association,
                    user_id=marie.id,
                    first_name="Marie",
                    last_name="Dupont",
                    email=marie.email,
                ),
                metadata=admin,
                timeout=TIMEOUT,
            )
        )
        if isinstance(member, pb.AddMemberResponse):
            await stub.RecordFeePayment(
                pb.RecordFeePaymentRequest(
                    association_id=association,
                    member_id=member.member.id,
                    year=now.year,
                    amount_cents=3_500,
                ),
                metadata=admin,
                timeout=TIMEOUT,
            )
    psc1 = next(t for t in trainings.trainings if t.training_type == "PSC1")
    trainees = await stub.ListTrainees(
        pb.ListTraineesRequest(association_id=association, training_id=psc1.id),
        metadata=admin,
        timeout=TIMEOUT,
    )
    if not trainees.registrations:
        await stub.RegisterForTraining(
            pb.RegisterForTrainingRequest(
                association_id=association,
                training_id=psc1.id,
                trainee=pb.Trainee(
                    first_name="Jeanne",
                    last_name="Martin",
                    birth_date="1992-04-17",
                    email="jeanne.martin@demo.guichet.example.com",
                    phone="+33 6 12 34 56 78",
                ),
                requester=pb.Requester(),
            ),
            timeout=TIMEOUT,
        )
    coverage = await stub.ListCoverageRequests(
        pb.ListCoverageRequestsRequest(association_id=association), metadata=admin, timeout=TIMEOUT
    )
    if not coverage.requests:
        await stub.RequestCoverage(
            pb.RequestCoverageRequest(
                association_id=association,
                event_name="Fête de la musique — place de la République",
                event_date=(now + timedelta(days=60)).date().isoformat(),
                location="Place de la République, Paris 10e",
                expected_attendance=3_000,
                organiser=pb.Organiser(
                    company_name="Mairie de Paris",
                    contact_name="Service des événements",
                    email="evenements@mairie-paris.demo.guichet.example.com",
                ),
            ),
            timeout=TIMEOUT,
        )


async def _client_records(
    stub: membership_pb2_grpc.MembershipServiceStub,
    ops: Metadata,
    association: str,
    *,
    large: bool,
) -> dict[str, float]:
    started = time.perf_counter()
    records = generate(LARGE_RECORDS if large else SMALL_RECORDS, seed=75, ref_prefix="demo")
    inserted = 0
    for start in range(0, len(records), CHUNK):
        response = await stub.ImportClientRecords(
            pb.ImportClientRecordsRequest(
                association_id=association,
                records=[
                    pb.ImportedClientRecord(
                        external_ref=r.external_ref,
                        company_name=r.company_name,
                        siret=r.siret,
                        email=r.email,
                        contact_name=r.contact_name,
                    )
                    for r in records[start : start + CHUNK]
                ],
            ),
            metadata=ops,
            timeout=120,
        )
        inserted += response.inserted
    return {
        "client_records": float(len(records)),
        "inserted": float(inserted),
        "seconds": time.perf_counter() - started,
    }
