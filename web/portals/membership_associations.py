"""An association's pages (seed 002): members and their yearly fees, trainings and their
trainees (validation, e-mail correction), the public trainings a civilian registers for (again
for the same type cancels the earlier one, unless it is validated), first-aid coverage ("DPS")
requests, and the client records with the duplicates review: a merge previewed, then made,
then the emptied record deleted as a separate, deliberate step."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from web.client.api import (
    CoverageBody,
    FeeBody,
    MemberBody,
    Organiser,
    SchemasMembershipRegistrationBody,
    Trainee,
    Training,
    TrainingBody,
)
from web.client.transport import ApiProblem
from web.deps import CurrentVisitor
from web.flash import flash
from web.forms import TypedInputs
from web.i18n import register
from web.pages import form_values, redirect, render
from web.portals.membership_common import nested, refused
from web.problems import FormState
from web.session import Visitor

MESSAGES = {
    "association.title": ("Association", "Association"),
    "association.tabs": ("Sections de l'association", "Association sections"),
    "association.tab_members": ("Adhérents et cotisations", "Members and fees"),
    "association.tab_trainings": ("Formations", "Trainings"),
    "association.tab_public": ("Formations publiques", "Public trainings"),
    "association.tab_dps": ("Demandes de DPS", "DPS requests"),
    "association.tab_records": ("Fiches clients", "Client records"),
    "association.tab_duplicates": ("Outil de fusion fiche client", "Client-record merge tool"),
    "association.tab_audit": ("Journal des fusions", "Merge log"),
    "association.member_home": (
        "Bienvenue dans votre espace adhérent.",
        "Welcome to your member area.",
    ),
    "association.members": ("Adhérents", "Members"),
    "association.members_none": ("Aucun adhérent.", "No member."),
    "association.fee_filter": ("Cotisation {year}", "Fee {year}"),
    "association.fee_all": ("Tous", "All"),
    "association.fee_paid": ("Payée", "Paid"),
    "association.fee_unpaid": ("Non payée", "Unpaid"),
    "association.filter": ("Filtrer", "Filter"),
    "association.first_name": ("Prénom", "First name"),
    "association.last_name": ("Nom", "Last name"),
    "association.email": ("Adresse e-mail", "E-mail address"),
    "association.joined_on": ("Adhésion le", "Joined on"),
    "association.fees": ("Cotisations", "Fees"),
    "association.add_member": ("Ajouter un adhérent", "Add a member"),
    "association.member_added": ("Adhérent ajouté.", "Member added."),
    "association.record_fee": ("Enregistrer la cotisation", "Record the fee"),
    "association.fee_year": ("Année", "Year"),
    "association.fee_amount": ("Montant (€)", "Amount (€)"),
    "association.fee_paid_on": ("Payée le", "Paid on"),
    "association.fee_recorded": ("Cotisation enregistrée.", "Fee recorded."),
    "association.trainings": ("Formations", "Trainings"),
    "association.trainings_none": ("Aucune formation.", "No training."),
    "association.training_type": ("Type de formation", "Training type"),
    "association.training_title": ("Intitulé", "Title"),
    "association.start_time": ("Début", "Start"),
    "association.location": ("Lieu", "Location"),
    "association.capacity": ("Places", "Seats"),
    "association.seats": ("Inscrits", "Registered"),
    "association.public": ("Publique", "Public"),
    "association.public_yes": ("Oui", "Yes"),
    "association.public_no": ("Non", "No"),
    "association.create_training": ("Créer une formation", "Create a training"),
    "association.training_created": ("Formation créée.", "Training created."),
    "association.trainees": ("Liste des stagiaires", "Trainees"),
    "association.trainees_none": ("Aucun stagiaire.", "No trainee."),
    "association.trainee": ("Stagiaire", "Trainee"),
    "association.status": ("Statut", "Status"),
    "association.client": ("Client", "Client"),
    "association.validate": ("Valider", "Validate"),
    "association.validated": ("Inscription validée.", "Registration validated."),
    "association.correct_email": ("Corriger l'e-mail", "Correct the e-mail"),
    "association.email_corrected": (
        "Adresse corrigée : les prochains e-mails partiront à cette adresse (ceux déjà "
        "envoyés ne sont pas renvoyés).",
        "Address corrected: the next e-mails go there (those already sent are not re-sent).",
    ),
    "association.email_note": (
        "Les e-mails non reçus ne peuvent pas être renvoyés.",
        "E-mails not received cannot be sent again.",
    ),
    "association.reg_registered": ("Inscrit", "Registered"),
    "association.reg_validated": ("Validée", "Validated"),
    "association.reg_cancelled": ("Annulée", "Cancelled"),
    "association.public_title": ("Formations publiques", "Public trainings"),
    "association.public_none": ("Aucune formation publique à venir.", "No upcoming training."),
    "association.register": ("S'inscrire", "Register"),
    "association.register_title": ("Inscription : {title}", "Registration: {title}"),
    "association.birth_date": ("Date de naissance", "Birth date"),
    "association.phone": ("Téléphone", "Phone"),
    "association.company_name": ("Raison sociale (facultatif)", "Company name (optional)"),
    "association.siret": ("Numéro SIRET (facultatif)", "SIRET number (optional)"),
    "association.client_number": ("Numéro client (si vous en avez un)", "Client number (if any)"),
    "association.client_number_help": (
        "Indiquez le numéro client reçu par e-mail lors d'une précédente demande : "
        "cela évite les fiches en double.",
        "Give the client number mailed to you with an earlier request: it avoids duplicates.",
    ),
    "association.registration_done": (
        "Inscription enregistrée. Un e-mail de confirmation avec votre numéro client {number} "
        "vous a été envoyé.",
        "Registration recorded. A confirmation e-mail with your client number {number} is on "
        "its way.",
    ),
    "association.earlier_cancelled": (
        "Votre inscription précédente à une formation du même type a été annulée.",
        "Your earlier registration for a training of the same type was cancelled.",
    ),
    "association.dps_title": ("Demande de DPS", "First-aid coverage (DPS) request"),
    "association.dps_list": ("Demandes reçues", "Requests received"),
    "association.dps_none": ("Aucune demande.", "No request."),
    "association.event_name": ("Événement", "Event"),
    "association.event_date": ("Date de l'événement", "Event date"),
    "association.expected_attendance": ("Public attendu", "Expected attendance"),
    "association.organiser": ("Organisateur", "Organiser"),
    "association.contact_name": ("Nom du contact", "Contact name"),
    "association.send_dps": ("Envoyer la demande", "Send the request"),
    "association.dps_done": (
        "Demande enregistrée. Votre numéro client {number} vous a été envoyé par e-mail.",
        "Request recorded. Your client number {number} was mailed to you.",
    ),
    "association.records": ("Fiches clients", "Client records"),
    "association.records_none": ("Aucune fiche.", "No record."),
    "association.search_name": ("Raison sociale", "Company name"),
    "association.search": ("Rechercher", "Search"),
    "association.number": ("Numéro client", "Client number"),
    "association.events": ("Événements", "Events"),
    "association.events_count": (
        "{registrations} inscription(s), {coverage} DPS",
        "{registrations} registration(s), {coverage} DPS",
    ),
    "association.next_page": ("Page suivante", "Next page"),
    "association.record_title": ("Fiche client n° {number}", "Client record no. {number}"),
    "association.duplicates": ("Doublons de cette fiche", "Duplicates of this record"),
    "association.duplicates_none": ("Aucun doublon détecté.", "No duplicate found."),
    "association.kind": ("Type de doublon", "Kind"),
    "association.kind_certain": ("Doublon certain", "Certain duplicate"),
    "association.kind_probable": ("Doublon probable", "Probable duplicate"),
    "association.target": ("Numéro client cible", "Target client number"),
    "association.preview": ("Aperçu de la fusion", "Preview the merge"),
    "association.preview_text": (
        "Fusionner la fiche n° {source} vers la fiche n° {target} déplacera {registrations} "
        "inscription(s) et {coverage} demande(s) de DPS.",
        "Merging record no. {source} into record no. {target} moves {registrations} "
        "registration(s) and {coverage} DPS request(s).",
    ),
    "association.merge": ("Fusionner", "Merge"),
    "association.merged": (
        "Fusion faite : {registrations} inscription(s) et {coverage} demande(s) de DPS "
        "rattachées à la fiche n° {target}. Vous pouvez maintenant supprimer cette fiche.",
        "Merged: {registrations} registration(s) and {coverage} DPS request(s) moved to record "
        "no. {target}. You may now delete this record.",
    ),
    "association.merged_into": (
        "Cette fiche a été fusionnée dans une autre fiche.",
        "This record was merged into another record.",
    ),
    "association.delete_title": ("Supprimer la fiche", "Delete the record"),
    "association.delete_help": (
        "Cette opération est irrémédiable. Tapez SUPPRIMER pour confirmer.",
        "This cannot be undone. Type SUPPRIMER to confirm.",
    ),
    "association.confirmation": ("Confirmation", "Confirmation"),
    "association.delete": ("Supprimer définitivement", "Delete for good"),
    "association.deleted": ("Fiche client supprimée.", "Client record deleted."),
    "association.confirm_mismatch": (
        "Tapez SUPPRIMER pour confirmer.",
        "Type SUPPRIMER to confirm.",
    ),
    "association.duplicates_title": ("Outil de fusion fiche client", "Client-record merge tool"),
    "association.totals": (
        "{records} fiches : {certain} groupes de doublons certains, {probable} groupes de "
        "doublons probables ({ms} ms).",
        "{records} records: {certain} groups of certain duplicates, {probable} groups of "
        "probable duplicates ({ms} ms).",
    ),
    "association.kind_all": ("Tous", "All"),
    "association.group": ("Groupe", "Group"),
    "association.merge_interface": ("Interface de fusion", "Merge screen"),
    "association.audit_title": ("Journal des fusions et suppressions", "Merges and deletions"),
    "association.audit_none": ("Aucune fusion pour l'instant.", "No merge so far."),
    "association.audit_event": ("Opération", "Operation"),
    "association.audit_when": ("Date", "When"),
    "association.audit_record": ("Fiche", "Record"),
    "association.audit_target": ("Fiche cible", "Target record"),
}
register(MESSAGES)

# Added for the precomputed duplicates review (issue 25); moved to the catalogs with the rest.
register(
    {
        "association.totals_stored": (
            "{records} fiches : {certain} groupes de doublons certains, {probable} groupes de "
            "doublons probables.",
            "{records} records: {certain} groups of certain duplicates, {probable} groups of "
            "probable duplicates.",
        ),
        "association.report_as_of": ("Analyse du {when}.", "Analysed on {when}."),
        "association.report_updating": (
            "Des fiches ont changé depuis : la liste se met à jour dans quelques secondes "
            "(rechargez la page).",
            "Records changed since: the list updates within seconds (reload the page).",
        ),
        "association.report_first": (
            "Première recherche des doublons en cours : rechargez la page dans quelques secondes.",
            "First search for duplicates under way: reload the page in a few seconds.",
        ),
    }
)

router = APIRouter()

_DONE = {
    "member": "association.member_added",
    "fee": "association.fee_recorded",
    "training": "association.training_created",
    "validated": "association.validated",
    "email": "association.email_corrected",
    "deleted": "association.deleted",
}


def keep(problem: ApiProblem) -> None:
    """Re-raise what is not a form's business: the app's error page says it."""
    if problem.status >= 500 or problem.status in (401, 403, 404):
        raise problem


async def _name(visitor: Visitor, association_id: str) -> str:
    """The association's name for the heading; public pages may not be allowed to read it."""
    if not visitor.signed_in:
        return ""
    try:
        return (await visitor.organisation(association_id))["name"]
    except ApiProblem:
        return ""


