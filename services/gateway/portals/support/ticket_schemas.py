"""The JSON shapes of support's tickets and reports, and their proto conversions."""

from __future__ import annotations

import datetime as dt
import uuid

from guichet.support.v1 import support_pb2 as pb
from pydantic import BaseModel, Field

from services.gateway.fields import LINES, LINES_NOT_BLANK, Email, StrictInt, optional_text, text
from services.gateway.portals.support.schemas import (
    EXAMPLE_CATEGORY_ID,
    TEXT_CAP,
    AuthorSide,
    SlaClock,
    SlaEventKind,
    TicketChannel,
    TicketKind,
    TicketPriority,
    TicketStatus,
    _enum_or_zero,
    _none,
    _Request,
    _time,
)

# --- tickets ------------------------------------------------------------------------------------

# The screen code of the form (support's _SCREEN_CODE, after trimming spaces).
SCREEN_CODE_PATTERN = r"^\s*[A-Za-z0-9_.\-][A-Za-z0-9_.\- ]{0,39}\s*$"


class TicketBody(_Request):
    """The extranet form. Every field is required; one answer names every missing one."""

    category_id: uuid.UUID = Field(
        examples=[EXAMPLE_CATEGORY_ID],
        description="A category of the customer form (422 `unknown_category` otherwise).",
    )
    title: str = text(200, "E-mail du contact non gravé")
    description: str = text(
        TEXT_CAP,
        "Cadastrei o cliente código 100, porém o e-mail do contato Bruno não foi gravado.",
        pattern=LINES_NOT_BLANK,
    )
    screen_code: str = Field(pattern=SCREEN_CODE_PATTERN, examples=["ATW0001"])
    example_record: str = text(500, "client 100", pattern=LINES_NOT_BLANK)
    priority: TicketPriority | None = Field(default=None, examples=["normal"])
    kind: TicketKind | None = Field(default=None, examples=["support"])
    view_id: uuid.UUID | None = Field(
        default=None,
        description="The category view that led here.",
        examples=["b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e"],
    )
    organisation_id: uuid.UUID | None = Field(
        default=None,
        description="Only when you belong to several customer organisations.",
        examples=["0d9e8f7a-6b5c-4d3e-8f1a-2b3c4d5e6f70"],
    )

    def to_proto(self) -> pb.OpenTicketRequest:
        return pb.OpenTicketRequest(
            category_id=str(self.category_id),
            title=self.title,
            description=self.description,
            screen_code=self.screen_code,
            example_record=self.example_record,
            priority=_enum_or_zero(self.priority),
            kind=_enum_or_zero(self.kind),
            view_id=str(self.view_id) if self.view_id else "",
            organisation_id=str(self.organisation_id) if self.organisation_id else "",
        )


class PartnerMessageBody(_Request):
    category_id: uuid.UUID = Field(
        examples=[EXAMPLE_CATEGORY_ID],
        description="A category of the partner form (422 `unknown_category` otherwise).",
    )
    subject: str = text(200, "Paiement de mars")
    body: str = text(
        TEXT_CAP, "Le paiement de la période du 1er au 15 mars manque.", pattern=LINES_NOT_BLANK
    )
    reply_to_email: Email | None = Field(
        default=None,
        description="Where the answer goes, when not the operations contact.",
        examples=["compta@pizzeria-napoli.fr"],
    )
    organisation_id: uuid.UUID | None = Field(
        default=None, examples=["0d9e8f7a-6b5c-4d3e-8f1a-2b3c4d5e6f70"]
    )
    view_id: uuid.UUID | None = Field(
        default=None, examples=["b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e"]
    )


class TicketLink(BaseModel):
    """What a ticket a service opened is about, e.g. the order of an out-of-stock escalation."""

    kind: str = Field(examples=["order"])
    id: str = Field(examples=["5b0e4b8c-1d2e-4f3a-9b8c-7d6e5f4a3b2c"])
    label: str = Field(examples=["NAP-1001"])


