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
    description: str = Field(
        default="", max_length=TEXT, examples=["Le réseau des garages indépendants."]
    )
    benefits: list[str] = Field(
        default_factory=list,
        max_length=30,
        examples=[["Garantie main d'œuvre nationale", "Formations techniques"]],
    )


class OptionBody(_Request):
    code: str = Field(max_length=32, examples=["DEPANNAGE"])
    name: str = Field(max_length=NAME, examples=["Dépannage 24/7"])
    benefit: str = Field(max_length=1000, examples=["Assistance routière pour vos clients"])


class ProgramOption(BaseModel):
    id: uuid.UUID = Field(examples=["2cc4ddaf-a686-5172-bdbf-cf0b59d1b3b3"])
    program_id: uuid.UUID = Field(examples=["ae986f19-3f82-5f96-ae29-62903cb2af03"])
    code: str = Field(examples=["VO"])
    name: str = Field(examples=["Véhicules d'occasion"])
    benefit: str = Field(examples=["Garantie VO 12 mois"])

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
    id: uuid.UUID = Field(examples=["cb61b366-2b75-5bea-b29a-cfcaac25f7b2"])
    code: str = Field(examples=["ATELIER-PLUS"])
    name: str = Field(examples=["Atelier Plus"])
    description: str = Field(examples=["Le réseau des garages indépendants."])
    benefits: list[str]
    options: list[ProgramOption]
    created_at: dt.datetime | None = Field(examples=["2026-03-14T09:26:53Z"])

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
    next_page_token: str | None = Field(examples=["eyJsIjoicGFnZSIsImsiOlsiMjAyNi0wMy0xNCJdfQ"])


# --- workshops ----------------------------------------------------------------------------------


class WorkshopInfo(BaseModel):
    name: str = Field(default="", max_length=NAME, examples=["Garage du Centre"])
    email: str = Field(max_length=EMAIL, examples=["contact@garageducentre.example.fr"])
    phone: str = Field(default="", max_length=32, examples=["+33 4 78 12 34 56"])
    address_line: str = Field(default="", max_length=NAME, examples=["12 avenue Jean Jaurès"])
    postal_code: str = Field(default="", max_length=16, examples=["69007"])
    city: str = Field(default="", max_length=100, examples=["Lyon"])

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
    id: uuid.UUID = Field(examples=["6180d471-8b9d-53f7-932e-fa38ea7f138f"])
    workshop_id: uuid.UUID = Field(examples=["218c5ce5-053c-5d6c-aeca-252f92e24379"])
    program_id: uuid.UUID = Field(examples=["ae986f19-3f82-5f96-ae29-62903cb2af03"])
    program_name: str = Field(examples=["Atelier Plus"])
    status: MembershipStatus
    renewal_date: dt.date | None = Field(examples=["2027-06-01"])
    workshop: WorkshopInfo
    wholesaler: Contact
    distributor: Contact
    options: list[ProgramOption]
    removal_window: RemovalWindow
    ended_on: dt.date | None = Field(examples=[None])
    created_at: dt.datetime | None = Field(examples=["2026-03-14T09:26:53Z"])

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
    next_page_token: str | None = Field(examples=["eyJsIjoicGFnZSIsImsiOlsiMjAyNi0wMy0xNCJdfQ"])


class MembershipBody(_Request):
    program_id: uuid.UUID = Field(examples=["1f2e3d4c-5b6a-4798-8a7b-6c5d4e3f2a1b"])
    renewal_date: dt.date = Field(examples=["2027-06-01"])
    workshop: WorkshopInfo
    wholesaler: Contact
    distributor: Contact
    option_ids: list[uuid.UUID] = Field(
        default_factory=list, max_length=100, examples=[["8d7c6b5a-4f3e-4d2c-9b1a-0f9e8d7c6b5a"]]
    )


class ContactsBody(_Request):
    workshop: WorkshopInfo
    wholesaler: Contact
    distributor: Contact


class RenewalDateBody(_Request):
    renewal_date: dt.date = Field(examples=["2027-09-01"])


class ReasonBody(_Request):
    reason: str = Field(max_length=1000, examples=["Fermeture de l'atelier"])


