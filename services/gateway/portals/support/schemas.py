"""The JSON shapes of `/v1/support/...` and their translation to and from support's messages.

Request models check shape only (types, UUIDs, size caps, no unknown fields); what a value means
(is the category one of this form, is this transition allowed) is the support service's rule and
comes back as a problem naming the field. Enums travel as lower-case strings, timestamps as
ISO 8601, proto3's empty strings as null.
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp
from guichet.support.v1 import support_pb2 as pb
from pydantic import BaseModel, ConfigDict, Field

from services.gateway.fields import LINES_NOT_BLANK, Date, Email, StrictInt, text

TEXT_CAP = 20_000
# support's code of plans and categories (services/support/domain/common.py CODE_PATTERN).
CODE_PATTERN = r"^[A-Za-z0-9_-]{1,40}$"

E = TypeVar("E", bound="_ProtoEnum")


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _time(value: Timestamp, present: bool) -> dt.datetime | None:
    return value.ToDatetime(tzinfo=dt.UTC) if present else None


def _none(value: str) -> str | None:
    return value or None


EXAMPLE_CATEGORY_ID = "4e3d2c1b-0a9f-4e8d-9c7b-6a5f4e3d2c1b"


class _ProtoEnum(StrEnum):
    """A lower-case name for each value of a proto enum `<PREFIX>_<NAME>`."""

    @classmethod
    def _prefix(cls) -> str:
        raise NotImplementedError

    def to_proto(self) -> Any:
        return getattr(pb, f"{self._prefix()}_{self.name}")

    @classmethod
    def from_proto(cls: type[E], value: int) -> E:
        for member in cls:
            if int(member.to_proto()) == value:
                return member
        raise ValueError(f"unknown {cls.__name__} {value}")


class TicketStatus(_ProtoEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    WAITING_ON_CUSTOMER = "waiting_on_customer"
    FINISHED = "finished"
    CANCELLED = "cancelled"

    @classmethod
    def _prefix(cls) -> str:
        return "TICKET_STATUS"


class TicketPriority(_ProtoEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"

    @classmethod
    def _prefix(cls) -> str:
        return "TICKET_PRIORITY"


class TicketKind(_ProtoEnum):
    SUPPORT = "support"
    CONSULTING = "consulting"

    @classmethod
    def _prefix(cls) -> str:
        return "TICKET_KIND"


class TicketChannel(_ProtoEnum):
    EXTRANET = "extranet"
    PARTNER_MESSAGE = "partner_message"

    @classmethod
    def _prefix(cls) -> str:
        return "TICKET_CHANNEL"


class CategoryAudience(_ProtoEnum):
    CUSTOMER = "customer"
    PARTNER = "partner"

    @classmethod
    def _prefix(cls) -> str:
        return "CATEGORY_AUDIENCE"


class AuthorSide(_ProtoEnum):
    CUSTOMER = "customer"
    AGENT = "agent"

    @classmethod
    def _prefix(cls) -> str:
        return "AUTHOR_SIDE"


class SlaClock(_ProtoEnum):
    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    RESOLUTION = "resolution"

    @classmethod
    def _prefix(cls) -> str:
        return "SLA_CLOCK"


class SlaEventKind(_ProtoEnum):
    WARNING = "warning"
    BREACH = "breach"
    PAUSE = "pause"
    RESUME = "resume"
    RECOMPUTE = "recompute"

    @classmethod
    def _prefix(cls) -> str:
        return "SLA_EVENT_KIND"


def _enum_or_zero(value: _ProtoEnum | None) -> Any:
    return value.to_proto() if value is not None else 0


# --- calendars, plans, contracts ----------------------------------------------------------------


class CalendarBody(_Request):
    name: str = text(100, "Paris office hours")
    time_zone: str = Field(
        min_length=1,
        max_length=64,
        examples=["Europe/Paris"],
        description="An IANA time zone (422 `invalid` when it names none).",
    )
    weekly_hours: list[str] = Field(
        min_length=7,
        max_length=7,
        description='Seven entries, Monday first: "" (closed) or "09:00-12:00,13:00-18:00", '
        "ranges in order within the day (422 `opening_hours` otherwise).",
        examples=[["09:00-12:00,13:00-18:00"] * 5 + ["", ""]],
    )
    country: str | None = Field(
        default=None,
        max_length=8,
        examples=["FR"],
        description="ISO 3166 country whose holidays close the calendar (422 "
        "`unknown_region` when the holidays library knows none).",
    )
    subdivision: str | None = Field(
        default=None,
        max_length=16,
        examples=[None],
        description="A subdivision of the country (422 `unknown_region` otherwise).",
    )
    closed_days: list[Date] = Field(
        default_factory=list,
        max_length=366,
        description="Holidays and other closed days.",
        examples=[["2026-05-01", "2026-07-14", "2026-12-25"]],
    )
    holiday_categories: list[str] = Field(
        default_factory=list,
        max_length=16,
        description="The holidays library's categories observed for the country (public, "
        "optional, bank…; GET /v1/support/holiday-categories lists a country's). Empty: public "
        "holidays only. Brazil's Carnaval is in `optional`.",
        examples=[["public", "optional"]],
    )


class CalendarUpdateBody(_Request):
    """A calendar's rules, replaced whole (its name stays)."""

    time_zone: str = Field(min_length=1, max_length=64, examples=["America/Sao_Paulo"])
    weekly_hours: list[str] = Field(
        max_length=7,
        description='Seven entries, Monday first: "" (closed) or "09:00-12:00,13:00-18:00".',
        examples=[["09:00-18:00"] * 5 + ["", ""]],
    )
    country: str | None = Field(default=None, max_length=8, examples=["BR"])
    subdivision: str | None = Field(default=None, max_length=16, examples=["SP"])
    closed_days: list[Date] = Field(default_factory=list, max_length=366, examples=[[]])
    holiday_categories: list[str] = Field(
        default_factory=list, max_length=16, examples=[["public", "optional"]]
    )