class Ticket(BaseModel):
    id: uuid.UUID = Field(examples=["f169a4b2-abdd-5975-9daa-f82864acd779"])
    number: int = Field(examples=[1042])
    organisation_id: uuid.UUID = Field(examples=["0d9e8f7a-6b5c-4d3e-8f1a-2b3c4d5e6f70"])
    organisation_name: str | None = Field(examples=["Importações Souza Ltda"])
    channel: TicketChannel
    category_id: uuid.UUID = Field(examples=["74e004cf-50ea-519a-b76e-f20852cc9ed7"])
    category_name: str | None = Field(examples=["Cadastros"])
    title: str = Field(examples=["E-mail du contact non gravé"])
    description: str = Field(
        examples=[
            "Cadastrei o cliente código 100, porém o e-mail do contato Bruno não foi gravado."
        ]
    )
    screen_code: str | None = Field(examples=["ATW0001"])
    example_record: str | None = Field(examples=["client 100"])
    priority: TicketPriority
    status: TicketStatus
    kind: TicketKind
    plan_id: uuid.UUID = Field(examples=["9c5ec9e5-2e15-5e9e-8139-454a8cfe3042"])
    opened_by_id: str = Field(examples=["6f1c2a4e-8b3d-4c5e-9f70-1a2b3c4d5e6f"])
    opened_by_name: str = Field(examples=["souza.bruno"])
    reply_to_email: str | None = Field(examples=["suporte@souza.example.com.br"])
    language: str = Field(
        description="The language the customer opened it in (BCP 47, from Accept-Language): "
        "the mails about it to the customer are written in it.",
        examples=["pt-BR"],
    )
    consulting_minutes: int = Field(examples=[0])
    created_at: dt.datetime | None = Field(examples=["2026-03-14T09:26:53Z"])
    updated_at: dt.datetime | None = Field(examples=["2026-03-15T14:02:11Z"])
    first_response_at: dt.datetime | None = Field(examples=["2026-03-14T10:05:00Z"])
    closed_at: dt.datetime | None = Field(examples=[None])
    next_due_at: dt.datetime | None = Field(examples=["2026-03-17T09:26:53Z"])
    at_risk: bool = Field(examples=[False])
    breached: bool = Field(examples=[False])
    respond_by: dt.datetime | None = Field(
        description="A deadline set by the service that opened the ticket (an order "
        "escalation's): every SLA target is due then.",
        examples=[None],
    )
    link: TicketLink | None = Field(examples=[None])

    @classmethod
    def from_proto(cls, t: pb.Ticket) -> Ticket:
        return cls(
            id=uuid.UUID(t.id),
            number=t.number,
            organisation_id=uuid.UUID(t.organisation_id),
            organisation_name=_none(t.organisation_name),
            channel=TicketChannel.from_proto(t.channel),
            category_id=uuid.UUID(t.category_id),
            category_name=_none(t.category_name),
            title=t.title,
            description=t.description,
            screen_code=_none(t.screen_code),
            example_record=_none(t.example_record),
            priority=TicketPriority.from_proto(t.priority),
            status=TicketStatus.from_proto(t.status),
            kind=TicketKind.from_proto(t.kind),
            plan_id=uuid.UUID(t.plan_id),
            opened_by_id=t.opened_by_id,
            opened_by_name=t.opened_by_name,
            reply_to_email=_none(t.reply_to_email),
            language=t.language or "fr",
            consulting_minutes=t.consulting_minutes,
            created_at=_time(t.create_time, t.HasField("create_time")),
            updated_at=_time(t.update_time, t.HasField("update_time")),
            first_response_at=_time(t.first_response_time, t.HasField("first_response_time")),
            closed_at=_time(t.close_time, t.HasField("close_time")),
            next_due_at=_time(t.next_due_time, t.HasField("next_due_time")),
            at_risk=t.at_risk,
            breached=t.breached,
            respond_by=_time(t.respond_by, t.HasField("respond_by")),
            link=TicketLink(kind=t.link.kind, id=t.link.id, label=t.link.label)
            if t.HasField("link")
            else None,
        )


