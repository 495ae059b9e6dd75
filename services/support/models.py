"""Support's tables: calendars, plans and targets, contracts, categories and answers, tickets with
their messages, attachments and consulting time, SLA clocks, pauses and events, FAQ views, and the
two outboxes (workflow starts, SLA signals).

Timestamps are set by the domain from its clock, so that one call sees one instant and tests can
reason about time.
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
    LargeBinary,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.kit.db import new_metadata
from services.kit.outbox import outbox_table


class Base(DeclarativeBase):
    metadata = new_metadata()


class Status(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    WAITING_ON_CUSTOMER = "waiting_on_customer"
    FINISHED = "finished"
    CANCELLED = "cancelled"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Kind(StrEnum):
    SUPPORT = "support"
    CONSULTING = "consulting"


class Channel(StrEnum):
    EXTRANET = "extranet"
    PARTNER_MESSAGE = "partner_message"


class Audience(StrEnum):
    CUSTOMER = "customer"
    PARTNER = "partner"


class Side(StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"


class Clock(StrEnum):
    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    RESOLUTION = "resolution"


class EventKind(StrEnum):
    WARNING = "warning"
    BREACH = "breach"
    PAUSE = "pause"
    RESUME = "resume"
    RECOMPUTE = "recompute"


class OrganisationKind(StrEnum):
    """The identity kinds that can hold a support contract."""

    ERP_CUSTOMER = "erp_customer"
    DELIVERY_PARTNER = "delivery_partner"


def _one_of(column: str, values: type[StrEnum]) -> str:
    listed = ", ".join(f"'{member.value}'" for member in values)
    return f"{column} IN ({listed})"


TZ = DateTime(timezone=True)


class Calendar(Base):
    __tablename__ = "calendars"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    time_zone: Mapped[str] = mapped_column(String(64))
    # Seven strings, Monday first: "" or "HH:MM-HH:MM,HH:MM-HH:MM"
    # (see workflows.contracts.business_time).
    weekly_hours: Mapped[list[str]] = mapped_column(JSONB)
    country: Mapped[str] = mapped_column(String(8), default="")
    subdivision: Mapped[str] = mapped_column(String(16), default="")
    # The `holidays` categories observed ("public", "optional", "bank"…); [] = public only.
    holiday_categories: Mapped[list[str]] = mapped_column(JSONB, default=list)
    created_at: Mapped[datetime] = mapped_column(TZ)
    updated_at: Mapped[datetime | None] = mapped_column(TZ)


class ClosedDay(Base):
    """A day the calendar is closed besides public holidays (a bridge day, a company event)."""

    __tablename__ = "calendar_closed_days"

    calendar_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("calendars.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)


class Plan(Base):
    __tablename__ = "plans"
    __table_args__ = (CheckConstraint("warning_percent BETWEEN 1 AND 99", name="warning_percent"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    calendar_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("calendars.id"))
    warning_percent: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(TZ)


class PlanTarget(Base):
    """Targets of one priority of a plan, in business minutes."""

    __tablename__ = "plan_targets"
    __table_args__ = (
        CheckConstraint(_one_of("priority", Priority), name="priority"),
        CheckConstraint(
            "first_response_minutes > 0 AND next_response_minutes > 0 AND resolution_minutes > 0",
            name="positive",
        ),
    )

    plan_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("plans.id", ondelete="CASCADE"), primary_key=True
    )
    priority: Mapped[str] = mapped_column(String(16), primary_key=True)
    first_response_minutes: Mapped[int] = mapped_column(Integer)
    next_response_minutes: Mapped[int] = mapped_column(Integer)
    resolution_minutes: Mapped[int] = mapped_column(Integer)


class Contract(Base):
    """An organisation's support plan; the organisation itself belongs to identity."""

    __tablename__ = "contracts"
    __table_args__ = (CheckConstraint(_one_of("organisation_kind", OrganisationKind), name="kind"),)

    organisation_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    # Copied from identity when the contract is set: shown in queues and reports.
    organisation_name: Mapped[str] = mapped_column(String(200))
    organisation_kind: Mapped[str] = mapped_column(String(32))
    plan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("plans.id"), index=True)
    operations_email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(TZ)
    updated_at: Mapped[datetime] = mapped_column(TZ)


