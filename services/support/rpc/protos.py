"""Proto <-> domain mapping of the support servicer: enums both ways, rows and views to messages."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from guichet.common.v1 import common_pb2
from guichet.support.v1 import support_pb2 as pb

from services.support.domain.calendars import CalendarView
from services.support.domain.categories import CategoryView
from services.support.domain.plans import PlanView
from services.support.models import (
    Attachment,
    Audience,
    Channel,
    Clock,
    ConsultingEntry,
    Contract,
    EventKind,
    Kind,
    Message,
    Priority,
    Side,
    SlaClock,
    SlaEvent,
    SlaPause,
    Status,
    Ticket,
)

_STATUS = {
    Status.OPEN: pb.TICKET_STATUS_OPEN,
    Status.IN_PROGRESS: pb.TICKET_STATUS_IN_PROGRESS,
    Status.WAITING_ON_CUSTOMER: pb.TICKET_STATUS_WAITING_ON_CUSTOMER,
    Status.FINISHED: pb.TICKET_STATUS_FINISHED,
    Status.CANCELLED: pb.TICKET_STATUS_CANCELLED,
}
_PRIORITY = {
    Priority.LOW: pb.TICKET_PRIORITY_LOW,
    Priority.NORMAL: pb.TICKET_PRIORITY_NORMAL,
    Priority.HIGH: pb.TICKET_PRIORITY_HIGH,
    Priority.URGENT: pb.TICKET_PRIORITY_URGENT,
}
_KIND = {Kind.SUPPORT: pb.TICKET_KIND_SUPPORT, Kind.CONSULTING: pb.TICKET_KIND_CONSULTING}
_CHANNEL = {
    Channel.EXTRANET: pb.TICKET_CHANNEL_EXTRANET,
    Channel.PARTNER_MESSAGE: pb.TICKET_CHANNEL_PARTNER_MESSAGE,
}
_AUDIENCE = {
    Audience.CUSTOMER: pb.CATEGORY_AUDIENCE_CUSTOMER,
    Audience.PARTNER: pb.CATEGORY_AUDIENCE_PARTNER,
}
_SIDE = {Side.CUSTOMER: pb.AUTHOR_SIDE_CUSTOMER, Side.AGENT: pb.AUTHOR_SIDE_AGENT}
CLOCK = {
    Clock.FIRST_RESPONSE: pb.SLA_CLOCK_FIRST_RESPONSE,
    Clock.NEXT_RESPONSE: pb.SLA_CLOCK_NEXT_RESPONSE,
    Clock.RESOLUTION: pb.SLA_CLOCK_RESOLUTION,
}
_EVENT = {
    EventKind.WARNING: pb.SLA_EVENT_KIND_WARNING,
    EventKind.BREACH: pb.SLA_EVENT_KIND_BREACH,
    EventKind.PAUSE: pb.SLA_EVENT_KIND_PAUSE,
    EventKind.RESUME: pb.SLA_EVENT_KIND_RESUME,
    EventKind.RECOMPUTE: pb.SLA_EVENT_KIND_RECOMPUTE,
}


def _reverse(mapping: Mapping[Any, Any]) -> dict[int, str]:
    return {int(value): str(key.value) for key, value in mapping.items()}


STATUS_IN = _reverse(_STATUS)
PRIORITY_IN = _reverse(_PRIORITY)
KIND_IN = _reverse(_KIND)
AUDIENCE_IN = _reverse(_AUDIENCE)
CLOCK_IN = _reverse(CLOCK)
EVENT_IN = _reverse(_EVENT)


def enum_in(mapping: dict[int, str], value: int) -> str:
    """The domain's name for a proto value: "" when unspecified, a non-name when unknown."""
    if value == 0:
        return ""
    return mapping.get(value, f"#{value}")


def ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def optional_ts(moment: datetime | None) -> Timestamp | None:
    return None if moment is None else ts(moment)


def time_in(stamp: Timestamp, present: bool) -> datetime | None:
    return stamp.ToDatetime(tzinfo=UTC) if present else None


def calendar_to_proto(view: CalendarView) -> pb.Calendar:
    c = view.calendar
    return pb.Calendar(
        id=str(c.id),
        name=c.name,
        time_zone=c.time_zone,
        weekly_hours=list(c.weekly_hours),
        country=c.country,
        subdivision=c.subdivision,
        closed_days=view.closed_days,
        create_time=ts(c.created_at),
        holiday_categories=list(c.holiday_categories),
        upcoming_closed_days=[
            pb.UpcomingClosedDay(day=u.day.isoformat(), name=u.name, holiday=u.holiday)
            for u in view.upcoming
        ],
        update_time=optional_ts(c.updated_at),
    )


def plan_to_proto(view: PlanView) -> pb.Plan:
    p = view.plan
    return pb.Plan(
        id=str(p.id),
        code=p.code,
        name=p.name,
        calendar_id=str(p.calendar_id),
        warning_percent=p.warning_percent,
        targets=[
            pb.SlaTarget(
                priority=_PRIORITY[Priority(t.priority)],
                first_response_minutes=t.first_response_minutes,
                next_response_minutes=t.next_response_minutes,
                resolution_minutes=t.resolution_minutes,
            )
            for t in view.targets
        ],
        create_time=ts(p.created_at),
    )