class OptionChangeBody(_Request):
    option_id: uuid.UUID = Field(examples=["8d7c6b5a-4f3e-4d2c-9b1a-0f9e8d7c6b5a"])
    change: OptionChange = Field(examples=["add"])
    # Left out by a workshop (portal); `email` for the program team recording a mailed request.
    channel: RequestChannel | None = Field(default=None, examples=["email"])
    note: str = Field(
        default="", max_length=2000, examples=["Demande reçue par courriel le 3 février."]
    )


class DecisionBody(_Request):
    approve: bool = Field(examples=[False])
    note: str = Field(
        default="",
        max_length=2000,
        description="Required to reject.",
        examples=["L'option ne peut être retirée qu'à la date anniversaire."],
    )


class OptionChangeRequest(BaseModel):
    id: uuid.UUID = Field(examples=["2e9836ad-f470-5bcc-abdd-ba40d2401402"])
    membership_id: uuid.UUID = Field(examples=["3be4525a-104d-5f09-bb6e-96cbd22f1b70"])
    workshop_id: uuid.UUID = Field(examples=["218c5ce5-053c-5d6c-aeca-252f92e24379"])
    option: ProgramOption
    change: OptionChange
    channel: RequestChannel
    status: OptionChangeStatus
    note: str = Field(examples=["Demande reçue par courriel le 3 février."])
    requested_by: str = Field(examples=["garage.owner"])
    created_at: dt.datetime | None = Field(examples=["2026-03-14T09:26:53Z"])
    decided_by: str | None = Field(examples=["ops.leroy"])
    decision_note: str | None = Field(examples=[None])
    decided_at: dt.datetime | None = Field(examples=[None])

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
    next_page_token: str | None = Field(examples=["eyJsIjoicGFnZSIsImsiOlsiMjAyNi0wMy0xNCJdfQ"])


class Decision(BaseModel):
    request: OptionChangeRequest
    membership: WorkshopMembership


class TechnicianBody(_Request):
    first_name: str = Field(max_length=100, examples=["João"])
    last_name: str = Field(max_length=100, examples=["Ferreira"])
    email: str = Field(default="", max_length=EMAIL, examples=["joao.ferreira@example.fr"])


class Technician(BaseModel):
    id: uuid.UUID = Field(examples=["a536b1b9-faa5-51ca-882c-36b7d0523b39"])
    workshop_id: uuid.UUID = Field(examples=["218c5ce5-053c-5d6c-aeca-252f92e24379"])
    first_name: str = Field(examples=["João"])
    last_name: str = Field(examples=["Ferreira"])
    email: str | None = Field(examples=["joao.ferreira@example.fr"])
    created_at: dt.datetime | None = Field(examples=["2026-03-14T09:26:53Z"])

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
    next_page_token: str | None = Field(examples=["eyJsIjoicGFnZSIsImsiOlsiMjAyNi0wMy0xNCJdfQ"])


class CourseBody(_Request):
    code: str = Field(max_length=32, examples=["DIAG-2027-03"])
    title: str = Field(max_length=NAME, examples=["Diagnostic électronique avancé"])
    description: str = Field(
        default="",
        max_length=TEXT,
        examples=["Lecture des codes défaut, multiplexage CAN et calculateurs moteur."],
    )
    starts_on: dt.date = Field(examples=["2027-03-08"])
    ends_on: dt.date | None = Field(default=None, examples=["2027-03-09"])
    location: str = Field(max_length=NAME, examples=["Centre de formation de Villeurbanne"])
    capacity: int = Field(ge=1, le=1000, examples=[12])


class Course(BaseModel):
    id: uuid.UUID = Field(examples=["b735d302-b68f-5a2c-a0e9-0297ac0cef30"])
    code: str = Field(examples=["DIAG-2027-03"])
    title: str = Field(examples=["Diagnostic électronique avancé"])
    description: str = Field(
        examples=["Lecture des codes défaut, multiplexage CAN et calculateurs moteur."]
    )
    starts_on: dt.date | None = Field(examples=["2027-03-08"])
    ends_on: dt.date | None = Field(examples=["2027-03-09"])
    location: str = Field(examples=["Centre de formation de Villeurbanne"])
    capacity: int = Field(examples=[12])
    seats_taken: int = Field(examples=[7])

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
    next_page_token: str | None = Field(examples=["eyJsIjoicGFnZSIsImsiOlsiMjAyNi0wMy0xNCJdfQ"])