class Category(Base):
    __tablename__ = "categories"
    __table_args__ = (CheckConstraint(_one_of("audience", Audience), name="audience"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    audience: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(TZ)
    # The name in other languages, written by the support team: {"pt-BR": {"name": "…"}}.
    translations: Mapped[dict[str, dict[str, str]]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )


class FaqEntry(Base):
    __tablename__ = "faq_entries"
    __table_args__ = (Index("ix_faq_entries_category_position", "category_id", "position"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    category_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("categories.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    # {"pt-BR": {"question": "…", "answer": "…"}}: readers of another language read the original.
    translations: Mapped[dict[str, dict[str, str]]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )


class FaqView(Base):
    """A user read a category's answers. It deflected a ticket unless a ticket followed."""

    __tablename__ = "faq_views"
    __table_args__ = (Index("ix_faq_views_category_time", "category_id", "viewed_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    category_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("categories.id"))
    user_id: Mapped[str] = mapped_column(String(100))
    viewed_at: Mapped[datetime] = mapped_column(TZ)
    deflected_at: Mapped[datetime | None] = mapped_column(TZ)
    ticket_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        CheckConstraint(_one_of("status", Status), name="status"),
        CheckConstraint(_one_of("priority", Priority), name="priority"),
        CheckConstraint(_one_of("kind", Kind), name="kind"),
        CheckConstraint(_one_of("channel", Channel), name="channel"),
        Index("ix_tickets_org_created", "organisation_id", "created_at", "id"),
        Index("ix_tickets_queue", "status", "next_due_at", "id"),
        Index("ix_tickets_plan_created", "plan_id", "created_at"),
        # A caller's key names one ticket per organisation: a retried or raced opening finds it.
        Index(
            "uq_tickets_idempotency_key",
            "organisation_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
    )
    __mapper_args__ = {"eager_defaults": False}

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    number: Mapped[int] = mapped_column(BigInteger, Identity(start=1000), unique=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    channel: Mapped[str] = mapped_column(String(20))
    category_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("categories.id"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    screen_code: Mapped[str] = mapped_column(String(40), default="")
    example_record: Mapped[str] = mapped_column(String(500), default="")
    priority: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24))
    kind: Mapped[str] = mapped_column(String(16))
    plan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("plans.id"))
    opened_by_id: Mapped[str] = mapped_column(String(100))
    opened_by_name: Mapped[str] = mapped_column(String(100))
    reply_to_email: Mapped[str | None] = mapped_column(String(320))
    consulting_minutes: Mapped[int] = mapped_column(Integer, default=0)
    # Folded words of the searchable fields (accents stripped, lower case), kept by the domain.
    search_text: Mapped[str] = mapped_column(Text, default="")
    # Sequence number of the last event signalled to the SLA workflow.
    event_seq: Mapped[int] = mapped_column(Integer, default=0)
    next_due_at: Mapped[datetime | None] = mapped_column(TZ)
    at_risk: Mapped[bool] = mapped_column(Boolean, default=False)
    breached: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(TZ)
    updated_at: Mapped[datetime] = mapped_column(TZ)
    first_response_at: Mapped[datetime | None] = mapped_column(TZ)
    closed_at: Mapped[datetime | None] = mapped_column(TZ)
    # The caller's key for this opening (SendPartnerMessage), if it gave one.
    idempotency_key: Mapped[str | None] = mapped_column(String(100))
    # A deadline the opening service set (an order escalation's): every SLA target of the
    # ticket is due then, counted in plain time, whatever the plan says.
    respond_by: Mapped[datetime | None] = mapped_column(TZ)
    # What the ticket is about in another service (kind "order", its id and its code), set by
    # the service that opened it; such a ticket may be closed by that service.
    link_kind: Mapped[str] = mapped_column(String(32), default="")
    link_id: Mapped[str] = mapped_column(String(64), default="")
    link_label: Mapped[str] = mapped_column(String(100), default="")
    # The customer's language (BCP 47), recorded at opening: the customer's mails are in it.
    language: Mapped[str] = mapped_column(String(16), default="fr", server_default="fr")


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint(_one_of("side", Side), name="side"),
        Index("ix_messages_ticket_time", "ticket_id", "created_at", "seq"),
    )
    __mapper_args__ = {"eager_defaults": False}

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, Identity())
    ticket_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    author_id: Mapped[str] = mapped_column(String(100))
    author_name: Mapped[str] = mapped_column(String(100))
    side: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ)


class Attachment(Base):
    """A file on a ticket, kept in the database (bytea): small files, one backup, one ACL."""

    __tablename__ = "attachments"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    ticket_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_by_id: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(TZ)


class ConsultingEntry(Base):
    __tablename__ = "consulting_entries"
    __table_args__ = (CheckConstraint("minutes > 0", name="minutes"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    ticket_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), index=True
    )
    minutes: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(String(500), default="")
    agent_id: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(TZ)


class SlaClock(Base):
    """One measurement of one target: first response, each next response, resolution."""

    __tablename__ = "sla_clocks"
    __table_args__ = (CheckConstraint(_one_of("clock", Clock), name="clock"),)

    ticket_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )
    clock: Mapped[str] = mapped_column(String(20), primary_key=True)
    cycle: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(TZ)
    target_seconds: Mapped[int] = mapped_column(Integer)
    warning_at: Mapped[datetime | None] = mapped_column(TZ)
    due_at: Mapped[datetime | None] = mapped_column(TZ)
    stopped_at: Mapped[datetime | None] = mapped_column(TZ)
    elapsed_seconds: Mapped[int | None] = mapped_column(Integer)
    met: Mapped[bool | None] = mapped_column(Boolean)
    warned: Mapped[bool] = mapped_column(Boolean, default=False)
    breached: Mapped[bool] = mapped_column(Boolean, default=False)


class SlaPause(Base):
    """An interval during which the ticket waited on the customer and the clocks stood still."""

    __tablename__ = "sla_pauses"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    ticket_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), index=True
    )
    started_at: Mapped[datetime] = mapped_column(TZ)
    ended_at: Mapped[datetime | None] = mapped_column(TZ)
    started_by: Mapped[str] = mapped_column(String(100))
    ended_by: Mapped[str | None] = mapped_column(String(100))


