"""The support pages (seed 004): a customer picks a category, reads its questions and answers
first (a "found it" there is a measured deflection), opens a ticket only when not found, follows
its tickets with their SLA deadlines in the customer's time zone, and answers in the ticket; the
support team works the queue (nearest deadline first), replies, changes status, priority and
kind, logs consulting time, and reads the SLA report."""

from __future__ import annotations

import datetime as dt
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
from web.i18n import register
from web.pages import form_values, redirect, render
from web.problems import FormState, summary_message
from web.session import Visitor

MESSAGES: dict[str, tuple[str, str]] = {
    "support.title": ("Assistance", "Support"),
    "support.intro": (
        "Choisissez la catégorie de votre question : nous vous montrons d'abord les réponses "
        "déjà connues.",
        "Choose your question's category: the answers we already know come first.",
    ),
    "support.categories": ("Catégories", "Categories"),
    "support.no_categories": ("Aucune catégorie pour l'instant.", "No category yet."),
    "support.questions": ("{n} question(s) et réponse(s)", "{n} question(s) and answer(s)"),
    "support.my_tickets": ("Mes tickets", "My tickets"),
    "support.queue": ("File des tickets", "Ticket queue"),
    "support.report": ("Rapport SLA", "SLA report"),
    "support.faq_title": ("Questions fréquentes : {name}", "Frequently asked: {name}"),
    "support.faq_intro": (
        "Votre réponse est peut-être déjà ici. Lisez ces questions avant d'ouvrir un ticket.",
        "Your answer may already be here. Read these questions before opening a ticket.",
    ),
    "support.faq_empty": (
        "Pas encore de questions pour cette catégorie.",
        "No questions for this category yet.",
    ),
    "support.deflect": ("Ma réponse était dans la FAQ", "My answer was in the FAQ"),
    "support.deflected": (
        "Merci ! Nous sommes heureux que la FAQ vous ait aidé : aucun ticket n'a été ouvert.",
        "Thank you! Glad the FAQ helped: no ticket was opened.",
    ),
    "support.not_found": (
        "Vous n'avez pas trouvé la réponse ? Cliquez ici pour ouvrir un ticket",
        "Did not find the answer? Click here to open a ticket",
    ),
    "support.back_home": ("Retour à l'assistance", "Back to support"),
    "support.new_title": ("Ouvrir un ticket", "Open a ticket"),
    "support.new_intro": (
        "Tous les champs sont obligatoires. Soyez clair et concis ; indiquez toujours le code de "
        "l'écran et un exemple d'enregistrement qui pose problème.",
        "Every field is required. Be clear and short; always give the screen code and an "
        "example record that shows the problem.",
    ),
    "support.new_example": (
        "Exemple : « J'ai créé le client code 100 via l'écran ATW0001, mais l'e-mail du contact "
        "Bruno n'a pas été enregistré. »",
        "Example: “I created customer 100 through screen ATW0001, but contact Bruno's e-mail "
        "was not saved.”",
    ),
    "support.category": ("Catégorie", "Category"),
    "support.choose": ("— Choisir —", "— Choose —"),
    "support.ticket_title": ("Titre court", "Short title"),
    "support.description": ("Description", "Description"),
    "support.screen_code": ("Code de l'écran", "Screen code"),
    "support.screen_code_help": ("Par exemple ATW0001.", "For example ATW0001."),
    "support.example_record": ("Exemple d'enregistrement", "Example record"),
    "support.example_record_help": (
        "Par exemple : client 100, contact Bruno.",
        "For example: customer 100, contact Bruno.",
    ),
    "support.priority": ("Priorité", "Priority"),
    "support.kind": ("Nature", "Kind"),
    "support.kind_help": (
        "Support : comment fonctionne le produit. Conseil : analyse de votre situation "
        "(facturable).",
        "Support: how the product works. Consulting: analysis of your situation (billable).",
    ),
    "support.open": ("Ouvrir le ticket", "Open the ticket"),
    "support.opened": (
        "Ticket n° {number} ouvert. L'équipe d'assistance le voit déjà.",
        "Ticket #{number} opened. The support team already sees it.",
    ),
    "support.search": ("Rechercher", "Search"),
    "support.search_label": ("Mots-clés", "Keywords"),
    "support.status_filter": ("Statut", "Status"),
    "support.all_statuses": ("Tous les statuts", "Every status"),
    "support.number": ("N°", "No."),
    "support.organisation": ("Organisation", "Organisation"),
    "support.status": ("Statut", "Status"),
    "support.sla_due": ("Échéance SLA", "SLA due"),
    "support.opened_at": ("Ouvert le", "Opened"),
    "support.no_tickets": ("Aucun ticket.", "No ticket."),
    "support.next_page": ("Page suivante", "Next page"),
    "support.zone_note": ("Heures affichées dans le fuseau {zone}.", "Times shown in {zone}."),
    "support.paused": ("En pause (en attente du client)", "Paused (waiting on the customer)"),
    "support.reply_to": ("Réponse envoyée à", "Answer sent to"),
    "support.at_risk": ("Échéance proche", "Due soon"),
    "support.breached": ("SLA dépassé", "SLA breached"),
    "support.ticket_heading": ("Ticket n° {number} : {title}", "Ticket #{number}: {title}"),
    "support.opened_by": ("Ouvert par", "Opened by"),
    "support.consulting_minutes": ("Temps de conseil", "Consulting time"),
    "support.minutes_value": ("{n} min", "{n} min"),
    "support.clocks": ("Délais SLA", "SLA clocks"),
    "support.clock": ("Délai", "Clock"),
    "support.due_at": ("Échéance", "Due"),
    "support.warning_at": ("Alerte", "Warning"),
    "support.clock_state": ("État", "State"),
    "support.met": ("Tenu", "Met"),
    "support.missed": ("Manqué", "Missed"),
    "support.running": ("En cours", "Running"),
    "support.pauses": ("Pauses (en attente du client)", "Pauses (waiting on the customer)"),
    "support.pause_from": ("Début", "From"),
    "support.pause_to": ("Fin", "To"),
    "support.history": ("Historique", "History"),
    "support.no_messages": ("Pas encore de message.", "No message yet."),
    "support.side.customer": ("Client", "Customer"),
    "support.side.agent": ("Équipe d'assistance", "Support team"),
    "support.reply": ("Réponse", "Reply"),
    "support.send_reply": ("Répondre", "Reply"),
    "support.replied": ("Réponse enregistrée.", "Reply saved."),
    "support.reply_status": ("Statut après la réponse", "Status after the reply"),
    "support.reply_status_auto": ("Automatique", "Automatic"),
    "support.closed_note": (
        "Ce ticket est clos : pour une nouvelle question, ouvrez un nouveau ticket.",
        "This ticket is closed: for a new question, open a new ticket.",
    ),
    "support.attachments": ("Pièces jointes", "Attachments"),
    "support.no_attachments": ("Aucune pièce jointe.", "No attachment."),
    "support.file": ("Fichier", "File"),
    "support.attach": ("Joindre le fichier", "Attach the file"),
    "support.attached": ("Fichier joint.", "File attached."),
    "support.file_required": ("Choisissez un fichier.", "Choose a file."),
    "support.file_type": (
        "Ce type de fichier n'est pas accepté : PDF, PNG, JPEG, GIF, texte, CSV, XLSX ou DOCX.",
        "This file type is not accepted: PDF, PNG, JPEG, GIF, text, CSV, XLSX or DOCX.",
    ),
    "support.file_content": (
        "Le fichier est vide, trop volumineux, ou son contenu ne correspond pas à son type.",
        "The file is empty, too large, or its content does not match its type.",
    ),
    "support.agent_panel": ("Traitement (équipe d'assistance)", "Handling (support team)"),
    "support.change_status": ("Changer le statut", "Change the status"),
    "support.reason": ("Motif (facultatif)", "Reason (optional)"),
    "support.status_changed": ("Statut changé.", "Status changed."),
    "support.change_priority": ("Changer la priorité", "Change the priority"),
    "support.priority_changed": (
        "Priorité changée ; les échéances SLA suivent.",
        "Priority changed; the SLA deadlines follow.",
    ),
    "support.classify": ("Classer", "Classify"),
    "support.classified": ("Nature changée.", "Kind changed."),
    "support.minutes": ("Minutes", "Minutes"),
    "support.note": ("Note (facultative)", "Note (optional)"),
    "support.log_time": ("Enregistrer le temps de conseil", "Log consulting time"),
    "support.time_logged": ("Temps de conseil enregistré.", "Consulting time logged."),
    "support.cancel_ticket": ("Annuler ce ticket", "Cancel this ticket"),
    "support.cancel_help": (
        "Votre question est résolue ? Annulez le ticket : il reste dans votre liste.",
        "Question solved? Cancel the ticket: it stays in your list.",
    ),
    "support.cancelled_done": ("Ticket annulé.", "Ticket cancelled."),
    "support.queue_intro": (
        "Tickets non terminés, échéance SLA la plus proche en premier.",
        "Unfinished tickets, nearest SLA deadline first.",
    ),
    "support.report_intro": (
        "Par plan : part des délais tenus, dépassements, déviations par la FAQ et temps de "
        "conseil facturable.",
        "Per plan: share of clocks met, breaches, FAQ deflections and billable consulting time.",
    ),
    "support.start": ("Du", "From"),
    "support.end": ("Au (exclu)", "To (excluded)"),
    "support.show": ("Afficher", "Show"),
    "support.plan": ("Plan", "Plan"),
    "support.tickets_opened": ("Tickets ouverts", "Tickets opened"),
    "support.within": ("Dans les délais", "Within SLA"),
    "support.breaches": ("Dépassements", "Breaches"),
    "support.warnings": ("Alertes", "Warnings"),
    "support.deflections": ("Déviations par la FAQ", "FAQ deflections"),
    "support.views": ("Consultations", "Views"),
    "support.tickets": ("Tickets", "Tickets"),
    "support.consulting": ("Temps de conseil", "Consulting time"),
    "support.status.open": ("Ouvert", "Open"),
    "support.status.in_progress": ("En cours", "In progress"),
    "support.status.waiting_on_customer": ("En attente du client", "Waiting on customer"),
    "support.status.finished": ("Terminé", "Finished"),
    "support.status.cancelled": ("Annulé", "Cancelled"),
    "support.priority.low": ("Basse", "Low"),
    "support.priority.normal": ("Normale", "Normal"),
    "support.priority.high": ("Haute", "High"),
    "support.priority.urgent": ("Urgente", "Urgent"),
    "support.kind.support": ("Support", "Support"),
    "support.kind.consulting": ("Conseil (facturable)", "Consulting (billable)"),
    "support.clock.first_response": ("Première réponse", "First response"),
    "support.clock.next_response": ("Réponse suivante", "Next response"),
    "support.clock.resolution": ("Résolution", "Resolution"),
    "problem.ticket_closed": (
        "Ce ticket est clos : ouvrez un nouveau ticket.",
        "This ticket is closed: open a new ticket.",
    ),
    "problem.ticket_opened": (
        "Un ticket a déjà été ouvert après cette lecture de la FAQ.",
        "A ticket was already opened after this FAQ reading.",
    ),
    "problem.transition_not_allowed": (
        "Ce changement de statut n'est pas permis.",
        "This status change is not allowed.",
    ),
    "problem.consulting_logged": (
        "Du temps de conseil est enregistré sur ce ticket : il reste « conseil ».",
        "Consulting time is logged on this ticket: it stays consulting.",
    ),
    "problem.not_consulting": (
        "Le temps se saisit sur les tickets de conseil : classez d'abord le ticket.",
        "Time is logged on consulting tickets only: classify the ticket first.",
    ),
    "problem.no_contract": (
        "Votre organisation n'a pas de contrat d'assistance : contactez l'équipe d'assistance.",
        "Your organisation has no support contract: contact the support team.",
    ),
    "problem.not_a_customer": (
        "Cette organisation ne peut pas avoir de contrat d'assistance.",
        "This organisation cannot hold a support contract.",
    ),
}
register(MESSAGES)