class CourseRegistrationBody(_Request):
    course_id: uuid.UUID = Field(examples=["7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d"])
    technician_id: uuid.UUID = Field(examples=["3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a"])


class CourseRegistrationUpdate(_Request):
    status: CourseRegistrationStatus = Field(examples=["completed"])


class CourseRegistration(BaseModel):
    id: uuid.UUID = Field(examples=["b2f31422-3d88-5e6f-898d-9d34c1cc8859"])
    course: Course
    technician_id: uuid.UUID = Field(examples=["6e22422f-317c-51b7-9001-b826a59477f9"])
    technician_name: str = Field(examples=["João Ferreira"])
    workshop_id: uuid.UUID = Field(examples=["218c5ce5-053c-5d6c-aeca-252f92e24379"])
    status: CourseRegistrationStatus
    created_at: dt.datetime | None = Field(examples=["2026-03-14T09:26:53Z"])
    updated_at: dt.datetime | None = Field(examples=["2026-03-15T14:02:11Z"])

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
    next_page_token: str | None = Field(examples=["eyJsIjoicGFnZSIsImsiOlsiMjAyNi0wMy0xNCJdfQ"])


class ClaimBody(_Request):
    vehicle_vin: str = Field(max_length=17, examples=["VF1RFB00X12345678"])
    repair_order: str = Field(max_length=40, examples=["OR-2026-0412"])
    repair_date: dt.date = Field(examples=["2026-04-08"])
    technician_id: uuid.UUID | None = Field(
        default=None, examples=["3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a"]
    )
    labour_minutes: int = Field(ge=0, le=1_000_000, examples=[90])
    amount_cents: int = Field(ge=0, le=1_000_000_000, examples=[13500])
    description: str = Field(
        max_length=TEXT,
        examples=["Remplacement de l'embrayage sous garantie main d'œuvre, à 18 000 km."],
    )


class TransitionBody(_Request):
    to_status: ClaimStatus = Field(examples=["needs_information"])
    note: str = Field(
        default="", max_length=TEXT, examples=["Merci de joindre la facture des pièces."]
    )


class ClaimEvent(BaseModel):
    from_status: ClaimStatus | None
    to_status: ClaimStatus
    actor_id: str
    note: str
    at: dt.datetime | None


class Claim(BaseModel):
    id: uuid.UUID = Field(examples=["c2d8c215-6df6-58c8-be17-42ac427f4eb6"])
    number: str = Field(examples=["GMO-000042"])
    workshop_id: uuid.UUID = Field(examples=["218c5ce5-053c-5d6c-aeca-252f92e24379"])
    vehicle_vin: str = Field(examples=["VF1RFB00X12345678"])
    repair_order: str = Field(examples=["OR-2026-0412"])
    repair_date: dt.date | None = Field(examples=["2026-04-08"])
    technician_id: uuid.UUID | None = Field(examples=["6e22422f-317c-51b7-9001-b826a59477f9"])
    labour_minutes: int = Field(examples=[90])
    amount_cents: int = Field(examples=[13500])
    description: str = Field(
        examples=["Remplacement de l'embrayage sous garantie main d'œuvre, à 18 000 km."]
    )
    status: ClaimStatus
    history: list[ClaimEvent]
    created_at: dt.datetime | None = Field(examples=["2026-03-14T09:26:53Z"])
    updated_at: dt.datetime | None = Field(examples=["2026-03-15T14:02:11Z"])

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
    next_page_token: str | None = Field(examples=["eyJsIjoicGFnZSIsImsiOlsiMjAyNi0wMy0xNCJdfQ"])


# --- associations -------------------------------------------------------------------------------


class MemberBody(_Request):
    user_id: uuid.UUID | None = Field(
        default=None,
        description="The member's identity account: its validation checks this year's fee.",
        examples=["6f1c2a4e-8b3d-4c5e-9f70-1a2b3c4d5e6f"],
    )
    first_name: str = Field(max_length=100, examples=["Marie"])
    last_name: str = Field(max_length=100, examples=["Dupont"])
    email: str = Field(default="", max_length=EMAIL, examples=["marie.dupont@example.org"])
    joined_on: dt.date | None = Field(
        default=None, description="Default: today.", examples=["2026-01-10"]
    )


