"""JSON shapes of `/v1/workshops/…`, `/v1/banner-programs`, `/v1/training-courses` and their
proto conversions.

Request models check shape only; the rules are the membership service's and come back as problems.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from guichet.membership.v1 import membership_pb2 as pb
from pydantic import BaseModel, Field, StringConstraints

from services.gateway.fields import (
    FUTURE_DAY,
    FUTURE_NEXT_DAY,
    NO_NUL,
    NO_NUL_NOT_BLANK,
    NOT_BLANK,
    OPTIONAL_PHONE_PATTERN,
    Date,
    Email,
    StrictBool,
    StrictInt,
    optional_text,
    text,
)
from services.gateway.portals.membership import (
    CODE_PATTERN,
    MAX_OPTIONS,
    NAME,
    PERSON_NAME,
    TEXT,
    TIME_ZONE,
    VIN_PATTERN,
    ClaimStatus,
    CourseRegistrationOutcome,
    CourseRegistrationStatus,
    MembershipStatus,
    OptionChange,
    OptionChangeStatus,
    RequestChannel,
    _date,
    _none,
    _Request,
    _time,
)

# --- banner programs ----------------------------------------------------------------------------


# One benefit of a program: not blank, at most 300 characters (membership's banner rule).
Benefit = Annotated[str, StringConstraints(min_length=1, max_length=300, pattern=NOT_BLANK)]


class ProgramBody(_Request):
    code: str = Field(pattern=CODE_PATTERN, examples=["ATELIER-PLUS"])
    name: str = text(NAME, "Atelier Plus")
    description: str = Field(
        default="",
        max_length=TEXT,
        pattern=NO_NUL,
        examples=["Le réseau des garages indépendants."],
    )
    benefits: list[
        Annotated[str, StringConstraints(min_length=1, max_length=300, pattern=NOT_BLANK)]
    ] = Field(
        default_factory=list,
        max_length=30,
        examples=[["Garantie main d'œuvre nationale", "Formations techniques"]],
    )
    time_zone: str = Field(
        default="",
        max_length=TIME_ZONE,
        description="IANA time zone the program lives by (renewal windows open and close, and "
        "anniversary letters leave, at midnight there); empty: the service's default.",
        examples=["America/Montreal"],
    )


class TimeZoneBody(_Request):
    time_zone: str = Field(
        min_length=1,
        max_length=TIME_ZONE,
        description="IANA time zone, e.g. Europe/Paris.",
        examples=["America/Montreal"],
    )


class WorkshopTimeZoneBody(_Request):
    time_zone: str = Field(
        max_length=TIME_ZONE,
        # Empty, or a name of the IANA database's shape (the service checks it exists).
        pattern=r"^\s*([A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*)?\s*$",
        description="The workshop's own IANA time zone; empty: its program's.",
        examples=["America/Montreal"],
    )


# A translation's language: a BCP 47 tag with an optional region, as browsers send them.
LOCALE_PATTERN = r"^[a-z]{2,3}(-([A-Z]{2}|[0-9]{3}))?$"
MAX_TRANSLATIONS = 12


class OptionTranslation(_Request):
    """An option's name and benefit in another language than the original."""

    locale: str = Field(
        max_length=12,
        pattern=LOCALE_PATTERN,
        description='A BCP 47 tag: "pt-BR", "en", "fr".',
        examples=["pt-BR"],
    )
    name: str = text(NAME, "Assistência 24 horas")
    benefit: str = text(1000, "Assistência na estrada para seus clientes", pattern=NO_NUL_NOT_BLANK)

    def to_proto(self) -> pb.ProgramOptionTranslation:
        return pb.ProgramOptionTranslation(locale=self.locale, name=self.name, benefit=self.benefit)


class OptionBody(_Request):
    code: str = Field(pattern=CODE_PATTERN, examples=["DEPANNAGE"])
    name: str = text(NAME, "Dépannage 24/7")
    benefit: str = text(1000, "Assistance routière pour vos clients", pattern=NO_NUL_NOT_BLANK)
    translations: list[OptionTranslation] = Field(
        default_factory=list,
        max_length=MAX_TRANSLATIONS,
        description="The name and benefit in other languages, one per language.",
    )


class OptionUpdateBody(_Request):
    """An option's new name and benefit, with their translations (those saved are replaced)."""

    name: str = text(NAME, "Dépannage 24/7")
    benefit: str = text(1000, "Assistance routière pour vos clients", pattern=NO_NUL_NOT_BLANK)
    translations: list[OptionTranslation] = Field(default_factory=list, max_length=MAX_TRANSLATIONS)


