"""Membership's tables: banner programs and workshop memberships, technicians and courses,
warranty claims; association members, fees, trainings, registrations, coverage requests, client
records and their audit, their precomputed duplicate candidates; the outbox and the renewal
signals.

Organisations and users live in identity: `workshop_id`, `association_id` and `user_id` are
identity ids, kept without foreign keys (each service owns its data). Timestamps are set by the
domain from its clock.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.kit.db import new_metadata
from services.kit.name_keys import name_clashes_table
from services.kit.outbox import outbox_table


class Base(DeclarativeBase):
    metadata = new_metadata()


def _one_of(column: str, values: type[StrEnum]) -> str:
    listed = ", ".join(f"'{member.value}'" for member in values)
    return f"{column} IN ({listed})"


TZ = DateTime(timezone=True)


class MembershipStatus(StrEnum):
    ACTIVE = "active"
    ENDED = "ended"


class OptionChange(StrEnum):
    ADD = "add"
    REMOVE = "remove"


class RequestChannel(StrEnum):
    PORTAL = "portal"
    EMAIL = "email"


class OptionChangeStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class CourseRegistrationStatus(StrEnum):
    REGISTERED = "registered"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    ABSENT = "absent"


class ClaimStatus(StrEnum):
    SUBMITTED = "submitted"
    UNDER_REVIEW = "under_review"
    NEEDS_INFORMATION = "needs_information"
    APPROVED = "approved"
    REJECTED = "rejected"
    PAID = "paid"
    WITHDRAWN = "withdrawn"


class RegistrationStatus(StrEnum):
    REGISTERED = "registered"
    VALIDATED = "validated"
    CANCELLED = "cancelled"


# ================================================================================================
# Banner programs
# ================================================================================================


class Program(Base):
    __tablename__ = "programs"
    # Unique names, compared as people read them (services.kit.names.name_key).
    __table_args__ = (Index("uq_programs_name_key", "name_key", unique=True),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # NULL only for a row whose key an older row had when keys came (see name_clashes).
    name_key: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    benefits: Mapped[list[str]] = mapped_column(JSONB)
    # The IANA time zone the program lives by: its renewal windows open and close, and its
    # anniversary letters leave, at midnight of this zone (a workshop may name its own).
    time_zone: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(TZ)


class ProgramOption(Base):
    __tablename__ = "program_options"
    __table_args__ = (UniqueConstraint("program_id", "code"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    benefit: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ)
    # The name and benefit in other languages: {"pt-BR": {"name": "…", "benefit": "…"}}.
    translations: Mapped[dict[str, dict[str, str]]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )


class WorkshopMembership(Base):
    """A workshop's enrolment in a banner program; the renewal workflow runs one per row."""

    __tablename__ = "workshop_memberships"
    __table_args__ = (
        CheckConstraint(_one_of("status", MembershipStatus), name="status"),
        # One active membership per workshop, even under concurrent enrolments.
        Index(
            "uq_workshop_memberships_active_workshop",
            "workshop_id",
            unique=True,
            postgresql_where=text("status = 'active'"),
        ),
        Index("ix_workshop_memberships_workshop_created", "workshop_id", "created_at"),
        Index("ix_workshop_memberships_created_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    workshop_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"))
    status: Mapped[str] = mapped_column(String(16))
    # The next renewal date: the removal window opens there, the letter goes 30 days before.
    renewal_date: Mapped[date] = mapped_column(Date)
    # The anniversary every renewal is computed from (the first renewal date, or the date the
    # program team last set): 29 February renews on 28 February in common years and on the 29th
    # again in leap years, never drifting.
    anniversary: Mapped[date] = mapped_column(Date)
    # Which yearly renewal `renewal_date` is (1 for the first): one anniversary letter per renewal,
    # however often its date is corrected. Grows when the removal window opens.
    renewal_number: Mapped[int] = mapped_column(Integer, default=1)
    # The workshop's own IANA time zone, when it differs from its program's ("" = the program's).
    time_zone: Mapped[str] = mapped_column(String(64), default="")
    # The workshop's code in identity (e.g. WS-CENTRE), copied at enrolment: what people quote,
    # and the renewal workflow's search attribute.
    workshop_code: Mapped[str] = mapped_column(String(64), default="")
    workshop_name: Mapped[str] = mapped_column(String(200))
    workshop_email: Mapped[str] = mapped_column(String(320))
    workshop_phone: Mapped[str] = mapped_column(String(32), default="")
    address_line: Mapped[str] = mapped_column(String(200), default="")
    postal_code: Mapped[str] = mapped_column(String(16), default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    wholesaler_name: Mapped[str] = mapped_column(String(200))
    wholesaler_email: Mapped[str] = mapped_column(String(320))
    distributor_name: Mapped[str] = mapped_column(String(200))
    distributor_email: Mapped[str] = mapped_column(String(320))
    # Opened and closed by the renewal workflow; removals are accepted only while open.
    window_open: Mapped[bool] = mapped_column(Boolean, default=False)
    window_opened_on: Mapped[date | None] = mapped_column(Date)
    window_closes_on: Mapped[date | None] = mapped_column(Date)
    # Grows with each change the renewal workflow must hear of (date change, end).
    version: Mapped[int] = mapped_column(BigInteger, default=1)
    ended_on: Mapped[date | None] = mapped_column(Date)
    end_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ)
    updated_at: Mapped[datetime] = mapped_column(TZ)