# Added for the portal's journeys (issue 25); moved to the catalogs with the rest.
register(
    {
        "support.minutes_help": (
            "Un nombre de minutes, par exemple 90 pour 1 h 30.",
            "A number of minutes, for example 90 for 1 h 30.",
        ),
    }
)

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
PAGE_SIZE = 50


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
        calendars = await visitor.api.list_calendars(page_size=500)
        plans = await visitor.api.list_plans(page_size=500)
    except ApiProblem as problem:
        if problem.status in (401, 403):
            return {}
        raise
    by_calendar = {c["id"]: c["time_zone"] for c in calendars["items"]}
    return {p["id"]: by_calendar.get(p["calendar_id"], DEFAULT_ZONE) for p in plans["items"]}


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
    choices = [("", visitor.t("support.choose"))] + [(c["id"], c["name"]) for c in categories]
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
    page = await visitor.api.list_tickets(
        q=q or None, status=statuses, page_size=PAGE_SIZE, page_token=page_token or None
    )
    zones = await _zones(visitor)
    return await _render(
        visitor,
        "support/tickets.html",
        {
            "tickets": page["items"],
            "next_page_token": page["next_page_token"],
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
    page = await visitor.api.list_queue(page_size=PAGE_SIZE, page_token=page_token or None)
    zones = await _zones(visitor)
    return await _render(
        visitor,
        "support/queue.html",
        {
            "tickets": page["items"],
            "next_page_token": page["next_page_token"],
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
    ticket = history["ticket"]
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
from web.portals import support_admin  # noqa: E402

router.include_router(support_admin.router)