async def portal_page(
    visitor: Visitor,
    association_id: str,
    template: str,
    tab: str,
    context: dict[str, Any],
    status_code: int = 200,
) -> Response:
    page = {
        "association_id": association_id,
        "association_name": await _name(visitor, association_id),
        "tab": tab,
        "is_admin": await _is_admin(visitor, association_id),
        **context,
    }
    return await render(visitor, f"membership/{template}.html", page, status_code=status_code)


async def _is_admin(visitor: Visitor, association_id: str) -> bool:
    """Whether to show the administration tabs (a member or a civilian would only meet
    refusals behind them); the service still decides every call."""
    if not visitor.signed_in:
        return False
    me = await visitor.me()
    return any(
        m["organisation_id"] == association_id and m["role"] == "association_admin"
        for m in me["memberships"]
    )


# Members and fees ---------------------------------------------------------------------------


async def _members_page(
    visitor: Visitor,
    association_id: str,
    form: FormState,
    fee: str = "",
    fee_form: FormState | None = None,
    fee_for: str = "",
    status_code: int = 200,
) -> Response:
    year = datetime.now(UTC).year
    members = await visitor.api.list_association_members(
        association_id,
        fee_year=year,
        fee="paid" if fee == "paid" else "unpaid" if fee == "unpaid" else None,
        page_size=100,
    )
    context = {
        "members": members["items"],
        "year": year,
        "fee": fee,
        "form": form,
        "fee_form": fee_form or FormState(values={"year": str(year)}),
        "fee_for": fee_for,
    }
    return await portal_page(visitor, association_id, "members", "members", context, status_code)


