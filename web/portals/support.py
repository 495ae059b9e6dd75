"""The support pages (seed 004): a customer picks a category, reads its questions and answers
first (a "found it" there is a measured deflection), opens a ticket only when not found, follows
its tickets with their SLA deadlines in the customer's time zone, and answers in the ticket; the
support team works the queue (nearest deadline first), replies, changes status, priority and
kind, logs consulting time, and reads the SLA report."""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Any, cast
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from web.client.api import (
    Category,
    CategoryAudience,
    ConsultingBody,
    ReplyBody,
    StatusBody,
    Ticket,
    TicketBody,
    TicketHistory,
    TicketKind,
    TicketPriority,
    TicketStatus,
)
from web.client.transport import ApiProblem
from web.deps import CurrentVisitor
from web.flash import flash
from web.forms import TypedInputs
from web.i18n import N_, localized
from web.pages import form_values, redirect, render
from web.paging import every_item, paged
from web.problems import FormState, summary_message
from web.session import Visitor

router: APIRouter = APIRouter()

STATUSES: tuple[TicketStatus, ...] = (
    "open",
    "in_progress",
    "waiting_on_customer",
    "finished",
    "cancelled",
)
PRIORITIES: tuple[TicketPriority, ...] = ("low", "normal", "high", "urgent")
KINDS: tuple[TicketKind, ...] = ("support", "consulting")
_TICKET_FIELDS = ("category_id", "title", "description", "screen_code", "example_record")
DEFAULT_ZONE = "Europe/Paris"


_LABELLED: dict[str, tuple[str, ...]] = {
    "status": STATUSES,
    "priority": PRIORITIES,
    "kind": KINDS,
    "clock": ("first_response", "next_response", "resolution"),
    "side": ("customer", "agent"),
}


async def _render(
    visitor: Visitor, template: str, context: dict[str, Any], *, status_code: int = 200
) -> Response:
    """`render` with the words for the API's enumerations (`labels.status[...]` in templates)."""
    labels = {
        group: {value: visitor.t(f"support.{group}.{value}") for value in values}
        for group, values in _LABELLED.items()
    }
    return await render(visitor, template, {"labels": labels, **context}, status_code=status_code)


def _is_agent(me: dict[str, Any]) -> bool:
    return any(m["role"] == "support_agent" for m in me["memberships"])


async def _zones(visitor: Visitor) -> dict[str, str]:
    """Plan id → its calendar's time zone: the customer's business hours set the SLA, so its
    deadlines read in that zone. Only the support team may read calendars; for a customer the
    gateway has no zone to give, so pages use the browser's own zone (web/static/tz.js), and
    Paris until the browser has said it."""
    try:
        calendars = await every_item(visitor.api.list_calendars)
        plans = await every_item(visitor.api.list_plans)
    except ApiProblem as problem:
        if problem.status in (401, 403):
            return {}
        raise
    by_calendar = {c["id"]: c["time_zone"] for c in calendars}
    return {p["id"]: by_calendar.get(p["calendar_id"], DEFAULT_ZONE) for p in plans}


async def _in_reader_language(visitor: Visitor, tickets: list[Ticket]) -> list[Ticket]:
    """Each ticket's category named in the reader's language (the support team may have
    translated it), else as written."""
    listed = await visitor.api.list_categories()
    names = {c["id"]: localized(c, "name", visitor.locale) for c in listed["items"]}
    for ticket in tickets:
        if ticket["category_id"] in names:
            ticket["category_name"] = names[ticket["category_id"]]
    return tickets


async def _categories(visitor: Visitor) -> list[Category]:
    """The categories this person's organisation asks in (partners have their own)."""
    me = await visitor.me()
    audience: CategoryAudience = "customer"
    for membership in me["memberships"]:
        organisation = await visitor.organisation(membership["organisation_id"])
        if organisation["kind"] == "delivery_partner":
            audience = "partner"
    listed = await visitor.api.list_categories(audience=audience)
    return sorted(listed["items"], key=lambda c: c["position"])


def _options(visitor: Visitor, prefix: str, values: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(value, visitor.t(f"{prefix}.{value}")) for value in values]


@router.get("/support", response_class=HTMLResponse)
async def support_home(visitor: CurrentVisitor) -> Response:
    me = await visitor.me()
    categories = await _categories(visitor)
    return await _render(
        visitor,
        "support/home.html",
        {"categories": categories, "agent": _is_agent(dict(me))},
    )


@router.get("/support/categories/{category_id}", response_class=HTMLResponse)
async def category_page(visitor: CurrentVisitor, category_id: str) -> Response:
    """Reading the answers is recorded (a view): the ticket or the deflection refers to it."""
    await visitor.me()
    viewed = await visitor.api.view_category(category_id)
    return await _render(
        visitor,
        "support/category.html",
        {"category": viewed["category"], "view_id": viewed["view_id"], "form": FormState()},
    )