class UpcomingClosedDay(BaseModel):
    day: dt.date = Field(examples=["2027-02-08"])
    name: str | None = Field(
        description="The holiday's name; null for a closed day typed on the calendar.",
        examples=["Carnival"],
    )
    holiday: bool = Field(examples=[True])


class Calendar(BaseModel):
    id: uuid.UUID = Field(examples=["3dc75338-87d7-5da5-a3ff-9be600219748"])
    name: str = Field(examples=["Paris office hours"])
    time_zone: str = Field(examples=["Europe/Paris"])
    weekly_hours: list[str]
    country: str | None = Field(examples=["FR"])
    subdivision: str | None = Field(examples=[None])
    closed_days: list[dt.date]
    created_at: dt.datetime | None = Field(examples=["2026-03-14T09:26:53Z"])
    holiday_categories: list[str] = Field(examples=[["public"]])
    upcoming_closed_days: list[UpcomingClosedDay] = Field(
        description="The next days (up to ten, within a year) the weekly hours would open but "
        "the calendar is closed: what the SLA clocks will skip."
    )
    updated_at: dt.datetime | None = Field(examples=[None])

    @classmethod
    def from_proto(cls, c: pb.Calendar) -> Calendar:
        return cls(
            id=uuid.UUID(c.id),
            name=c.name,
            time_zone=c.time_zone,
            weekly_hours=list(c.weekly_hours),
            country=_none(c.country),
            subdivision=_none(c.subdivision),
            closed_days=[dt.date.fromisoformat(d) for d in c.closed_days],
            created_at=_time(c.create_time, c.HasField("create_time")),
            holiday_categories=list(c.holiday_categories),
            upcoming_closed_days=[
                UpcomingClosedDay(
                    day=dt.date.fromisoformat(u.day), name=_none(u.name), holiday=u.holiday
                )
                for u in c.upcoming_closed_days
            ],
            updated_at=_time(c.update_time, c.HasField("update_time")),
        )


class CalendarUpdate(BaseModel):
    calendar: Calendar
    tickets_updated: int = Field(
        description="Unfinished tickets whose deadlines were recomputed.", examples=[3]
    )

    @classmethod
    def from_proto(cls, response: pb.UpdateCalendarResponse) -> CalendarUpdate:
        return cls(
            calendar=Calendar.from_proto(response.calendar),
            tickets_updated=response.tickets_updated,
        )


class HolidayCategories(BaseModel):
    categories: list[str] = Field(examples=[["optional", "public"]])

    @classmethod
    def from_proto(cls, response: pb.ListHolidayCategoriesResponse) -> HolidayCategories:
        return cls(categories=list(response.categories))


class CalendarPage(BaseModel):
    items: list[Calendar]
    next_page_token: str | None = Field(examples=["eyJsIjoicGFnZSIsImsiOlsiMjAyNi0wMy0xNCJdfQ"])