@router.get("/associations/{association_id}", response_class=HTMLResponse)
async def association_page(visitor: CurrentVisitor, association_id: str, fee: str = "") -> Response:
    """An administrator's entry is the members list; a member's, the public trainings."""
    await visitor.me()
    try:
        return await _members_page(visitor, association_id, FormState(), fee)
    except ApiProblem as problem:
        if problem.status != 403:
            raise
    trainings = await visitor.api.list_public_trainings(association_id, page_size=50)
    context = {"trainings": trainings["items"], "member_view": True}
    return await portal_page(visitor, association_id, "public_trainings", "public", context)


@router.post("/associations/{association_id}/members", response_class=HTMLResponse)
async def add_member(visitor: CurrentVisitor, association_id: str) -> Response:
    values = await form_values(visitor.request)
    body: MemberBody = {
        "first_name": values.get("first_name", "").strip(),
        "last_name": values.get("last_name", "").strip(),
        "email": values.get("email", "").strip(),
    }
    if values.get("joined_on"):
        body["joined_on"] = values["joined_on"]
    try:
        await visitor.api.add_member(association_id, body)
    except ApiProblem as problem:
        keep(problem)
        form = refused(visitor.locale, values, problem)
        return await _members_page(visitor, association_id, form, status_code=400)
    flash(visitor.request, _DONE["member"])
    return redirect(f"/associations/{association_id}")