class ProgramOption(BaseModel):
    id: uuid.UUID = Field(examples=["2cc4ddaf-a686-5172-bdbf-cf0b59d1b3b3"])
    program_id: uuid.UUID = Field(examples=["ae986f19-3f82-5f96-ae29-62903cb2af03"])
    code: str = Field(examples=["VO"])
    name: str = Field(examples=["Véhicules d'occasion"])
    benefit: str = Field(examples=["Garantie VO 12 mois"])
    translations: list[OptionTranslation] = Field(
        description="The name and benefit in other languages (may be empty); readers of a "
        "language without one read the original."
    )

    @classmethod
    def from_proto(cls, option: pb.ProgramOption) -> ProgramOption:
        return cls(
            id=uuid.UUID(option.id),
            program_id=uuid.UUID(option.program_id),
            code=option.code,
            name=option.name,
            benefit=option.benefit,
            translations=[
                OptionTranslation(locale=t.locale, name=t.name, benefit=t.benefit)
                for t in option.translations
            ],
        )


class Program(BaseModel):
    id: uuid.UUID = Field(examples=["cb61b366-2b75-5bea-b29a-cfcaac25f7b2"])
    code: str = Field(examples=["ATELIER-PLUS"])
    name: str = Field(examples=["Atelier Plus"])
    description: str = Field(examples=["Le réseau des garages indépendants."])
    benefits: list[str]
    options: list[ProgramOption]
    created_at: dt.datetime | None = Field(examples=["2026-03-14T09:26:53Z"])
    time_zone: str = Field(
        description="IANA time zone: windows and letters at midnight there.",
        examples=["Europe/Paris"],
    )

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
            time_zone=program.time_zone,
        )


class ProgramPage(BaseModel):
    items: list[Program]
    next_page_token: str | None = Field(examples=["eyJsIjoicGFnZSIsImsiOlsiMjAyNi0wMy0xNCJdfQ"])


# --- workshops ----------------------------------------------------------------------------------


class WorkshopInfo(BaseModel):
    name: str = optional_text(
        NAME, "Garage du Centre", default="", description="Default: the organisation's name."
    )
    email: Email = Field(examples=["contact@garageducentre.example.fr"])
    phone: str = Field(default="", pattern=OPTIONAL_PHONE_PATTERN, examples=["+33 4 78 12 34 56"])
    address_line: str = optional_text(NAME, "12 avenue Jean Jaurès", default="")
    postal_code: str = optional_text(16, "69007", default="")
    city: str = optional_text(100, "Lyon", default="")

    def to_proto(self) -> pb.WorkshopInfo:
        return pb.WorkshopInfo(**self.model_dump())


class Contact(BaseModel):
    name: str = text(NAME, "Grossiste Rhône-Alpes")
    email: Email = Field(examples=["adhesions@grossiste.example.fr"])

    def to_proto(self) -> pb.Contact:
        return pb.Contact(name=self.name, email=self.email)


class RemovalWindow(BaseModel):
    open: bool
    opened_on: dt.date | None
    closes_on: dt.date | None
    next_opens_on: dt.date | None


class LetterResend(BaseModel):
    renewal_date: dt.date | None = Field(examples=["2027-03-21"])
    sent_at: dt.datetime | None = Field(examples=["2027-02-20T10:02:11Z"])
    requested_by: str = Field(examples=["4f1c2d3e-5a6b-4c7d-8e9f-0a1b2c3d4e5f"])
    reason: str = Field(examples=["Date corrigée au 21 mars après l'envoi"])


class AnniversaryLetter(BaseModel):
    """This renewal's anniversary letter: once sent, never sent again unless the program team
    asks (each time recorded here)."""

    sent: bool = Field(examples=[True])
    # Before it leaves: the day it leaves (in the membership's time zone).
    due_on: dt.date | None = Field(examples=["2027-02-19"])
    renewal_date: dt.date | None = Field(examples=["2027-03-20"])
    sent_at: dt.datetime | None = Field(examples=["2027-02-18T23:00:00Z"])
    recipients: list[str] = Field(examples=[["contact@garageducentre.example.fr"]])
    resends: list[LetterResend]

    @classmethod
    def from_proto(cls, letter: pb.AnniversaryLetter) -> AnniversaryLetter:
        return cls(
            sent=letter.sent,
            due_on=_date(letter.due_on),
            renewal_date=_date(letter.renewal_date),
            sent_at=_time(letter.sent_time, letter.HasField("sent_time")),
            recipients=list(letter.recipients),
            resends=[
                LetterResend(
                    renewal_date=_date(r.renewal_date),
                    sent_at=_time(r.time, r.HasField("time")),
                    requested_by=r.requested_by,
                    reason=r.reason,
                )
                for r in letter.resends
            ],
        )


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
    time_zone: str | None = Field(
        description="The workshop's own IANA time zone when it differs from its program's.",
        examples=[None],
    )
    effective_time_zone: str = Field(
        description="The zone its dates are days of (the workshop's, else the program's).",
        examples=["Europe/Paris"],
    )
    anniversary: dt.date | None = Field(
        description="The anniversary renewals are computed from (29 February stays the 29th "
        "in leap years).",
        examples=["2028-02-29"],
    )
    workshop_code: str | None = Field(examples=["WS-CENTRE"])
    letter: AnniversaryLetter | None

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
            time_zone=_none(m.time_zone),
            effective_time_zone=m.effective_time_zone,
            anniversary=_date(m.anniversary),
            workshop_code=_none(m.workshop_code),
            letter=AnniversaryLetter.from_proto(m.letter) if m.HasField("letter") else None,
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
    renewal_date: Date = Field(
        examples=[FUTURE_DAY], description="After today (422 `in_the_past` otherwise)."
    )
    workshop: WorkshopInfo
    wholesaler: Contact
    distributor: Contact
    option_ids: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=MAX_OPTIONS,
        examples=[["8d7c6b5a-4f3e-4d2c-9b1a-0f9e8d7c6b5a"]],
        description="Options of the program (422 `unknown_option` otherwise).",
    )
    time_zone: str = Field(
        default="",
        max_length=TIME_ZONE,
        description="The workshop's own IANA time zone when it differs from the program's.",
        examples=[""],
    )