class FeeBody(_Request):
    year: int = Field(ge=1900, le=2200, examples=[2026])
    amount_cents: int = Field(ge=0, le=10_000_000, examples=[3500])
    paid_on: dt.date | None = Field(
        default=None, description="Default: today.", examples=["2026-01-15"]
    )


class FeePayment(BaseModel):
    year: int
    amount_cents: int
    paid_on: dt.date | None


class Member(BaseModel):
    id: uuid.UUID = Field(examples=["d1532258-8fcd-557d-a7df-425d0d409a47"])
    association_id: uuid.UUID = Field(examples=["a0735503-08e3-5c4b-b3a1-9b3124393ab0"])
    user_id: uuid.UUID | None = Field(examples=["6f1c2a4e-8b3d-4c5e-9f70-1a2b3c4d5e6f"])
    first_name: str = Field(examples=["Marie"])
    last_name: str = Field(examples=["Dupont"])
    email: str | None = Field(examples=["marie.dupont@example.org"])
    joined_on: dt.date | None = Field(examples=["2026-01-10"])
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
    next_page_token: str | None = Field(examples=["eyJsIjoicGFnZSIsImsiOlsiMjAyNi0wMy0xNCJdfQ"])


class FeeStatus(BaseModel):
    paid: bool = Field(examples=[True])
    year: int = Field(examples=[2026])
    member_id: uuid.UUID | None = Field(examples=["3b0f931d-5aa3-5a44-8f27-28d1a4e4bfb1"])
    paid_on: dt.date | None = Field(examples=["2026-01-15"])

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
    start_time: dt.datetime = Field(examples=["2026-05-16T08:30:00+02:00"])
    location: str = Field(max_length=NAME, examples=["Caserne Bonaparte, Toulon"])
    capacity: int = Field(ge=1, le=1000, examples=[10])
    public: bool = Field(default=True, examples=[True])


class Training(BaseModel):
    id: uuid.UUID = Field(examples=["121276c6-dcba-5fde-97d1-16368843a61a"])
    association_id: uuid.UUID = Field(examples=["a0735503-08e3-5c4b-b3a1-9b3124393ab0"])
    training_type: str = Field(examples=["PSC1"])
    title: str = Field(examples=["Prévention et secours civiques de niveau 1"])
    start_time: dt.datetime | None = Field(examples=["2026-05-16T06:30:00Z"])
    location: str = Field(examples=["Caserne Bonaparte, Toulon"])
    capacity: int = Field(examples=[10])
    seats_taken: int = Field(examples=[4])
    public: bool = Field(examples=[True])

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
    next_page_token: str | None = Field(examples=["eyJsIjoicGFnZSIsImsiOlsiMjAyNi0wMy0xNCJdfQ"])


class Trainee(BaseModel):
    first_name: str = Field(max_length=100, examples=["Jeanne"])
    last_name: str = Field(max_length=100, examples=["Martin"])
    birth_date: dt.date = Field(examples=["1992-11-03"])
    email: str = Field(max_length=EMAIL, examples=["jeanne.martin@example.org"])
    phone: str = Field(default="", max_length=32, examples=["+33 6 12 34 56 78"])


class RegistrationBody(_Request):
    trainee: Trainee
    company_name: str = Field(
        default="",
        max_length=NAME,
        description="Who pays, if not the trainee.",
        examples=["Lycée Victor Hugo"],
    )
    siret: str = Field(default="", max_length=20, examples=["73282932000074"])
    client_number: int | None = Field(
        default=None,
        ge=1,
        le=MAX_CLIENT_NUMBER,
        description="The number received with an earlier request.",
        examples=[100123],
    )


class ClientRef(BaseModel):
    id: uuid.UUID
    number: int
    company_name: str


