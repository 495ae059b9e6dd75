"""JSON shapes of the membership routes (`/v1/workshops/…`, `/v1/associations/…`, programs and
courses) and their proto conversions.

As in `schemas.py`, request models check shape only (UUIDs, dates, sizes, known fields); the rules
(the removal window, a validated registration, who may do what) are the membership service's and
come back as problems. Enums are lower-case strings, dates ISO `YYYY-MM-DD`, timestamps ISO 8601,
proto3's empty strings null.
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from guichet.membership.v1 import membership_pb2 as pb
from pydantic import BaseModel, ConfigDict, Field

NAME = 200
MAX_CLIENT_NUMBER = 2**63 - 1
TEXT = 4000
EMAIL = 320


class _Request(BaseModel):
    """Unknown fields are refused: a typo must not be silently dropped."""

    model_config = ConfigDict(extra="forbid")


def _time(value: Timestamp, present: bool) -> dt.datetime | None:
    return value.ToDatetime(tzinfo=dt.UTC) if present else None


def _date(value: str) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def _none(value: str) -> str | None:
    return value or None


def _iso(value: dt.date | None) -> str:
    return value.isoformat() if value else ""


class _ProtoEnum(StrEnum):
    """A lower-case string enum mirroring a proto enum `<PREFIX>_<NAME>`."""

    @classmethod
    def _proto(cls) -> Any:
        raise NotImplementedError

    @classmethod
    def _prefix(cls) -> str:
        raise NotImplementedError

    def to_proto(self) -> Any:
        return self._proto().Value(f"{self._prefix()}{self.name}")

    @classmethod
    def from_proto(cls, value: int) -> Any:
        name = cls._proto().Name(value)
        return None if name.endswith("_UNSPECIFIED") else cls[name.removeprefix(cls._prefix())]


class MembershipStatus(_ProtoEnum):
    ACTIVE = "active"
    ENDED = "ended"

    @classmethod
    def _proto(cls) -> Any:
        return pb.MembershipStatus

    @classmethod
    def _prefix(cls) -> str:
        return "MEMBERSHIP_STATUS_"


class OptionChange(_ProtoEnum):
    ADD = "add"
    REMOVE = "remove"

    @classmethod
    def _proto(cls) -> Any:
        return pb.OptionChange

    @classmethod
    def _prefix(cls) -> str:
        return "OPTION_CHANGE_"


class RequestChannel(_ProtoEnum):
    """portal (the workshop itself), email (recorded by the program team); phone is refused."""

    PORTAL = "portal"
    EMAIL = "email"
    PHONE = "phone"

    @classmethod
    def _proto(cls) -> Any:
        return pb.RequestChannel

    @classmethod
    def _prefix(cls) -> str:
        return "REQUEST_CHANNEL_"


class OptionChangeStatus(_ProtoEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"

    @classmethod
    def _proto(cls) -> Any:
        return pb.OptionChangeStatus

    @classmethod
    def _prefix(cls) -> str:
        return "OPTION_CHANGE_STATUS_"


class CourseRegistrationStatus(_ProtoEnum):
    REGISTERED = "registered"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    ABSENT = "absent"

    @classmethod
    def _proto(cls) -> Any:
        return pb.CourseRegistrationStatus

    @classmethod
    def _prefix(cls) -> str:
        return "COURSE_REGISTRATION_STATUS_"


class ClaimStatus(_ProtoEnum):
    """submitted → under_review | rejected | withdrawn; under_review → approved | rejected |
    needs_information; needs_information → under_review | withdrawn; approved → paid."""

    SUBMITTED = "submitted"
    UNDER_REVIEW = "under_review"
    NEEDS_INFORMATION = "needs_information"
    APPROVED = "approved"
    REJECTED = "rejected"
    PAID = "paid"
    WITHDRAWN = "withdrawn"

    @classmethod
    def _proto(cls) -> Any:
        return pb.WarrantyClaimStatus

    @classmethod
    def _prefix(cls) -> str:
        return "WARRANTY_CLAIM_STATUS_"


class RegistrationStatus(_ProtoEnum):
    REGISTERED = "registered"
    VALIDATED = "validated"
    CANCELLED = "cancelled"

    @classmethod
    def _proto(cls) -> Any:
        return pb.RegistrationStatus

    @classmethod
    def _prefix(cls) -> str:
        return "REGISTRATION_STATUS_"


class DuplicateKind(_ProtoEnum):
    CERTAIN = "certain"
    PROBABLE = "probable"

    @classmethod
    def _proto(cls) -> Any:
        return pb.DuplicateKind

    @classmethod
    def _prefix(cls) -> str:
        return "DUPLICATE_KIND_"


class FeeFilter(_ProtoEnum):
    PAID = "paid"
    UNPAID = "unpaid"

    @classmethod
    def _proto(cls) -> Any:
        return pb.FeeFilter

    @classmethod
    def _prefix(cls) -> str:
        return "FEE_FILTER_"


# --- banner programs ----------------------------------------------------------------------------


class ProgramBody(_Request):
    code: str = Field(max_length=32, examples=["ATELIER-PLUS"])
    name: str = Field(max_length=NAME, examples=["Atelier Plus"])
    description: str = Field(default="", max_length=TEXT)
    benefits: list[str] = Field(default_factory=list, max_length=30)


class OptionBody(_Request):
    code: str = Field(max_length=32, examples=["DEPANNAGE"])
    name: str = Field(max_length=NAME, examples=["Dépannage 24/7"])
    benefit: str = Field(max_length=1000, examples=["Assistance routière pour vos clients"])


class ProgramOption(BaseModel):
    id: uuid.UUID
    program_id: uuid.UUID
    code: str
    name: str
    benefit: str

    @classmethod
    def from_proto(cls, option: pb.ProgramOption) -> ProgramOption:
        return cls(
            id=uuid.UUID(option.id),
            program_id=uuid.UUID(option.program_id),
            code=option.code,
            name=option.name,
            benefit=option.benefit,
        )


class Program(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    description: str
    benefits: list[str]
    options: list[ProgramOption]
    created_at: dt.datetime | None

    @classmethod
    def from_proto(cls, program: pb.Program) -> Program:
        return cls(
            id=uuid.UUID(program.id),
            code=program.code,
            name=program.name,
            description=program.description,
            benefits=list(program.benefits),
            options=[ProgramOption.from_proto(o) for o in program.options],
            created_at=_time(program.create_time, program.HasField("create_time")),
        )


class ProgramPage(BaseModel):
    items: list[Program]
    next_page_token: str | None


# --- workshops ----------------------------------------------------------------------------------


class WorkshopInfo(BaseModel):
    name: str = Field(default="", max_length=NAME, examples=["Garage du Centre"])
    email: str = Field(max_length=EMAIL, examples=["contact@garageducentre.example.fr"])
    phone: str = Field(default="", max_length=32)
    address_line: str = Field(default="", max_length=NAME)
    postal_code: str = Field(default="", max_length=16)
    city: str = Field(default="", max_length=100)

    def to_proto(self) -> pb.WorkshopInfo:
        return pb.WorkshopInfo(**self.model_dump())


class Contact(BaseModel):
    name: str = Field(max_length=NAME, examples=["Grossiste Rhône-Alpes"])
    email: str = Field(max_length=EMAIL, examples=["adhesions@grossiste.example.fr"])

    def to_proto(self) -> pb.Contact:
        return pb.Contact(name=self.name, email=self.email)


class RemovalWindow(BaseModel):
    open: bool
    opened_on: dt.date | None
    closes_on: dt.date | None
    next_opens_on: dt.date | None


class WorkshopMembership(BaseModel):
    id: uuid.UUID
    workshop_id: uuid.UUID
    program_id: uuid.UUID
    program_name: str
    status: MembershipStatus
    renewal_date: dt.date | None
    workshop: WorkshopInfo
    wholesaler: Contact
    distributor: Contact
    options: list[ProgramOption]
    removal_window: RemovalWindow
    ended_on: dt.date | None
    created_at: dt.datetime | None

    @classmethod
    def from_proto(cls, m: pb.WorkshopMembership) -> WorkshopMembership:
        w = m.removal_window
        return cls(
            id=uuid.UUID(m.id),
            workshop_id=uuid.UUID(m.workshop_id),
            program_id=uuid.UUID(m.program_id),
            program_name=m.program_name,
            status=MembershipStatus.from_proto(m.status),
            renewal_date=_date(m.renewal_date),
            workshop=WorkshopInfo(
                name=m.workshop.name,
                email=m.workshop.email,
                phone=m.workshop.phone,
                address_line=m.workshop.address_line,
                postal_code=m.workshop.postal_code,
                city=m.workshop.city,
            ),
            wholesaler=Contact(name=m.wholesaler.name, email=m.wholesaler.email),
            distributor=Contact(name=m.distributor.name, email=m.distributor.email),
            options=[ProgramOption.from_proto(o) for o in m.options],
            removal_window=RemovalWindow(
                open=w.open,
                opened_on=_date(w.opened_on),
                closes_on=_date(w.closes_on),
                next_opens_on=_date(w.next_opens_on),
            ),
            ended_on=_date(m.ended_on),
            created_at=_time(m.create_time, m.HasField("create_time")),
        )


class WorkshopView(BaseModel):
    """The workshop's read-only page: its details, its program (every option offered) and the
    options it holds, with the removal window."""

    membership: WorkshopMembership
    program: Program


class MembershipPage(BaseModel):
    items: list[WorkshopMembership]
    next_page_token: str | None


class MembershipBody(_Request):
    program_id: uuid.UUID
    renewal_date: dt.date
    workshop: WorkshopInfo
    wholesaler: Contact
    distributor: Contact
    option_ids: list[uuid.UUID] = Field(default_factory=list, max_length=100)


class ContactsBody(_Request):
    workshop: WorkshopInfo
    wholesaler: Contact
    distributor: Contact


class RenewalDateBody(_Request):
    renewal_date: dt.date


class ReasonBody(_Request):
    reason: str = Field(max_length=1000, examples=["Fermeture de l'atelier"])


class OptionChangeBody(_Request):
    option_id: uuid.UUID
    change: OptionChange
    # Left out by a workshop (portal); `email` for the program team recording a mailed request.
    channel: RequestChannel | None = None
    note: str = Field(default="", max_length=2000)


class DecisionBody(_Request):
    approve: bool
    note: str = Field(default="", max_length=2000, description="Required to reject.")


class OptionChangeRequest(BaseModel):
    id: uuid.UUID
    membership_id: uuid.UUID
    workshop_id: uuid.UUID
    option: ProgramOption
    change: OptionChange
    channel: RequestChannel
    status: OptionChangeStatus
    note: str
    requested_by: str
    created_at: dt.datetime | None
    decided_by: str | None
    decision_note: str | None
    decided_at: dt.datetime | None

    @classmethod
    def from_proto(cls, r: pb.OptionChangeRequest) -> OptionChangeRequest:
        return cls(
            id=uuid.UUID(r.id),
            membership_id=uuid.UUID(r.membership_id),
            workshop_id=uuid.UUID(r.workshop_id),
            option=ProgramOption.from_proto(r.option),
            change=OptionChange.from_proto(r.change),
            channel=RequestChannel.from_proto(r.channel),
            status=OptionChangeStatus.from_proto(r.status),
            note=r.note,
            requested_by=r.requested_by,
            created_at=_time(r.create_time, r.HasField("create_time")),
            decided_by=_none(r.decided_by),
            decision_note=_none(r.decision_note),
            decided_at=_time(r.decide_time, r.HasField("decide_time")),
        )


class OptionChangeRequestPage(BaseModel):
    items: list[OptionChangeRequest]
    next_page_token: str | None


class Decision(BaseModel):
    request: OptionChangeRequest
    membership: WorkshopMembership


class TechnicianBody(_Request):
    first_name: str = Field(max_length=100)
    last_name: str = Field(max_length=100)
    email: str = Field(default="", max_length=EMAIL)


class Technician(BaseModel):
    id: uuid.UUID
    workshop_id: uuid.UUID
    first_name: str
    last_name: str
    email: str | None
    created_at: dt.datetime | None

    @classmethod
    def from_proto(cls, t: pb.Technician) -> Technician:
        return cls(
            id=uuid.UUID(t.id),
            workshop_id=uuid.UUID(t.workshop_id),
            first_name=t.first_name,
            last_name=t.last_name,
            email=_none(t.email),
            created_at=_time(t.create_time, t.HasField("create_time")),
        )


class TechnicianPage(BaseModel):
    items: list[Technician]
    next_page_token: str | None


class CourseBody(_Request):
    code: str = Field(max_length=32, examples=["DIAG-2027-03"])
    title: str = Field(max_length=NAME, examples=["Diagnostic électronique avancé"])
    description: str = Field(default="", max_length=TEXT)
    starts_on: dt.date
    ends_on: dt.date | None = None
    location: str = Field(max_length=NAME)
    capacity: int = Field(ge=1, le=1000)


class Course(BaseModel):
    id: uuid.UUID
    code: str
    title: str
    description: str
    starts_on: dt.date | None
    ends_on: dt.date | None
    location: str
    capacity: int
    seats_taken: int

    @classmethod
    def from_proto(cls, c: pb.TrainingCourse) -> Course:
        return cls(
            id=uuid.UUID(c.id),
            code=c.code,
            title=c.title,
            description=c.description,
            starts_on=_date(c.starts_on),
            ends_on=_date(c.ends_on),
            location=c.location,
            capacity=c.capacity,
            seats_taken=c.seats_taken,
        )


class CoursePage(BaseModel):
    items: list[Course]
    next_page_token: str | None


class CourseRegistrationBody(_Request):
    course_id: uuid.UUID
    technician_id: uuid.UUID


class CourseRegistrationUpdate(_Request):
    status: CourseRegistrationStatus


class CourseRegistration(BaseModel):
    id: uuid.UUID
    course: Course
    technician_id: uuid.UUID
    technician_name: str
    workshop_id: uuid.UUID
    status: CourseRegistrationStatus
    created_at: dt.datetime | None
    updated_at: dt.datetime | None

    @classmethod
    def from_proto(cls, r: pb.CourseRegistration) -> CourseRegistration:
        return cls(
            id=uuid.UUID(r.id),
            course=Course.from_proto(r.course),
            technician_id=uuid.UUID(r.technician_id),
            technician_name=r.technician_name,
            workshop_id=uuid.UUID(r.workshop_id),
            status=CourseRegistrationStatus.from_proto(r.status),
            created_at=_time(r.create_time, r.HasField("create_time")),
            updated_at=_time(r.update_time, r.HasField("update_time")),
        )


class CourseRegistrationPage(BaseModel):
    items: list[CourseRegistration]
    next_page_token: str | None


class ClaimBody(_Request):
    vehicle_vin: str = Field(max_length=17, examples=["VF1RFB00X12345678"])
    repair_order: str = Field(max_length=40, examples=["OR-2026-0412"])
    repair_date: dt.date
    technician_id: uuid.UUID | None = None
    labour_minutes: int = Field(ge=0, le=1_000_000, examples=[90])
    amount_cents: int = Field(ge=0, le=1_000_000_000, examples=[13500])
    description: str = Field(max_length=TEXT)


class TransitionBody(_Request):
    to_status: ClaimStatus
    note: str = Field(default="", max_length=TEXT)


class ClaimEvent(BaseModel):
    from_status: ClaimStatus | None
    to_status: ClaimStatus
    actor_id: str
    note: str
    at: dt.datetime | None


class Claim(BaseModel):
    id: uuid.UUID
    number: str
    workshop_id: uuid.UUID
    vehicle_vin: str
    repair_order: str
    repair_date: dt.date | None
    technician_id: uuid.UUID | None
    labour_minutes: int
    amount_cents: int
    description: str
    status: ClaimStatus
    history: list[ClaimEvent]
    created_at: dt.datetime | None
    updated_at: dt.datetime | None

    @classmethod
    def from_proto(cls, c: pb.WarrantyClaim) -> Claim:
        return cls(
            id=uuid.UUID(c.id),
            number=c.number,
            workshop_id=uuid.UUID(c.workshop_id),
            vehicle_vin=c.vehicle_vin,
            repair_order=c.repair_order,
            repair_date=_date(c.repair_date),
            technician_id=uuid.UUID(c.technician_id) if c.technician_id else None,
            labour_minutes=c.labour_minutes,
            amount_cents=c.amount_cents,
            description=c.description,
            status=ClaimStatus.from_proto(c.status),
            history=[
                ClaimEvent(
                    from_status=ClaimStatus.from_proto(e.from_status),
                    to_status=ClaimStatus.from_proto(e.to_status),
                    actor_id=e.actor_id,
                    note=e.note,
                    at=_time(e.time, e.HasField("time")),
                )
                for e in c.history
            ],
            created_at=_time(c.create_time, c.HasField("create_time")),
            updated_at=_time(c.update_time, c.HasField("update_time")),
        )


class ClaimPage(BaseModel):
    items: list[Claim]
    next_page_token: str | None


# --- associations -------------------------------------------------------------------------------


class MemberBody(_Request):
    user_id: uuid.UUID | None = Field(default=None, description="The member's identity account.")
    first_name: str = Field(max_length=100)
    last_name: str = Field(max_length=100)
    email: str = Field(default="", max_length=EMAIL)
    joined_on: dt.date | None = None


class FeeBody(_Request):
    year: int = Field(ge=1900, le=2200, examples=[2026])
    amount_cents: int = Field(ge=0, le=10_000_000, examples=[3500])
    paid_on: dt.date | None = None


class FeePayment(BaseModel):
    year: int
    amount_cents: int
    paid_on: dt.date | None


class Member(BaseModel):
    id: uuid.UUID
    association_id: uuid.UUID
    user_id: uuid.UUID | None
    first_name: str
    last_name: str
    email: str | None
    joined_on: dt.date | None
    fees: list[FeePayment]

    @classmethod
    def from_proto(cls, m: pb.Member) -> Member:
        return cls(
            id=uuid.UUID(m.id),
            association_id=uuid.UUID(m.association_id),
            user_id=uuid.UUID(m.user_id) if m.user_id else None,
            first_name=m.first_name,
            last_name=m.last_name,
            email=_none(m.email),
            joined_on=_date(m.joined_on),
            fees=[
                FeePayment(year=f.year, amount_cents=f.amount_cents, paid_on=_date(f.paid_on))
                for f in m.fees
            ],
        )


class MemberPage(BaseModel):
    items: list[Member]
    next_page_token: str | None


class FeeStatus(BaseModel):
    paid: bool
    year: int
    member_id: uuid.UUID | None
    paid_on: dt.date | None

    @classmethod
    def from_proto(cls, r: pb.IsFeePaidResponse) -> FeeStatus:
        return cls(
            paid=r.paid,
            year=r.year,
            member_id=uuid.UUID(r.member_id) if r.member_id else None,
            paid_on=_date(r.paid_on),
        )


class TrainingBody(_Request):
    training_type: str = Field(max_length=32, examples=["PSC1"])
    title: str = Field(max_length=NAME, examples=["Prévention et secours civiques de niveau 1"])
    start_time: dt.datetime
    location: str = Field(max_length=NAME)
    capacity: int = Field(ge=1, le=1000)
    public: bool = True


class Training(BaseModel):
    id: uuid.UUID
    association_id: uuid.UUID
    training_type: str
    title: str
    start_time: dt.datetime | None
    location: str
    capacity: int
    seats_taken: int
    public: bool

    @classmethod
    def from_proto(cls, t: pb.Training) -> Training:
        return cls(
            id=uuid.UUID(t.id),
            association_id=uuid.UUID(t.association_id),
            training_type=t.training_type,
            title=t.title,
            start_time=_time(t.start_time, t.HasField("start_time")),
            location=t.location,
            capacity=t.capacity,
            seats_taken=t.seats_taken,
            public=t.public,
        )


class TrainingPage(BaseModel):
    items: list[Training]
    next_page_token: str | None


class Trainee(BaseModel):
    first_name: str = Field(max_length=100, examples=["Jeanne"])
    last_name: str = Field(max_length=100, examples=["Martin"])
    birth_date: dt.date
    email: str = Field(max_length=EMAIL, examples=["jeanne.martin@example.org"])
    phone: str = Field(default="", max_length=32)


class RegistrationBody(_Request):
    trainee: Trainee
    company_name: str = Field(
        default="", max_length=NAME, description="Who pays, if not the trainee."
    )
    siret: str = Field(default="", max_length=20)
    client_number: int | None = Field(
        default=None,
        ge=1,
        le=MAX_CLIENT_NUMBER,
        description="The number received with an earlier request.",
    )


class ClientRef(BaseModel):
    id: uuid.UUID
    number: int
    company_name: str


class Registration(BaseModel):
    id: uuid.UUID
    training_id: uuid.UUID
    association_id: uuid.UUID
    training_type: str
    trainee: Trainee
    status: RegistrationStatus
    cancel_reason: str | None
    client: ClientRef
    created_at: dt.datetime | None
    validated_at: dt.datetime | None

    @classmethod
    def from_proto(cls, r: pb.TrainingRegistration) -> Registration:
        t = r.trainee
        return cls(
            id=uuid.UUID(r.id),
            training_id=uuid.UUID(r.training_id),
            association_id=uuid.UUID(r.association_id),
            training_type=r.training_type,
            trainee=Trainee(
                first_name=t.first_name,
                last_name=t.last_name,
                birth_date=dt.date.fromisoformat(t.birth_date),
                email=t.email,
                phone=t.phone,
            ),
            status=RegistrationStatus.from_proto(r.status),
            cancel_reason=_none(r.cancel_reason),
            client=ClientRef(
                id=uuid.UUID(r.client.id),
                number=r.client.number,
                company_name=r.client.company_name,
            ),
            created_at=_time(r.create_time, r.HasField("create_time")),
            validated_at=_time(r.validate_time, r.HasField("validate_time")),
        )


class RegistrationResult(BaseModel):
    registration: Registration
    cancelled_registration_id: uuid.UUID | None = Field(
        description="The earlier registration for this type of training that this one replaced."
    )
    new_client_record: bool


class RegistrationPage(BaseModel):
    items: list[Registration]
    next_page_token: str | None


class EmailBody(_Request):
    email: str = Field(max_length=EMAIL)


class Organiser(BaseModel):
    company_name: str = Field(max_length=NAME, examples=["Mairie de Toulon"])
    siret: str = Field(default="", max_length=20)
    client_number: int | None = Field(default=None, ge=1, le=MAX_CLIENT_NUMBER)
    contact_name: str = Field(max_length=NAME)
    email: str = Field(max_length=EMAIL)
    phone: str = Field(default="", max_length=32)


class CoverageBody(_Request):
    event_name: str = Field(max_length=NAME, examples=["Fête de la musique"])
    event_date: dt.date
    location: str = Field(max_length=NAME)
    expected_attendance: int = Field(ge=1, le=1_000_000)
    organiser: Organiser


class Coverage(BaseModel):
    id: uuid.UUID
    association_id: uuid.UUID
    event_name: str
    event_date: dt.date | None
    location: str
    expected_attendance: int
    organiser: Organiser
    client: ClientRef
    created_at: dt.datetime | None

    @classmethod
    def from_proto(cls, r: pb.CoverageRequest) -> Coverage:
        o = r.organiser
        return cls(
            id=uuid.UUID(r.id),
            association_id=uuid.UUID(r.association_id),
            event_name=r.event_name,
            event_date=_date(r.event_date),
            location=r.location,
            expected_attendance=r.expected_attendance,
            organiser=Organiser(
                company_name=o.company_name,
                siret=o.siret,
                client_number=o.client_number or None,
                contact_name=o.contact_name,
                email=o.email,
                phone=o.phone,
            ),
            client=ClientRef(
                id=uuid.UUID(r.client.id),
                number=r.client.number,
                company_name=r.client.company_name,
            ),
            created_at=_time(r.create_time, r.HasField("create_time")),
        )


class CoverageResult(BaseModel):
    request: Coverage
    new_client_record: bool


class CoveragePage(BaseModel):
    items: list[Coverage]
    next_page_token: str | None


class ClientRecord(BaseModel):
    id: uuid.UUID
    association_id: uuid.UUID
    number: int
    company_name: str
    siret: str | None
    email: str | None
    contact_name: str | None
    registration_count: int
    coverage_count: int
    merged_into_id: uuid.UUID | None
    created_at: dt.datetime | None

    @classmethod
    def from_proto(cls, r: pb.ClientRecord) -> ClientRecord:
        return cls(
            id=uuid.UUID(r.id),
            association_id=uuid.UUID(r.association_id),
            number=r.number,
            company_name=r.company_name,
            siret=_none(r.siret),
            email=_none(r.email),
            contact_name=_none(r.contact_name),
            registration_count=r.registration_count,
            coverage_count=r.coverage_count,
            merged_into_id=uuid.UUID(r.merged_into_id) if r.merged_into_id else None,
            created_at=_time(r.create_time, r.HasField("create_time")),
        )


class ClientRecordPage(BaseModel):
    items: list[ClientRecord]
    next_page_token: str | None


class DuplicateGroup(BaseModel):
    kind: DuplicateKind
    key: str = Field(description="The shared folded name, or the shared group of words.")
    records: list[ClientRecord]


class DuplicateTotals(BaseModel):
    records: int
    certain_groups: int
    certain_pairs: int
    probable_groups: int
    probable_pairs: int
    elapsed_ms: int


class DuplicatePage(BaseModel):
    items: list[DuplicateGroup]
    totals: DuplicateTotals
    next_page_token: str | None


class DuplicateCandidate(BaseModel):
    kind: DuplicateKind
    record: ClientRecord


class RecordDuplicates(BaseModel):
    record: ClientRecord
    candidates: list[DuplicateCandidate]


class MergeBody(_Request):
    target_id: uuid.UUID


class MergePreview(BaseModel):
    source: ClientRecord
    target: ClientRecord
    registrations_to_move: int
    coverage_requests_to_move: int


class AuditEntry(BaseModel):
    id: uuid.UUID
    association_id: uuid.UUID
    event: str
    record_id: uuid.UUID
    record_number: int
    target_id: uuid.UUID | None
    target_number: int | None
    detail: dict[str, str]
    actor_id: str
    at: dt.datetime | None

    @classmethod
    def from_proto(cls, e: pb.ClientRecordAuditEntry) -> AuditEntry:
        return cls(
            id=uuid.UUID(e.id),
            association_id=uuid.UUID(e.association_id),
            event=e.event,
            record_id=uuid.UUID(e.record_id),
            record_number=e.record_number,
            target_id=uuid.UUID(e.target_id) if e.target_id else None,
            target_number=e.target_number or None,
            detail=dict(e.detail),
            actor_id=e.actor_id,
            at=_time(e.time, e.HasField("time")),
        )


class MergeResult(BaseModel):
    source: ClientRecord
    target: ClientRecord
    registrations_moved: int
    coverage_requests_moved: int
    audit: AuditEntry


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_page_token: str | None


def iso(value: dt.date | None) -> str:
    return _iso(value)