class ContactsBody(_Request):
    workshop: WorkshopInfo
    wholesaler: Contact
    distributor: Contact


class RenewalDateBody(_Request):
    renewal_date: Date = Field(
        examples=[FUTURE_DAY], description="After today (422 `in_the_past` otherwise)."
    )


class ReasonBody(_Request):
    reason: str = text(1000, "Fermeture de l'atelier", pattern=NO_NUL_NOT_BLANK)


class OptionChangeBody(_Request):
    option_id: uuid.UUID = Field(examples=["8d7c6b5a-4f3e-4d2c-9b1a-0f9e8d7c6b5a"])
    change: OptionChange = Field(examples=["add"])
    # Left out by a workshop (portal); `email` for the program team recording a mailed request.
    channel: RequestChannel | None = Field(
        default=None,
        examples=["email"],
        description="A workshop leaves it out (portal); the program team records `email` "
        "requests; never `phone` (422 `channel`).",
    )
    note: str = Field(
        default="",
        max_length=2000,
        pattern=NO_NUL,
        examples=["Demande reçue par courriel le 3 février."],
    )


class DecisionBody(_Request):
    approve: StrictBool = Field(examples=[False])
    note: str = Field(
        default="",
        max_length=2000,
        pattern=NO_NUL,
        description="Required to reject (422 `note_required`).",
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
    first_name: str = text(PERSON_NAME, "João")
    last_name: str = text(PERSON_NAME, "Ferreira")
    email: Email | None = Field(default=None, examples=["joao.ferreira@example.fr"])


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
    code: str = Field(pattern=CODE_PATTERN, examples=["DIAG-2027-03"])
    title: str = text(NAME, "Diagnostic électronique avancé")
    description: str = Field(
        default="",
        max_length=TEXT,
        pattern=NO_NUL,
        examples=["Lecture des codes défaut, multiplexage CAN et calculateurs moteur."],
    )
    starts_on: Date = Field(
        examples=[FUTURE_DAY], description="After today (422 `in_the_past` otherwise)."
    )
    ends_on: Date | None = Field(
        default=None,
        examples=[FUTURE_NEXT_DAY],
        description="Not before starts_on (422 `end_before_start`); default: starts_on.",
    )
    location: str = text(NAME, "Centre de formation de Villeurbanne")
    capacity: StrictInt = Field(ge=1, le=1000, examples=[12])


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
    status: CourseRegistrationOutcome = Field(examples=["completed"])


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
    vehicle_vin: str = Field(pattern=VIN_PATTERN, examples=["VF1RFB00X12345678"])
    repair_order: str = text(40, "OR-2026-0412")
    repair_date: Date = Field(
        examples=["2026-04-08"], description="Not in the future (422 `in_the_future`)."
    )
    technician_id: uuid.UUID | None = Field(
        default=None, examples=["3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a"]
    )
    labour_minutes: StrictInt = Field(ge=1, le=6000, examples=[90])
    amount_cents: StrictInt = Field(ge=0, le=10_000_000, examples=[13500])
    description: str = text(
        TEXT,
        "Remplacement de l'embrayage sous garantie main d'œuvre, à 18 000 km.",
        pattern=NO_NUL_NOT_BLANK,
    )


class TransitionBody(_Request):
    to_status: ClaimStatus = Field(examples=["needs_information"])
    note: str = Field(
        default="",
        max_length=TEXT,
        pattern=NO_NUL,
        description="Required by some transitions (422 `note_required`).",
        examples=["Merci de joindre la facture des pièces."],
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
    currency: str = Field(description="ISO 4217 code of amount_cents.", examples=["EUR"])
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
            currency=c.currency or "EUR",
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