@router.post("/associations/{association_id}/members/{member_id}/fees", response_class=HTMLResponse)
async def record_fee(visitor: CurrentVisitor, association_id: str, member_id: str) -> Response:
    values = await form_values(visitor.request)
    body: dict[str, Any] = {}
    typed = TypedInputs()
    year = typed.number(values, "year", "form.expects_year")
    amount = typed.cents(values, "amount", "form.expects_amount")
    if year is not None:
        body["year"] = year
    if amount is not None:
        body["amount_cents"] = amount
    if values.get("paid_on"):
        body["paid_on"] = values["paid_on"]
    try:
        await visitor.api.record_fee(association_id, member_id, cast("FeeBody", body))
    except ApiProblem as problem:
        keep(problem)
        fee_form = typed.explain(
            refused(visitor.locale, values, problem, {"amount_cents": "amount"}), visitor.t
        )
        return await _members_page(
            visitor,
            association_id,
            FormState(summary=fee_form.summary),
            fee_form=fee_form,
            fee_for=member_id,
            status_code=400,
        )
    flash(visitor.request, _DONE["fee"])
    return redirect(f"/associations/{association_id}")


# Trainings ---------------------------------------------------------------------------------


async def _trainings_page(
    visitor: Visitor, association_id: str, form: FormState, status_code: int = 200
) -> Response:
    trainings = await visitor.api.list_trainings(association_id, page_size=100)
    context = {"trainings": trainings["items"], "form": form}
    return await portal_page(
        visitor, association_id, "trainings", "trainings", context, status_code
    )


@router.get("/associations/{association_id}/trainings", response_class=HTMLResponse)
async def trainings_page(visitor: CurrentVisitor, association_id: str) -> Response:
    await visitor.me()
    form = FormState(values={"capacity": "10", "public": "on"})
    return await _trainings_page(visitor, association_id, form)


def _instant(local: str, zone: str = "Europe/Paris") -> str:
    """A datetime-local input (the association's wall clock) as an RFC 3339 instant."""
    try:
        moment = datetime.fromisoformat(local)
    except ValueError:
        return local
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment.isoformat()