@router.post("/support/views/{view_id}/deflection", response_class=HTMLResponse)
async def deflect(visitor: CurrentVisitor, view_id: str) -> Response:
    await visitor.me()
    try:
        await visitor.api.record_deflection(view_id)
    except ApiProblem as problem:
        if problem.status >= 500 or problem.status in (401, 404):
            raise
        form = FormState.refused(visitor.locale, {}, problem, {})
        return await _render(visitor, "support/deflected.html", {"form": form}, status_code=409)
    form = FormState(done=visitor.t("support.deflected"))
    return await _render(visitor, "support/deflected.html", {"form": form})


async def _new_ticket_page(visitor: Visitor, form: FormState, status_code: int = 200) -> Response:
    categories = await _categories(visitor)
    choices = [("", visitor.t("support.choose"))] + [
        (c["id"], localized(c, "name", visitor.locale)) for c in categories
    ]
    return await _render(
        visitor,
        "support/new_ticket.html",
        {
            "form": form,
            "category_options": choices,
            "priority_options": _options(visitor, "support.priority", PRIORITIES),
            "kind_options": _options(visitor, "support.kind", KINDS),
        },
        status_code=status_code,
    )


@router.get("/support/new", response_class=HTMLResponse)
async def new_ticket_page(
    visitor: CurrentVisitor, category_id: str = "", view_id: str = ""
) -> Response:
    form = FormState(
        values={
            "category_id": category_id,
            "view_id": view_id,
            "priority": "normal",
            "kind": "support",
        }
    )
    return await _new_ticket_page(visitor, form)


@router.post("/support/tickets", response_class=HTMLResponse)
async def open_ticket(visitor: CurrentVisitor) -> Response:
    await visitor.me()
    values = await form_values(visitor.request)
    body: TicketBody = {name: values.get(name, "").strip() for name in _TICKET_FIELDS}  # type: ignore[assignment]
    if values.get("priority") in PRIORITIES:
        body["priority"] = cast(TicketPriority, values["priority"])
    if values.get("kind") in KINDS:
        body["kind"] = cast(TicketKind, values["kind"])
    if values.get("view_id"):
        body["view_id"] = values["view_id"]
    try:
        ticket = await visitor.api.open_ticket(body)
    except ApiProblem as problem:
        if problem.status >= 500 or problem.status == 401:
            raise
        form = FormState.refused(visitor.locale, values, problem, {})
        return await _new_ticket_page(visitor, form, status_code=400)
    flash(visitor.request, "support.opened", number=ticket["number"])
    return redirect(f"/support/tickets/{ticket['id']}")


@router.get("/support/tickets", response_class=HTMLResponse)
async def my_tickets(
    visitor: CurrentVisitor, q: str = "", status: str = "", page_token: str = ""
) -> Response:
    """A company's tickets in any status, with search (operators see everyone's)."""
    me = await visitor.me()
    statuses = [status] if status in STATUSES else None
    page, pager = await paged(
        visitor.request.url,
        partial(visitor.api.list_tickets, q=q or None, status=statuses),
        page_token,
    )
    zones = await _zones(visitor)
    return await _render(
        visitor,
        "support/tickets.html",
        {
            "tickets": await _in_reader_language(visitor, page["items"]),
            "pager": pager,
            "zones": zones,
            "default_zone": visitor.time_zone or DEFAULT_ZONE,
            "agent": _is_agent(dict(me)),
            "form": FormState(values={"q": q, "status": status if statuses else ""}),
            "status_options": [
                ("", visitor.t("support.all_statuses")),
                *_options(visitor, "support.status", STATUSES),
            ],
        },
    )


@router.get("/support/queue", response_class=HTMLResponse)
async def queue(visitor: CurrentVisitor, page_token: str = "") -> Response:
    await visitor.me()
    page, pager = await paged(visitor.request.url, visitor.api.list_queue, page_token)
    zones = await _zones(visitor)
    return await _render(
        visitor,
        "support/queue.html",
        {
            "tickets": await _in_reader_language(visitor, page["items"]),
            "pager": pager,
            "zones": zones,
            "default_zone": visitor.time_zone or DEFAULT_ZONE,
        },
    )