class SlaTarget(_Request):
    priority: TicketPriority = Field(examples=["high"])
    first_response_minutes: StrictInt = Field(ge=1, le=525_600, examples=[240])
    next_response_minutes: StrictInt = Field(ge=1, le=525_600, examples=[480])
    resolution_minutes: StrictInt = Field(ge=1, le=525_600, examples=[2400])

    def to_proto(self) -> pb.SlaTarget:
        return pb.SlaTarget(
            priority=self.priority.to_proto(),
            first_response_minutes=self.first_response_minutes,
            next_response_minutes=self.next_response_minutes,
            resolution_minutes=self.resolution_minutes,
        )

    @classmethod
    def from_proto(cls, t: pb.SlaTarget) -> SlaTarget:
        return cls(
            priority=TicketPriority.from_proto(t.priority),
            first_response_minutes=t.first_response_minutes,
            next_response_minutes=t.next_response_minutes,
            resolution_minutes=t.resolution_minutes,
        )


class PlanBody(_Request):
    code: str = Field(pattern=CODE_PATTERN, examples=["STANDARD"])
    name: str = text(100, "Standard")
    calendar_id: uuid.UUID = Field(examples=["1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"])
    warning_percent: StrictInt | None = Field(default=None, ge=1, le=99, examples=[80])
    targets: list[SlaTarget] = Field(
        min_length=1,
        max_length=4,
        description="One per priority, each once (422 `priorities_missing` when one lacks).",
    )


class Plan(BaseModel):
    id: uuid.UUID = Field(examples=["ac8a613e-e0a0-5f12-90fa-c559724fd500"])
    code: str = Field(examples=["STANDARD"])
    name: str = Field(examples=["Standard"])
    calendar_id: uuid.UUID = Field(examples=["7cd3f649-8584-5da3-8151-642307a4839b"])
    warning_percent: int = Field(examples=[80])
    targets: list[SlaTarget]

    @classmethod
    def from_proto(cls, p: pb.Plan) -> Plan:
        return cls(
            id=uuid.UUID(p.id),
            code=p.code,
            name=p.name,
            calendar_id=uuid.UUID(p.calendar_id),
            warning_percent=p.warning_percent,
            targets=[SlaTarget.from_proto(t) for t in p.targets],
        )


class PlanPage(BaseModel):
    items: list[Plan]
    next_page_token: str | None = Field(examples=["eyJsIjoicGFnZSIsImsiOlsiMjAyNi0wMy0xNCJdfQ"])


class ContractBody(_Request):
    plan_id: uuid.UUID = Field(examples=["8c7b6a59-4837-4261-a5f4-e3d2c1b0a987"])
    operations_email: Email | None = Field(
        default=None,
        description="Delivery partners: where answers to their messages go by default.",
        examples=["operations@napoli.example.com"],
    )


class Contract(BaseModel):
    organisation_id: uuid.UUID = Field(examples=["0d9e8f7a-6b5c-4d3e-8f1a-2b3c4d5e6f70"])
    organisation_name: str = Field(examples=["Importações Souza Ltda"])
    organisation_kind: str = Field(examples=["erp_customer"])
    plan_id: uuid.UUID = Field(examples=["9c5ec9e5-2e15-5e9e-8139-454a8cfe3042"])
    operations_email: str | None = Field(examples=["operations@souza.example.com.br"])
    updated_at: dt.datetime | None = Field(examples=["2026-03-15T14:02:11Z"])
    tickets_moved: int | None = Field(
        default=None,
        description="On a change of plan: unfinished tickets recomputed.",
        examples=[None],
    )

    @classmethod
    def from_proto(cls, c: pb.Contract, *, moved: int | None = None) -> Contract:
        return cls(
            organisation_id=uuid.UUID(c.organisation_id),
            organisation_name=c.organisation_name,
            organisation_kind=c.organisation_kind,
            plan_id=uuid.UUID(c.plan_id),
            operations_email=_none(c.operations_email),
            updated_at=_time(c.update_time, c.HasField("update_time")),
            tickets_moved=moved,
        )


class ContractWithPlan(BaseModel):
    contract: Contract
    plan: Plan


class ContractPage(BaseModel):
    items: list[Contract]
    next_page_token: str | None = Field(examples=["eyJsIjoicGFnZSIsImsiOlsiMjAyNi0wMy0xNCJdfQ"])


# --- categories ---------------------------------------------------------------------------------


# A translation's language: a BCP 47 tag with an optional region, as browsers send them.
LOCALE_PATTERN = r"^[a-z]{2,3}(-([A-Z]{2}|[0-9]{3}))?$"
MAX_TRANSLATIONS = 12