class TicketPage(BaseModel):
    items: list[Ticket]
    next_page_token: str | None = Field(examples=["eyJsIjoicGFnZSIsImsiOlsiMjAyNi0wMy0xNCJdfQ"])


class TicketMessage(BaseModel):
    id: uuid.UUID
    author_id: str
    author_name: str
    side: AuthorSide
    body: str
    created_at: dt.datetime | None

    @classmethod
    def from_proto(cls, m: pb.TicketMessage) -> TicketMessage:
        return cls(
            id=uuid.UUID(m.id),
            author_id=m.author_id,
            author_name=m.author_name,
            side=AuthorSide.from_proto(m.side),
            body=m.body,
            created_at=_time(m.create_time, m.HasField("create_time")),
        )


class Attachment(BaseModel):
    id: uuid.UUID = Field(examples=["638ffb89-a0e3-58ce-8f28-7cd6bec11490"])
    filename: str = Field(examples=["capture-ATW0001.png"])
    content_type: str = Field(examples=["image/png"])
    size_bytes: int = Field(examples=[184320])
    sha256: str = Field(
        examples=["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]
    )
    uploaded_by_id: str = Field(examples=["6f1c2a4e-8b3d-4c5e-9f70-1a2b3c4d5e6f"])
    created_at: dt.datetime | None = Field(examples=["2026-03-14T09:26:53Z"])

    @classmethod
    def from_proto(cls, a: pb.Attachment) -> Attachment:
        return cls(
            id=uuid.UUID(a.id),
            filename=a.filename,
            content_type=a.content_type,
            size_bytes=a.size_bytes,
            sha256=a.sha256,
            uploaded_by_id=a.uploaded_by_id,
            created_at=_time(a.create_time, a.HasField("create_time")),
        )


class SlaClockState(BaseModel):
    clock: SlaClock
    cycle: int
    target_minutes: int
    started_at: dt.datetime | None
    warning_at: dt.datetime | None
    due_at: dt.datetime | None = Field(description="Unset while waiting on the customer.")
    stopped_at: dt.datetime | None
    met: bool | None = Field(description="Set once stopped.")
    elapsed_seconds: int | None = Field(description="Business seconds used, pauses excluded.")

    @classmethod
    def from_proto(cls, c: pb.SlaClockState) -> SlaClockState:
        return cls(
            clock=SlaClock.from_proto(c.clock),
            cycle=c.cycle,
            target_minutes=c.target_minutes,
            started_at=_time(c.start_time, c.HasField("start_time")),
            warning_at=_time(c.warning_time, c.HasField("warning_time")),
            due_at=_time(c.due_time, c.HasField("due_time")),
            stopped_at=_time(c.stop_time, c.HasField("stop_time")),
            met=c.met if c.stopped else None,
            elapsed_seconds=c.elapsed_seconds if c.stopped else None,
        )


class SlaEvent(BaseModel):
    id: uuid.UUID
    kind: SlaEventKind
    clock: SlaClock | None
    cycle: int | None
    at: dt.datetime | None
    due_at: dt.datetime | None
    detail: dict[str, str]

    @classmethod
    def from_proto(cls, e: pb.SlaEvent) -> SlaEvent:
        return cls(
            id=uuid.UUID(e.id),
            kind=SlaEventKind.from_proto(e.kind),
            clock=SlaClock.from_proto(e.clock) if e.clock else None,
            cycle=e.cycle or None,
            at=_time(e.time, e.HasField("time")),
            due_at=_time(e.due_time, e.HasField("due_time")),
            detail=dict(e.detail),
        )


class SlaPause(BaseModel):
    started_at: dt.datetime | None
    ended_at: dt.datetime | None


class ConsultingEntry(BaseModel):
    id: uuid.UUID
    minutes: int
    note: str | None
    agent_id: str
    created_at: dt.datetime | None


class TicketHistory(BaseModel):
    ticket: Ticket
    messages: list[TicketMessage]
    attachments: list[Attachment]
    clocks: list[SlaClockState]
    events: list[SlaEvent]
    pauses: list[SlaPause]
    consulting: list[ConsultingEntry]

    @classmethod
    def from_proto(cls, r: pb.GetTicketResponse) -> TicketHistory:
        return cls(
            ticket=Ticket.from_proto(r.ticket),
            messages=[TicketMessage.from_proto(m) for m in r.messages],
            attachments=[Attachment.from_proto(a) for a in r.attachments],
            clocks=[SlaClockState.from_proto(c) for c in r.clocks],
            events=[SlaEvent.from_proto(e) for e in r.events],
            pauses=[
                SlaPause(
                    started_at=_time(p.start_time, p.HasField("start_time")),
                    ended_at=_time(p.end_time, p.HasField("end_time")),
                )
                for p in r.pauses
            ],
            consulting=[
                ConsultingEntry(
                    id=uuid.UUID(e.id),
                    minutes=e.minutes,
                    note=_none(e.note),
                    agent_id=e.agent_id,
                    created_at=_time(e.create_time, e.HasField("create_time")),
                )
                for e in r.consulting
            ],
        )


class ReplyBody(_Request):
    body: str = text(TEXT_CAP, "Pouvez-vous nous envoyer une capture ?", pattern=LINES_NOT_BLANK)
    set_status: TicketStatus | None = Field(
        default=None,
        description="Agents only: the status to move to with this reply.",
        examples=["waiting_on_customer"],
    )


class Reply(BaseModel):
    ticket: Ticket
    message: TicketMessage


class StatusBody(_Request):
    status: TicketStatus = Field(examples=["cancelled"])
    reason: str | None = optional_text(500, "Doublon du chamado 1042", pattern=LINES)


class PriorityBody(_Request):
    priority: TicketPriority = Field(examples=["urgent"])


class KindBody(_Request):
    kind: TicketKind = Field(examples=["consulting"])


class ConsultingBody(_Request):
    minutes: StrictInt = Field(ge=1, le=1440, examples=[45])
    note: str | None = optional_text(
        500, "Análise do cadastro de clientes com o Bruno", pattern=LINES
    )


# --- reports ------------------------------------------------------------------------------------


class TargetReport(BaseModel):
    clock: SlaClock
    measured: int
    within: int
    breached: int
    within_percent: float


class PlanReport(BaseModel):
    plan_id: uuid.UUID
    plan_code: str
    plan_name: str
    tickets_opened: int
    targets: list[TargetReport]
    breaches: int
    warnings: int


class CategoryDeflection(BaseModel):
    category_id: uuid.UUID
    category_name: str
    views: int
    deflections: int
    tickets: int


class ConsultingTime(BaseModel):
    organisation_id: uuid.UUID
    organisation_name: str
    plan_id: uuid.UUID
    tickets: int
    minutes: int = Field(description="Billable.")


class SlaReport(BaseModel):
    plans: list[PlanReport]
    deflections: list[CategoryDeflection]
    consulting: list[ConsultingTime]

    @classmethod
    def from_proto(cls, r: pb.GetSlaReportResponse) -> SlaReport:
        return cls(
            plans=[
                PlanReport(
                    plan_id=uuid.UUID(p.plan_id),
                    plan_code=p.plan_code,
                    plan_name=p.plan_name,
                    tickets_opened=p.tickets_opened,
                    targets=[
                        TargetReport(
                            clock=SlaClock.from_proto(t.clock),
                            measured=t.measured,
                            within=t.within,
                            breached=t.breached,
                            within_percent=t.within_percent,
                        )
                        for t in p.targets
                    ],
                    breaches=p.breaches,
                    warnings=p.warnings,
                )
                for p in r.plans
            ],
            deflections=[
                CategoryDeflection(
                    category_id=uuid.UUID(d.category_id),
                    category_name=d.category_name,
                    views=d.views,
                    deflections=d.deflections,
                    tickets=d.tickets,
                )
                for d in r.deflections
            ],
            consulting=[
                ConsultingTime(
                    organisation_id=uuid.UUID(c.organisation_id),
                    organisation_name=c.organisation_name,
                    plan_id=uuid.UUID(c.plan_id),
                    tickets=c.tickets,
                    minutes=c.minutes,
                )
                for c in r.consulting
            ],
        )