async def _ticket_page(
    visitor: Visitor,
    ticket_id: str,
    forms: dict[str, FormState] | None = None,
    status_code: int = 200,
    history: TicketHistory | None = None,
) -> Response:
    me = await visitor.me()
    if history is None:
        history = await visitor.api.get_ticket(ticket_id)
    zones = await _zones(visitor)
    zone = zones.get(history["ticket"]["plan_id"], visitor.time_zone or DEFAULT_ZONE)
    agent = _is_agent(dict(me))
    forms = forms or {}
    for name in ("reply", "status", "priority", "kind", "consulting", "attachment"):
        forms.setdefault(name, FormState())
    [ticket] = await _in_reader_language(visitor, [history["ticket"]])
    forms["status"].values.setdefault("status", ticket["status"])
    forms["priority"].values.setdefault("priority", ticket["priority"])
    forms["kind"].values.setdefault("kind", ticket["kind"])
    return await _render(
        visitor,
        "support/ticket.html",
        {
            "history": history,
            "ticket": ticket,
            "zone": zone,
            "agent": agent,
            "closed": ticket["status"] in ("finished", "cancelled"),
            "forms": forms,
            "status_options": _options(visitor, "support.status", STATUSES),
            "reply_status_options": [
                ("", visitor.t("support.reply_status_auto")),
                *_options(visitor, "support.status", STATUSES),
            ],
            "priority_options": _options(visitor, "support.priority", PRIORITIES),
            "kind_options": _options(visitor, "support.kind", KINDS),
        },
        status_code=status_code,
    )


_DONE = {
    "replied": "support.replied",
    "status": "support.status_changed",
    "priority": "support.priority_changed",
    "kind": "support.classified",
    "consulting": "support.time_logged",
    "attached": "support.attached",
    "cancelled": "support.cancelled_done",
}


@router.get("/support/tickets/{ticket_id}", response_class=HTMLResponse)
async def ticket_page(visitor: CurrentVisitor, ticket_id: str) -> Response:
    return await _ticket_page(visitor, ticket_id, {})


async def _refused(
    visitor: Visitor,
    ticket_id: str,
    form: str,
    values: dict[str, str],
    problem: ApiProblem,
    typed: TypedInputs | None = None,
) -> Response:
    """A refused form on the ticket page: the page again, that form keeping what was typed."""
    if problem.status >= 500 or problem.status in (401, 404):
        raise problem
    state = FormState.refused(visitor.locale, values, problem, {})
    if typed is not None:
        typed.explain(state, visitor.t)
    return await _ticket_page(visitor, ticket_id, {form: state}, status_code=400)


@router.post("/support/tickets/{ticket_id}/messages", response_class=HTMLResponse)
async def reply(visitor: CurrentVisitor, ticket_id: str) -> Response:
    values = await form_values(visitor.request)
    body: ReplyBody = {"body": values.get("body", "").strip()}
    if values.get("set_status") in STATUSES:
        body["set_status"] = cast(TicketStatus, values["set_status"])
    try:
        await visitor.api.reply(ticket_id, body)
    except ApiProblem as problem:
        return await _refused(visitor, ticket_id, "reply", values, problem)
    flash(visitor.request, _DONE["replied"])
    return redirect(f"/support/tickets/{ticket_id}")


@router.post("/support/tickets/{ticket_id}/status", response_class=HTMLResponse)
async def change_status(visitor: CurrentVisitor, ticket_id: str) -> Response:
    values = await form_values(visitor.request)
    body: StatusBody = {"status": cast(TicketStatus, values.get("status", ""))}
    if values.get("reason", "").strip():
        body["reason"] = values["reason"].strip()
    try:
        await visitor.api.change_ticket_status(ticket_id, body)
    except ApiProblem as problem:
        return await _refused(visitor, ticket_id, "status", values, problem)
    done = "cancelled" if body["status"] == "cancelled" else "status"
    flash(visitor.request, _DONE[done])
    return redirect(f"/support/tickets/{ticket_id}")


@router.post("/support/tickets/{ticket_id}/priority", response_class=HTMLResponse)
async def change_priority(visitor: CurrentVisitor, ticket_id: str) -> Response:
    values = await form_values(visitor.request)
    try:
        await visitor.api.change_ticket_priority(
            ticket_id, {"priority": cast(TicketPriority, values.get("priority", ""))}
        )
    except ApiProblem as problem:
        return await _refused(visitor, ticket_id, "priority", values, problem)
    flash(visitor.request, _DONE["priority"])
    return redirect(f"/support/tickets/{ticket_id}")


@router.post("/support/tickets/{ticket_id}/kind", response_class=HTMLResponse)
async def classify(visitor: CurrentVisitor, ticket_id: str) -> Response:
    values = await form_values(visitor.request)
    try:
        await visitor.api.classify(ticket_id, {"kind": cast(TicketKind, values.get("kind", ""))})
    except ApiProblem as problem:
        return await _refused(visitor, ticket_id, "kind", values, problem)
    flash(visitor.request, _DONE["kind"])
    return redirect(f"/support/tickets/{ticket_id}")