class MembershipOption(Base):
    __tablename__ = "membership_options"

    membership_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workshop_memberships.id", ondelete="CASCADE"), primary_key=True
    )
    option_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("program_options.id"), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(TZ)


class OptionChangeRequest(Base):
    __tablename__ = "option_change_requests"
    __table_args__ = (
        CheckConstraint(_one_of("change", OptionChange), name="change"),
        CheckConstraint(_one_of("channel", RequestChannel), name="channel"),
        CheckConstraint(_one_of("status", OptionChangeStatus), name="status"),
        # One pending request per option of a membership.
        Index(
            "uq_option_change_requests_pending",
            "membership_id",
            "option_id",
            unique=True,
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_option_change_requests_membership_created", "membership_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    membership_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workshop_memberships.id"))
    option_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("program_options.id"))
    change: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    requested_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(TZ)
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decision_note: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column(TZ)


class RenewalLetter(Base):
    """One anniversary letter per membership and yearly renewal: a retried send, or a renewal
    date corrected after the letter left, finds it here and mails nothing."""

    __tablename__ = "renewal_letters"

    membership_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workshop_memberships.id", ondelete="CASCADE"), primary_key=True
    )
    renewal_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The renewal date the letter announced.
    renewal_date: Mapped[date] = mapped_column(Date)
    recipients: Mapped[list[str]] = mapped_column(JSONB)
    sent_at: Mapped[datetime] = mapped_column(TZ)


class RenewalLetterResend(Base):
    """A letter sent again because the program team asked (who, when, why): the only way a
    renewal gets a second letter, and its record."""

    __tablename__ = "renewal_letter_resends"
    __table_args__ = (
        Index("ix_renewal_letter_resends_letter", "membership_id", "renewal_number", "at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    membership_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workshop_memberships.id", ondelete="CASCADE")
    )
    renewal_number: Mapped[int] = mapped_column(Integer)
    renewal_date: Mapped[date] = mapped_column(Date)
    recipients: Mapped[list[str]] = mapped_column(JSONB)
    requested_by: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(TZ)


class AssociationSettings(Base):
    """What an association sets for itself in this service: the time zone its days are counted
    in (fees paid "today", trainings and coverage requests "after today")."""

    __tablename__ = "association_settings"

    association_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    time_zone: Mapped[str] = mapped_column(String(64))
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(TZ)


