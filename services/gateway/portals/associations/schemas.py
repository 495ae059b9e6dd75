"""JSON shapes of `/v1/associations/…` (members and fees, trainings, coverage requests, client
records) and their proto conversions.

Request models check shape only; the rules are the membership service's and come back as problems.
"""

from __future__ import annotations

import datetime as dt
import uuid

from guichet.membership.v1 import membership_pb2 as pb
from pydantic import BaseModel, Field

from services.gateway.fields import (
    FUTURE_DAY,
    FUTURE_TIME,
    OPTIONAL_PHONE_PATTERN,
    Date,
    DateTime,
    Email,
    StrictBool,
    StrictInt,
    optional_text,
    text,
)
from services.gateway.portals.membership import (
    CODE_PATTERN,
    MAX_CLIENT_NUMBER,
    NAME,
    PERSON_NAME,
    SIRET_PATTERN,
    TIME_ZONE,
    DuplicateKind,
    RegistrationStatus,
    _date,
    _none,
    _Request,
    _time,
)

# --- associations -------------------------------------------------------------------------------


class AssociationSettings(BaseModel):
    """The time zone the association's days are counted in ("today" for fees, trainings and
    coverage requests)."""

    association_id: uuid.UUID = Field(examples=["7e1c5a3b-2d4f-4e6a-8b9c-0d1e2f3a4b5c"])
    time_zone: str = Field(examples=["Europe/Paris"])
    chosen: bool = Field(
        description="False while the service's default zone applies.", examples=[True]
    )
    updated_by: str | None = Field(examples=[None])
    updated_at: dt.datetime | None = Field(examples=[None])

    @classmethod
    def from_proto(cls, s: pb.AssociationSettings) -> AssociationSettings:
        return cls(
            association_id=uuid.UUID(s.association_id),
            time_zone=s.time_zone,
            chosen=s.chosen,
            updated_by=_none(s.updated_by),
            updated_at=_time(s.update_time, s.HasField("update_time")),
        )


class AssociationTimeZoneBody(_Request):
    time_zone: str = Field(
        min_length=1, max_length=TIME_ZONE, description="IANA time zone.", examples=["Europe/Paris"]
    )


class MemberBody(_Request):
    user_id: uuid.UUID | None = Field(
        default=None,
        description="The member's identity account: its validation checks this year's fee.",
        examples=["6f1c2a4e-8b3d-4c5e-9f70-1a2b3c4d5e6f"],
    )
    first_name: str = text(PERSON_NAME, "Marie")
    last_name: str = text(PERSON_NAME, "Dupont")
    email: Email | None = Field(default=None, examples=["marie.dupont@example.org"])
    joined_on: Date | None = Field(
        default=None, description="Default: today.", examples=["2026-01-10"]
    )


class FeeBody(_Request):
    year: StrictInt = Field(ge=1900, le=2200, examples=[2026])
    amount_cents: StrictInt = Field(ge=0, le=10_000_000, examples=[3500])
    paid_on: Date | None = Field(
        default=None,
        description="Default: today; not in the future (422 `in_the_future`).",
        examples=["2026-01-15"],
    )


class FeePayment(BaseModel):
    year: int
    amount_cents: int
    currency: str = Field(description="ISO 4217 code of amount_cents.", examples=["EUR"])
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
                FeePayment(
                    year=f.year,
                    amount_cents=f.amount_cents,
                    currency=f.currency or "EUR",
                    paid_on=_date(f.paid_on),
                )
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
    training_type: str = Field(pattern=CODE_PATTERN, examples=["PSC1"])
    title: str = text(NAME, "Prévention et secours civiques de niveau 1")
    start_time: DateTime = Field(
        examples=[FUTURE_TIME], description="In the future (422 `in_the_past` otherwise)."
    )
    location: str = text(NAME, "Caserne Bonaparte, Toulon")
    capacity: StrictInt = Field(ge=1, le=1000, examples=[10])
    public: StrictBool = Field(default=True, examples=[True])


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
    first_name: str = text(PERSON_NAME, "Jeanne")
    last_name: str = text(PERSON_NAME, "Martin")
    birth_date: Date = Field(
        examples=["1992-11-03"],
        description="From 1900, before today (422 `too_old` or `in_the_future`).",
    )
    email: Email = Field(examples=["jeanne.martin@example.org"])
    phone: str = Field(default="", pattern=OPTIONAL_PHONE_PATTERN, examples=["+33 6 12 34 56 78"])


class TrainingRegistrationBody(_Request):
    """Someone registering a trainee for a public training."""

    trainee: Trainee
    company_name: str = optional_text(
        NAME, "Lycée Victor Hugo", default="", description="Who pays, if not the trainee."
    )
    siret: str = Field(
        default="",
        pattern=SIRET_PATTERN,
        examples=["73282932000074"],
        description="14 digits; its check digit must hold (422 `siret_checksum`).",
    )
    client_number: StrictInt | None = Field(
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


class TraineeEmailBody(_Request):
    """The trainee's corrected e-mail address."""

    email: Email = Field(examples=["jeanne.martin@example.org"])


class Organiser(BaseModel):
    company_name: str = text(NAME, "Mairie de Toulon")
    siret: str = Field(
        default="",
        pattern=SIRET_PATTERN,
        examples=["21830137100017"],
        description="14 digits; its check digit must hold (422 `siret_checksum`).",
    )
    client_number: StrictInt | None = Field(
        default=None, ge=1, le=MAX_CLIENT_NUMBER, examples=[100045]
    )
    contact_name: str = text(NAME, "Sophie Bernard")
    email: Email = Field(examples=["evenements@mairie-toulon.example.fr"])
    phone: str = Field(default="", pattern=OPTIONAL_PHONE_PATTERN, examples=["+33 4 94 36 30 00"])


class CoverageBody(_Request):
    event_name: str = text(NAME, "Fête de la musique")
    event_date: Date = Field(
        examples=[FUTURE_DAY], description="After today (422 `in_the_past` otherwise)."
    )
    location: str = text(NAME, "Place de la Liberté, Toulon")
    expected_attendance: StrictInt = Field(ge=1, le=1_000_000, examples=[3000])
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
    elapsed_ms: int = Field(description="What the last computation took (in the background).")
    computed_at: dt.datetime | None = Field(
        default=None, description="When the report was computed; null before the first one."
    )
    stale: bool = Field(
        default=False,
        description="Records changed since (or no report yet): an update follows within seconds.",
    )


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