@router.post("/support/tickets/{ticket_id}/consulting-time", response_class=HTMLResponse)
async def log_consulting_time(visitor: CurrentVisitor, ticket_id: str) -> Response:
    values = await form_values(visitor.request)
    typed = TypedInputs()
    body: ConsultingBody = {"minutes": typed.number(values, "minutes", "form.expects_minutes")}
    if values.get("note", "").strip():
        body["note"] = values["note"].strip()
    try:
        await visitor.api.log_consulting_time(ticket_id, body)
    except ApiProblem as problem:
        return await _refused(visitor, ticket_id, "consulting", values, problem, typed)
    flash(visitor.request, _DONE["consulting"])
    return redirect(f"/support/tickets/{ticket_id}")


@router.post("/support/tickets/{ticket_id}/attachments", response_class=HTMLResponse)
async def attach(visitor: CurrentVisitor, ticket_id: str) -> Response:
    form = await visitor.request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        state = FormState(
            errors={"file": visitor.t("support.file_required")},
            summary=visitor.t("problem.invalid_argument"),
        )
        return await _ticket_page(visitor, ticket_id, {"attachment": state}, status_code=400)
    content = await upload.read()
    try:
        await visitor.api.add_attachment(
            ticket_id,
            content,
            upload.content_type or "application/octet-stream",
            filename=upload.filename,
        )
    except ApiProblem as problem:
        if problem.status >= 500 or problem.status in (401, 404):
            raise
        refused = problem.field_errors
        if "content_type" in refused:
            message = visitor.t("support.file_type")
        elif problem.status == 413 or "content" in refused:
            message = visitor.t("support.file_content")
        else:
            message = visitor.t("support.file_required")
        state = FormState(
            errors={"file": message}, summary=summary_message(visitor.locale, problem)
        )
        return await _ticket_page(visitor, ticket_id, {"attachment": state}, status_code=400)
    flash(visitor.request, _DONE["attached"])
    return redirect(f"/support/tickets/{ticket_id}")


@router.get("/support/tickets/{ticket_id}/attachments/{attachment_id}")
async def download(visitor: CurrentVisitor, ticket_id: str, attachment_id: str) -> Response:
    """The file as downloaded from the ticket it belongs to (its name and type come from there)."""
    await visitor.me()
    history = await visitor.api.get_ticket(ticket_id)
    found = [a for a in history["attachments"] if a["id"] == attachment_id]
    if not found:
        raise ApiProblem(404, {"type": "about:blank#not_found", "status": 404})
    content = await visitor.api.get_attachment(attachment_id)
    name = found[0]["filename"]
    return Response(
        content,
        media_type=found[0]["content_type"],
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"},
    )


@router.get("/support/reports/sla", response_class=HTMLResponse)
async def sla_report(visitor: CurrentVisitor, start: str = "", end: str = "") -> Response:
    await visitor.me()
    today = dt.datetime.now(dt.UTC).date()
    try:
        first = dt.date.fromisoformat(start) if start else today - dt.timedelta(days=30)
        last = dt.date.fromisoformat(end) if end else today + dt.timedelta(days=1)
    except ValueError:
        first, last = today - dt.timedelta(days=30), today + dt.timedelta(days=1)
    report = await visitor.api.sla_report(
        start=f"{first.isoformat()}T00:00:00Z", end=f"{last.isoformat()}T00:00:00Z"
    )
    form = FormState(values={"start": first.isoformat(), "end": last.isoformat()})
    return await _render(visitor, "support/report.html", {"report": report, "form": form})


# The FAQ's administration lives beside, in its own module; it uses this one's helpers, so it is
# imported once they exist.
from web.portals import support_admin, support_calendars  # noqa: E402

router.include_router(support_admin.router)
router.include_router(support_calendars.router)


# Message ids this module builds at run time, declared for the extraction.
RUNTIME_MESSAGES = (
    N_("problem.consulting_logged"),
    N_("problem.no_contract"),
    N_("problem.not_a_customer"),
    N_("problem.not_consulting"),
    N_("problem.ticket_closed"),
    N_("problem.ticket_opened"),
    N_("problem.transition_not_allowed"),
    N_("support.attached"),
    N_("support.cancelled_done"),
    N_("support.classified"),
    N_("support.clock.first_response"),
    N_("support.clock.next_response"),
    N_("support.clock.resolution"),
    N_("support.kind.consulting"),
    N_("support.kind.support"),
    N_("support.priority.high"),
    N_("support.priority.low"),
    N_("support.priority.normal"),
    N_("support.priority.urgent"),
    N_("support.priority_changed"),
    N_("support.replied"),
    N_("support.side.agent"),
    N_("support.side.customer"),
    N_("support.status.cancelled"),
    N_("support.status.finished"),
    N_("support.status.in_progress"),
    N_("support.status.open"),
    N_("support.status.waiting_on_customer"),
    N_("support.status_changed"),
    N_("support.time_logged"),
)