class SlaEvent(Base):
    __tablename__ = "sla_events"
    __table_args__ = (
        CheckConstraint(_one_of("kind", EventKind), name="kind"),
        Index("ix_sla_events_ticket_time", "ticket_id", "at", "seq"),
        # A warning or breach is recorded once per clock cycle, however often it is reported.
        Index(
            "uq_sla_events_threshold",
            "ticket_id",
            "kind",
            "clock",
            "cycle",
            unique=True,
            postgresql_where=text("kind IN ('warning', 'breach')"),
        ),
    )
    __mapper_args__ = {"eager_defaults": False}

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, Identity())
    ticket_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    clock: Mapped[str | None] = mapped_column(String(20))
    cycle: Mapped[int | None] = mapped_column(Integer)
    # When it happened (a pause's start, the moment a breach was recorded).
    at: Mapped[datetime] = mapped_column(TZ)
    due_at: Mapped[datetime | None] = mapped_column(TZ)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class SlaSignal(Base):
    """An event for a ticket's SLA workflow, recorded with the change; the relay delivers it.

    Delivered in `id` order, at least once; the workflow applies each `seq` once and in order.
    """

    __tablename__ = "sla_signals"
    __mapper_args__ = {"eager_defaults": False}

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(300))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(TZ)
    sent_at: Mapped[datetime | None] = mapped_column(TZ)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


Index("ix_sla_signals_pending", SlaSignal.id, postgresql_where=SlaSignal.sent_at.is_(None))

outbox = outbox_table(Base.metadata)