@router.post("/associations/{association_id}/trainings", response_class=HTMLResponse)
async def create_training(visitor: CurrentVisitor, association_id: str) -> Response:
    values = await form_values(visitor.request)
    body: dict[str, Any] = {
        "training_type": values.get("training_type", "").strip(),
        "title": values.get("title", "").strip(),
        "location": values.get("location", "").strip(),
        "public": values.get("public") == "on",
    }
    if values.get("start_time"):
        body["start_time"] = _instant(values["start_time"])
    typed = TypedInputs()
    capacity = typed.number(values, "capacity", "form.expects_whole")
    if capacity is not None:
        body["capacity"] = capacity
    try:
        training = await visitor.api.create_training(association_id, cast("TrainingBody", body))
    except ApiProblem as problem:
        keep(problem)
        form = typed.explain(refused(visitor.locale, values, problem), visitor.t)
        return await _trainings_page(visitor, association_id, form, status_code=400)
    flash(visitor.request, _DONE["training"])
    return redirect(f"/associations/{association_id}/trainings/{training['id']}")


async def _training_of(visitor: Visitor, association_id: str, training_id: str) -> Training:
    """One training, found in the association's list (the gateway has no single-training read)."""
    page = await visitor.api.list_trainings(association_id, page_size=200)
    while True:
        for training in page["items"]:
            if training["id"] == training_id:
                return training
        token = page["next_page_token"]
        if not token:
            raise ApiProblem(404, {"type": "https://guichet.dev/problems/not_found", "status": 404})
        page = await visitor.api.list_trainings(association_id, page_size=200, page_token=token)


async def _trainees_page(
    visitor: Visitor,
    association_id: str,
    training_id: str,
    form: FormState,
    email_for: str = "",
    status_code: int = 200,
) -> Response:
    training = await _training_of(visitor, association_id, training_id)
    trainees = await visitor.api.list_trainees(
        association_id, training_id, include_cancelled=True, page_size=200
    )
    context = {
        "training": training,
        "trainees": trainees["items"],
        "form": form,
        "email_for": email_for,
    }
    return await portal_page(visitor, association_id, "trainees", "trainings", context, status_code)


@router.get("/associations/{association_id}/trainings/{training_id}", response_class=HTMLResponse)
async def trainees_page(visitor: CurrentVisitor, association_id: str, training_id: str) -> Response:
    await visitor.me()
    form = FormState()
    return await _trainees_page(visitor, association_id, training_id, form)


@router.post(
    "/associations/{association_id}/trainings/{training_id}/registrations/{registration_id}"
    "/validation",
    response_class=HTMLResponse,
)
async def validate_registration(
    visitor: CurrentVisitor, association_id: str, training_id: str, registration_id: str
) -> Response:
    try:
        await visitor.api.validate_registration(association_id, registration_id)
    except ApiProblem as problem:
        keep(problem)
        form = refused(visitor.locale, {}, problem)
        return await _trainees_page(visitor, association_id, training_id, form, status_code=409)
    flash(visitor.request, _DONE["validated"])
    return redirect(f"/associations/{association_id}/trainings/{training_id}")


@router.post(
    "/associations/{association_id}/trainings/{training_id}/registrations/{registration_id}/email",
    response_class=HTMLResponse,
)
async def correct_email(
    visitor: CurrentVisitor, association_id: str, training_id: str, registration_id: str
) -> Response:
    values = await form_values(visitor.request)
    try:
        await visitor.api.correct_email(
            association_id, registration_id, {"email": values.get("email", "").strip()}
        )
    except ApiProblem as problem:
        keep(problem)
        form = refused(visitor.locale, values, problem)
        return await _trainees_page(
            visitor, association_id, training_id, form, registration_id, status_code=400
        )
    flash(visitor.request, _DONE["email"])
    return redirect(f"/associations/{association_id}/trainings/{training_id}")


# Public trainings (no account needed) -------------------------------------------------------


@router.get("/associations/{association_id}/public-trainings", response_class=HTMLResponse)
async def public_trainings_page(visitor: CurrentVisitor, association_id: str) -> Response:
    trainings = await visitor.api.list_public_trainings(association_id, page_size=100)
    context = {"trainings": trainings["items"], "member_view": False}
    return await portal_page(visitor, association_id, "public_trainings", "public", context)


async def _public_training(visitor: Visitor, association_id: str, training_id: str) -> Training:
    page = await visitor.api.list_public_trainings(association_id, page_size=200)
    while True:
        for training in page["items"]:
            if training["id"] == training_id:
                return training
        token = page["next_page_token"]
        if not token:
            raise ApiProblem(404, {"type": "https://guichet.dev/problems/not_found", "status": 404})
        page = await visitor.api.list_public_trainings(
            association_id, page_size=200, page_token=token
        )