def contract_to_proto(c: Contract) -> pb.Contract:
    return pb.Contract(
        organisation_id=str(c.organisation_id),
        organisation_name=c.organisation_name,
        organisation_kind=c.organisation_kind,
        plan_id=str(c.plan_id),
        operations_email=c.operations_email or "",
        update_time=ts(c.updated_at),
    )


def category_to_proto(view: CategoryView) -> pb.Category:
    c = view.category
    return pb.Category(
        id=str(c.id),
        code=c.code,
        name=c.name,
        audience=_AUDIENCE[Audience(c.audience)],
        position=c.position,
        entries=[
            pb.FaqEntry(
                id=str(e.id),
                question=e.question,
                answer=e.answer,
                translations=[
                    pb.FaqEntryTranslation(
                        locale=tag, question=texts["question"], answer=texts["answer"]
                    )
                    for tag, texts in sorted(e.translations.items())
                ],
            )
            for e in view.entries
        ],
        translations=[
            pb.CategoryTranslation(locale=tag, name=texts["name"])
            for tag, texts in sorted(c.translations.items())
        ],
    )


def ticket_to_proto(t: Ticket, *, category: str = "", organisation: str = "") -> pb.Ticket:
    return pb.Ticket(
        id=str(t.id),
        number=t.number,
        organisation_id=str(t.organisation_id),
        organisation_name=organisation,
        channel=_CHANNEL[Channel(t.channel)],
        category_id=str(t.category_id),
        category_name=category,
        title=t.title,
        description=t.description,
        screen_code=t.screen_code,
        example_record=t.example_record,
        priority=_PRIORITY[Priority(t.priority)],
        status=_STATUS[Status(t.status)],
        kind=_KIND[Kind(t.kind)],
        plan_id=str(t.plan_id),
        opened_by_id=t.opened_by_id,
        opened_by_name=t.opened_by_name,
        reply_to_email=t.reply_to_email or "",
        language=t.language,
        consulting_minutes=t.consulting_minutes,
        create_time=ts(t.created_at),
        update_time=ts(t.updated_at),
        first_response_time=optional_ts(t.first_response_at),
        close_time=optional_ts(t.closed_at),
        next_due_time=optional_ts(t.next_due_at),
        at_risk=t.at_risk,
        breached=t.breached,
        respond_by=optional_ts(t.respond_by),
        link=pb.TicketLink(kind=t.link_kind, id=t.link_id, label=t.link_label)
        if t.link_kind
        else None,
    )


def message_to_proto(m: Message) -> pb.TicketMessage:
    return pb.TicketMessage(
        id=str(m.id),
        author_id=m.author_id,
        author_name=m.author_name,
        side=_SIDE[Side(m.side)],
        body=m.body,
        create_time=ts(m.created_at),
    )


def attachment_to_proto(a: Attachment) -> pb.Attachment:
    return pb.Attachment(
        id=str(a.id),
        filename=a.filename,
        content_type=a.content_type,
        size_bytes=a.size_bytes,
        sha256=a.sha256,
        uploaded_by_id=a.uploaded_by_id,
        create_time=ts(a.created_at),
    )


def clock_to_proto(c: SlaClock) -> pb.SlaClockState:
    return pb.SlaClockState(
        clock=CLOCK[Clock(c.clock)],
        cycle=c.cycle,
        target_minutes=c.target_seconds // 60,
        start_time=ts(c.started_at),
        warning_time=optional_ts(c.warning_at),
        due_time=optional_ts(c.due_at),
        stop_time=optional_ts(c.stopped_at),
        stopped=c.stopped_at is not None,
        met=bool(c.met),
        elapsed_seconds=c.elapsed_seconds or 0,
    )


def event_to_proto(e: SlaEvent) -> pb.SlaEvent:
    return pb.SlaEvent(
        id=str(e.id),
        kind=_EVENT[EventKind(e.kind)],
        clock=CLOCK[Clock(e.clock)] if e.clock else pb.SLA_CLOCK_UNSPECIFIED,
        cycle=e.cycle or 0,
        time=ts(e.at),
        due_time=optional_ts(e.due_at),
        detail={key: str(value) for key, value in e.detail.items()},
    )


def pause_to_proto(p: SlaPause) -> pb.SlaPause:
    return pb.SlaPause(start_time=ts(p.started_at), end_time=optional_ts(p.ended_at))


def consulting_to_proto(e: ConsultingEntry) -> pb.ConsultingEntry:
    return pb.ConsultingEntry(
        id=str(e.id),
        minutes=e.minutes,
        note=e.note,
        agent_id=e.agent_id,
        create_time=ts(e.created_at),
    )


def page_response(token: str) -> common_pb2.PageResponse:
    return common_pb2.PageResponse(next_page_token=token)