class FaqEntryTranslation(_Request):
    """A question and its answer in another language than the original."""

    locale: str = Field(
        max_length=12,
        pattern=LOCALE_PATTERN,
        description='A BCP 47 tag: "pt-BR", "en", "fr".',
        examples=["pt-BR"],
    )
    question: str = text(500, "Como reimprimir uma nota fiscal?")
    answer: str = text(
        TEXT_CAP, "Menu Vendas > Notas fiscais > Reimprimir.", pattern=LINES_NOT_BLANK
    )

    def to_proto(self) -> pb.FaqEntryTranslation:
        return pb.FaqEntryTranslation(
            locale=self.locale, question=self.question, answer=self.answer
        )


class CategoryTranslation(_Request):
    """A category's name in another language than the original."""

    locale: str = Field(
        max_length=12,
        pattern=LOCALE_PATTERN,
        description='A BCP 47 tag: "pt-BR", "en", "fr".',
        examples=["pt-BR"],
    )
    name: str = text(100, "Faturamento e notas fiscais")

    def to_proto(self) -> pb.CategoryTranslation:
        return pb.CategoryTranslation(locale=self.locale, name=self.name)


class FaqEntryBody(_Request):
    question: str = text(500, "Comment réimprimer une facture ?")
    answer: str = text(TEXT_CAP, "Menu Ventes > Factures > Réimprimer.", pattern=LINES_NOT_BLANK)
    translations: list[FaqEntryTranslation] = Field(
        default_factory=list,
        max_length=MAX_TRANSLATIONS,
        description="The question and answer in other languages, one per language; readers "
        "of a language without one read the original.",
    )

    def to_proto(self) -> pb.FaqEntryInput:
        return pb.FaqEntryInput(
            question=self.question,
            answer=self.answer,
            translations=[t.to_proto() for t in self.translations],
        )


class CategoryBody(_Request):
    code: str = Field(pattern=CODE_PATTERN, examples=["INVOICING"])
    name: str = text(100, "Facturation")
    audience: CategoryAudience = Field(examples=["customer"])
    position: StrictInt = Field(default=0, ge=0, le=10_000, examples=[10])
    entries: list[FaqEntryBody] = Field(default_factory=list, max_length=200)
    translations: list[CategoryTranslation] = Field(
        default_factory=list,
        max_length=MAX_TRANSLATIONS,
        description="The name in other languages, one per language.",
    )


class CategoryUpdateBody(_Request):
    name: str = text(100, "Factures et paiements")
    position: StrictInt = Field(default=0, ge=0, le=10_000, examples=[20])
    entries: list[FaqEntryBody] = Field(default_factory=list, max_length=200)
    translations: list[CategoryTranslation] = Field(
        default_factory=list,
        max_length=MAX_TRANSLATIONS,
        description="The name in other languages, one per language (replaces those saved).",
    )


class FaqEntry(BaseModel):
    id: uuid.UUID
    question: str
    answer: str
    translations: list[FaqEntryTranslation] = Field(
        description="The question and answer in other languages (may be empty)."
    )


class Category(BaseModel):
    id: uuid.UUID = Field(examples=["0b8173cc-1202-5b59-ae0b-8b3339938350"])
    code: str = Field(examples=["INVOICING"])
    name: str = Field(examples=["Facturation"])
    audience: CategoryAudience
    position: int = Field(examples=[10])
    entries: list[FaqEntry]
    translations: list[CategoryTranslation] = Field(
        description="The name in other languages (may be empty)."
    )

    @classmethod
    def from_proto(cls, c: pb.Category) -> Category:
        return cls(
            id=uuid.UUID(c.id),
            code=c.code,
            name=c.name,
            audience=CategoryAudience.from_proto(c.audience),
            position=c.position,
            entries=[
                FaqEntry(
                    id=uuid.UUID(e.id),
                    question=e.question,
                    answer=e.answer,
                    translations=[
                        FaqEntryTranslation(locale=t.locale, question=t.question, answer=t.answer)
                        for t in e.translations
                    ],
                )
                for e in c.entries
            ],
            translations=[
                CategoryTranslation(locale=t.locale, name=t.name) for t in c.translations
            ],
        )


class CategoryList(BaseModel):
    items: list[Category]


class CategoryView(BaseModel):
    """A category's answers, shown before the form; `view_id` goes with the ticket or the
    "this answered my question" click."""

    category: Category
    view_id: uuid.UUID = Field(examples=["53b560ca-1fbb-5150-b1f9-5b785039748b"])