async def _register_page(
    visitor: Visitor,
    association_id: str,
    training_id: str,
    form: FormState,
    status_code: int = 200,
) -> Response:
    training = await _public_training(visitor, association_id, training_id)
    context = {"training": training, "form": form}
    return await portal_page(visitor, association_id, "register", "public", context, status_code)


@router.get(
    "/associations/{association_id}/public-trainings/{training_id}", response_class=HTMLResponse
)
async def register_page(visitor: CurrentVisitor, association_id: str, training_id: str) -> Response:
    return await _register_page(visitor, association_id, training_id, FormState())


_TRAINEE = ("first_name", "last_name", "birth_date", "email", "phone")


@router.post(
    "/associations/{association_id}/public-trainings/{training_id}", response_class=HTMLResponse
)
async def register_for_training(
    visitor: CurrentVisitor, association_id: str, training_id: str
) -> Response:
    values = await form_values(visitor.request)
    trainee = nested(values, "trainee", _TRAINEE)
    for required in ("first_name", "last_name", "email"):
        trainee.setdefault(required, "")
    body: dict[str, Any] = {"trainee": Trainee(**trainee)}  # type: ignore[typeddict-item]
    for optional in ("company_name", "siret"):
        if values.get(optional, "").strip():
            body[optional] = values[optional].strip()
    typed = TypedInputs()
    number = typed.number(values, "client_number", "form.expects_client_number")
    if number is not None:
        body["client_number"] = number
    try:
        result = await visitor.api.register_for_training(
            association_id, training_id, cast("SchemasMembershipRegistrationBody", body)
        )
    except ApiProblem as problem:
        if problem.status >= 500 or problem.status == 404:
            raise
        form = typed.explain(refused(visitor.locale, values, problem), visitor.t)
        return await _register_page(
            visitor, association_id, training_id, form, status_code=problem.status
        )
    done = visitor.t(
        "association.registration_done", number=result["registration"]["client"]["number"]
    )
    if result["cancelled_registration_id"]:
        done += " " + visitor.t("association.earlier_cancelled")
    return await _register_page(visitor, association_id, training_id, FormState(done=done))


# First-aid coverage (DPS) requests ----------------------------------------------------------

_ORGANISER = ("company_name", "siret", "contact_name", "email", "phone")


async def _dps_page(
    visitor: Visitor, association_id: str, form: FormState, status_code: int = 200
) -> Response:
    requests: list[Any] | None = None
    if visitor.signed_in:
        try:
            requests = (await visitor.api.list_coverage(association_id, page_size=50))["items"]
        except ApiProblem as problem:
            if problem.status not in (403, 404):
                raise
    context = {"form": form, "requests": requests}
    return await portal_page(visitor, association_id, "dps", "dps", context, status_code)


@router.get("/associations/{association_id}/dps-requests", response_class=HTMLResponse)
async def dps_page(visitor: CurrentVisitor, association_id: str) -> Response:
    return await _dps_page(visitor, association_id, FormState())


@router.post("/associations/{association_id}/dps-requests", response_class=HTMLResponse)
async def request_coverage(visitor: CurrentVisitor, association_id: str) -> Response:
    values = await form_values(visitor.request)
    organiser = nested(values, "organiser", _ORGANISER)
    for required in ("company_name", "contact_name", "email"):
        organiser.setdefault(required, "")
    typed = TypedInputs()
    number = typed.number(values, "organiser.client_number", "form.expects_client_number")
    body: dict[str, Any] = {
        "event_name": values.get("event_name", "").strip(),
        "location": values.get("location", "").strip(),
        "organiser": Organiser(**organiser),  # type: ignore[typeddict-item]
    }
    if number is not None:
        body["organiser"]["client_number"] = number
    if values.get("event_date"):
        body["event_date"] = values["event_date"]
    attendance = typed.number(values, "expected_attendance", "form.expects_whole")
    if attendance is not None:
        body["expected_attendance"] = attendance
    try:
        result = await visitor.api.request_coverage(association_id, cast("CoverageBody", body))
    except ApiProblem as problem:
        if problem.status >= 500 or problem.status == 404:
            raise
        form = typed.explain(refused(visitor.locale, values, problem), visitor.t)
        return await _dps_page(visitor, association_id, form, status_code=problem.status)
    done = visitor.t("association.dps_done", number=result["request"]["client"]["number"])
    return await _dps_page(visitor, association_id, FormState(done=done))