class RenewalSignal(Base):
    """A change the renewal workflow must hear of, recorded with the change (signal outbox)."""

    __tablename__ = "renewal_signals"
    __table_args__ = (
        Index("ix_renewal_signals_pending", "id", postgresql_where=text("sent_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    membership_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    version: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(TZ)
    sent_at: Mapped[datetime | None] = mapped_column(TZ)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


# ================================================================================================
# Technicians, training courses, warranty claims
# ================================================================================================


class Technician(Base):
    __tablename__ = "technicians"
    __table_args__ = (Index("ix_technicians_workshop_name", "workshop_id", "last_name", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    workshop_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[datetime] = mapped_column(TZ)


class TrainingCourse(Base):
    __tablename__ = "training_courses"
    __table_args__ = (
        CheckConstraint("capacity > 0", name="capacity"),
        CheckConstraint("ends_on >= starts_on", name="dates"),
        Index("ix_training_courses_starts_id", "starts_on", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    location: Mapped[str] = mapped_column(String(200))
    capacity: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(TZ)


class CourseRegistration(Base):
    __tablename__ = "course_registrations"
    __table_args__ = (
        CheckConstraint(_one_of("status", CourseRegistrationStatus), name="status"),
        Index(
            "uq_course_registrations_live",
            "course_id",
            "technician_id",
            unique=True,
            postgresql_where=text("status <> 'cancelled'"),
        ),
        Index("ix_course_registrations_workshop_created", "workshop_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    course_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("training_courses.id"))
    technician_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("technicians.id"))
    workshop_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(TZ)
    updated_at: Mapped[datetime] = mapped_column(TZ)


class WarrantyClaim(Base):
    __tablename__ = "warranty_claims"
    __table_args__ = (
        CheckConstraint(_one_of("status", ClaimStatus), name="status"),
        CheckConstraint("labour_minutes > 0", name="labour"),
        CheckConstraint("amount_cents >= 0", name="amount"),
        Index("ix_warranty_claims_workshop_created", "workshop_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    number: Mapped[int] = mapped_column(BigInteger, Identity(), unique=True)
    workshop_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    membership_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workshop_memberships.id"))
    vehicle_vin: Mapped[str] = mapped_column(String(17))
    repair_order: Mapped[str] = mapped_column(String(40))
    repair_date: Mapped[date] = mapped_column(Date)
    technician_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("technicians.id"))
    labour_minutes: Mapped[int] = mapped_column(Integer)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    # ISO 4217: amounts are shown in the currency they were claimed in.
    currency: Mapped[str] = mapped_column(String(3), default="EUR", server_default="EUR")
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(TZ)
    updated_at: Mapped[datetime] = mapped_column(TZ)


class ClaimEvent(Base):
    __tablename__ = "claim_events"
    __table_args__ = (Index("ix_claim_events_claim_seq", "claim_id", "seq"),)

    seq: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    claim_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("warranty_claims.id", ondelete="CASCADE")
    )
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str] = mapped_column(String(100))
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(TZ)


# ================================================================================================
# Associations: members and fees
# ================================================================================================


class AssociationMember(Base):
    __tablename__ = "association_members"
    __table_args__ = (
        # NULL user ids are distinct: members without an account never collide.
        UniqueConstraint("association_id", "user_id"),
        Index("ix_association_members_name", "association_id", "last_name", "first_name", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    association_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(320), default="")
    joined_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(TZ)


class FeePayment(Base):
    __tablename__ = "fee_payments"
    __table_args__ = (CheckConstraint("amount_cents >= 0", name="amount"),)

    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("association_members.id", ondelete="CASCADE"), primary_key=True
    )
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    # ISO 4217: amounts are shown in the currency they were paid in.
    currency: Mapped[str] = mapped_column(String(3), default="EUR", server_default="EUR")
    paid_on: Mapped[date] = mapped_column(Date)
    recorded_by: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(TZ)


# ================================================================================================
# Associations: trainings, registrations, coverage requests, client records
# ================================================================================================


class ClientRecord(Base):
    """A "fiche client": created with each request, merged, deleted once emptied.

    `name_key` and `token_key` are computed at write time (services.membership.domain.normalise)
    so that duplicate detection only groups stored keys.
    """

    __tablename__ = "client_records"
    __table_args__ = (
        UniqueConstraint("association_id", "external_ref"),
        Index("ix_client_records_name_key", "association_id", "name_key", "number"),
        Index("ix_client_records_token_key", "association_id", "token_key"),
        Index("ix_client_records_company_name", "association_id", "company_name"),
        Index("ix_client_records_siret", "association_id", "siret"),
        Index("ix_client_records_number", "association_id", "number"),
        # Records whose words include a given set: `words @> ARRAY['mairie', 'toulon']`.
        Index(
            "ix_client_records_words",
            text("string_to_array(token_key, ' ')"),
            postgresql_using="gin",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    association_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    # The client number mailed to the requester.
    number: Mapped[int] = mapped_column(BigInteger, Identity(start=100001), unique=True)
    company_name: Mapped[str] = mapped_column(String(200))
    siret: Mapped[str | None] = mapped_column(String(14))
    email: Mapped[str | None] = mapped_column(String(320))
    contact_name: Mapped[str | None] = mapped_column(String(200))
    # Set by bulk imports: a second import of the same ref is skipped.
    external_ref: Mapped[str | None] = mapped_column(String(64))
    name_key: Mapped[str] = mapped_column(String(200, collation="C"))
    token_key: Mapped[str] = mapped_column(String(200, collation="C"))
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("client_records.id"))
    merged_at: Mapped[datetime | None] = mapped_column(TZ)
    created_at: Mapped[datetime] = mapped_column(TZ)


class DuplicateChange(Base):
    """A write that may change an association's duplicates (a record created, imported,
    merged or deleted), recorded in the same transaction; the refresher consumes it
    (services.membership.domain.candidates)."""

    __tablename__ = "duplicate_changes"
    __table_args__ = (Index("ix_duplicate_changes_association", "association_id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    association_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    at: Mapped[datetime] = mapped_column(TZ)


class DuplicateReport(Base):
    """The last duplicate report of an association: its totals and when it was computed."""

    __tablename__ = "duplicate_reports"

    association_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(TZ)
    records: Mapped[int] = mapped_column(Integer)
    certain_groups: Mapped[int] = mapped_column(Integer)
    certain_pairs: Mapped[int] = mapped_column(BigInteger)
    probable_groups: Mapped[int] = mapped_column(Integer)
    probable_pairs: Mapped[int] = mapped_column(BigInteger)
    elapsed_ms: Mapped[int] = mapped_column(Integer)


class DuplicateCandidateGroup(Base):
    """One group of the last report: its kind (0 certain, 1 probable), key and records, in the
    report's order (kind, key), so that the review pages through them without computing."""

    __tablename__ = "duplicate_groups"

    association_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    kind: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    key: Mapped[str] = mapped_column(String(200, collation="C"), primary_key=True)
    record_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid))


class Training(Base):
    __tablename__ = "trainings"
    __table_args__ = (
        CheckConstraint("capacity > 0", name="capacity"),
        Index("ix_trainings_association_start", "association_id", "starts_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    association_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    training_type: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column(TZ)
    location: Mapped[str] = mapped_column(String(200))
    capacity: Mapped[int] = mapped_column(Integer)
    public: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(TZ)


class TrainingRegistration(Base):
    __tablename__ = "training_registrations"
    __table_args__ = (
        CheckConstraint(_one_of("status", RegistrationStatus), name="status"),
        # The rule, held by the database under any concurrency: one validated registration per
        # person and training type, and at most one still waiting.
        Index(
            "uq_training_registrations_validated",
            "association_id",
            "person_key",
            "training_type",
            unique=True,
            postgresql_where=text("status = 'validated'"),
        ),
        Index(
            "uq_training_registrations_registered",
            "association_id",
            "person_key",
            "training_type",
            unique=True,
            postgresql_where=text("status = 'registered'"),
        ),
        Index("ix_training_registrations_training", "training_id", "last_name", "id"),
        Index("ix_training_registrations_client", "client_record_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    training_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("trainings.id"))
    association_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    training_type: Mapped[str] = mapped_column(String(32))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    birth_date: Mapped[date] = mapped_column(Date)
    email: Mapped[str] = mapped_column(String(320))
    phone: Mapped[str] = mapped_column(String(32), default="")
    # Who the person is, whatever their e-mail: folded last and first names and birth date.
    person_key: Mapped[str] = mapped_column(String(240))
    status: Mapped[str] = mapped_column(String(16))
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    client_record_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("client_records.id"))
    created_at: Mapped[datetime] = mapped_column(TZ)
    validated_at: Mapped[datetime | None] = mapped_column(TZ)
    cancelled_at: Mapped[datetime | None] = mapped_column(TZ)


class CoverageRequest(Base):
    """A first-aid coverage ("DPS") request for an event."""

    __tablename__ = "coverage_requests"
    __table_args__ = (
        CheckConstraint("expected_attendance > 0", name="attendance"),
        Index("ix_coverage_requests_association_created", "association_id", "created_at", "id"),
        Index("ix_coverage_requests_client", "client_record_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    association_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    event_name: Mapped[str] = mapped_column(String(200))
    event_date: Mapped[date] = mapped_column(Date)
    location: Mapped[str] = mapped_column(String(200))
    expected_attendance: Mapped[int] = mapped_column(Integer)
    company_name: Mapped[str] = mapped_column(String(200))
    siret: Mapped[str | None] = mapped_column(String(14))
    contact_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    phone: Mapped[str] = mapped_column(String(32), default="")
    client_record_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("client_records.id"))
    created_at: Mapped[datetime] = mapped_column(TZ)


class ClientRecordAudit(Base):
    """Every merge and deletion of a client record. No foreign key: the audit outlives rows."""

    __tablename__ = "client_record_audit"
    __table_args__ = (Index("ix_client_record_audit_association_seq", "association_id", "seq"),)
    __mapper_args__ = {"eager_defaults": False}

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, Identity())
    association_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    event: Mapped[str] = mapped_column(String(20))
    record_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    record_number: Mapped[int] = mapped_column(BigInteger)
    target_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    target_number: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    actor_id: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(TZ)


outbox = outbox_table(Base.metadata)
name_clashes = name_clashes_table(Base.metadata)