class Registration(BaseModel):
    id: uuid.UUID = Field(examples=["03823525-af48-54e1-9bf7-9a8ca1482fda"])
    training_id: uuid.UUID = Field(examples=["77c35d99-5360-5454-a77e-dcaec4eb50e6"])
    association_id: uuid.UUID = Field(examples=["a0735503-08e3-5c4b-b3a1-9b3124393ab0"])
    training_type: str = Field(examples=["PSC1"])
    trainee: Trainee
    status: RegistrationStatus
    cancel_reason: str | None = Field(examples=[None])
    client: ClientRef
    created_at: dt.datetime | None = Field(examples=["2026-03-14T09:26:53Z"])
    validated_at: dt.datetime | None = Field(examples=[None])

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
        description="The earlier registration for this type of training that this one replaced.",
        examples=[None],
    )
    new_client_record: bool = Field(examples=[True])


class RegistrationPage(BaseModel):
    items: list[Registration]
    next_page_token: str | None = Field(examples=["eyJsIjoicGFnZSIsImsiOlsiMjAyNi0wMy0xNCJdfQ"])


class EmailBody(_Request):
    email: str = Field(max_length=EMAIL, examples=["jeanne.martin@example.org"])


class Organiser(BaseModel):
    company_name: str = Field(max_length=NAME, examples=["Mairie de Toulon"])
    siret: str = Field(default="", max_length=20, examples=["21830137100017"])
    client_number: int | None = Field(default=None, ge=1, le=MAX_CLIENT_NUMBER, examples=[100045])
    contact_name: str = Field(max_length=NAME, examples=["Sophie Bernard"])
    email: str = Field(max_length=EMAIL, examples=["evenements@mairie-toulon.example.fr"])
    phone: str = Field(default="", max_length=32, examples=["+33 4 94 36 30 00"])


class CoverageBody(_Request):
    event_name: str = Field(max_length=NAME, examples=["Fête de la musique"])
    event_date: dt.date = Field(examples=["2026-06-21"])
    location: str = Field(max_length=NAME, examples=["Place de la Liberté, Toulon"])
    expected_attendance: int = Field(ge=1, le=1_000_000, examples=[3000])
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
    new_client_record: bool = Field(examples=[False])


class CoveragePage(BaseModel):
    items: list[Coverage]
    next_page_token: str | None = Field(examples=["eyJsIjoicGFnZSIsImsiOlsiMjAyNi0wMy0xNCJdfQ"])


class ClientRecord(BaseModel):
    id: uuid.UUID = Field(examples=["0c48c31a-4695-52d3-969c-a6eb826f500e"])
    association_id: uuid.UUID = Field(examples=["a0735503-08e3-5c4b-b3a1-9b3124393ab0"])
    number: int = Field(examples=[100045])
    company_name: str = Field(examples=["Mairie de Toulon"])
    siret: str | None = Field(examples=["21830137100017"])
    email: str | None = Field(examples=["evenements@mairie-toulon.example.fr"])
    contact_name: str | None = Field(examples=["Sophie Bernard"])
    registration_count: int = Field(examples=[3])
    coverage_count: int = Field(examples=[2])
    merged_into_id: uuid.UUID | None = Field(examples=[None])
    created_at: dt.datetime | None = Field(examples=["2026-03-14T09:26:53Z"])

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
    next_page_token: str | None = Field(examples=["eyJsIjoicGFnZSIsImsiOlsiMjAyNi0wMy0xNCJdfQ"])


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
    next_page_token: str | None = Field(examples=["eyJsIjoicGFnZSIsImsiOlsiMjAyNi0wMy0xNCJdfQ"])


class DuplicateCandidate(BaseModel):
    kind: DuplicateKind
    record: ClientRecord


class RecordDuplicates(BaseModel):
    record: ClientRecord
    candidates: list[DuplicateCandidate]


class MergeBody(_Request):
    target_id: uuid.UUID = Field(
        description="The record that keeps the events.",
        examples=["9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"],
    )


class MergePreview(BaseModel):
    source: ClientRecord
    target: ClientRecord
    registrations_to_move: int = Field(examples=[4])
    coverage_requests_to_move: int = Field(examples=[1])


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
    registrations_moved: int = Field(examples=[4])
    coverage_requests_moved: int = Field(examples=[1])
    audit: AuditEntry


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_page_token: str | None = Field(examples=["eyJsIjoicGFnZSIsImsiOlsiMjAyNi0wMy0xNCJdfQ"])


def iso(value: dt.date | None) -> str:
    return _iso(value)
