"""An association's pages (seed 002): members and their yearly fees, trainings and their
trainees (validation, e-mail correction), the public trainings a civilian registers for (again
for the same type cancels the earlier one, unless it is validated), first-aid coverage ("DPS")
requests, and the client records with the duplicates review: a merge previewed, then made,
then the emptied record deleted as a separate, deliberate step."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any, cast
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from web.client.api import (
    CoverageBody,
    FeeBody,
    MemberBody,
    Organiser,
    Trainee,
    Training,
    TrainingBody,
    TrainingRegistrationBody,
)
from web.client.transport import ApiProblem
from web.deps import CurrentVisitor
from web.flash import flash
from web.forms import TypedInputs
from web.i18n import N_
from web.pages import form_values, redirect, render
from web.paging import asked, paged
from web.portals.membership_common import nested, refused
from web.problems import FormState
from web.session import Visitor

router = APIRouter()

_DONE = {
    "member": "association.member_added",
    "fee": "association.fee_recorded",
    "training": "association.training_created",
    "validated": "association.validated",
    "email": "association.email_corrected",
    "deleted": "association.deleted",
    "time_zone": "association.time_zone_saved",
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
    zone_form: FormState | None = None,
) -> Response:
    settings = await visitor.api.get_association_settings(association_id)
    # "This year" is the association's: on 1 January at 00:30 in Paris it is already next year.
    year = datetime.now(ZoneInfo(settings["time_zone"])).year
    members, pager = await paged(
        visitor.request.url,
        partial(
            visitor.api.list_association_members,
            association_id,
            fee_year=year,
            fee="paid" if fee == "paid" else "unpaid" if fee == "unpaid" else None,
        ),
        asked(visitor.request),
        path=f"/associations/{association_id}",
    )
    context = {
        "members": members["items"],
        "pager": pager,
        "year": year,
        "fee": fee,
        "form": form,
        "fee_form": fee_form or FormState(values={"year": str(year)}),
        "fee_for": fee_for,
        "settings": settings,
        "zone_form": zone_form or FormState(values={"time_zone": settings["time_zone"]}),
    }
    return await portal_page(visitor, association_id, "members", "members", context, status_code)


@router.post("/associations/{association_id}/time-zone", response_class=HTMLResponse)
async def set_time_zone(visitor: CurrentVisitor, association_id: str) -> Response:
    """The association's administrators set the zone its days are counted in."""
    values = await form_values(visitor.request)
    try:
        await visitor.api.set_association_time_zone(
            association_id, {"time_zone": values.get("time_zone", "").strip()}
        )
    except ApiProblem as problem:
        keep(problem)
        form = refused(visitor.locale, values, problem)
        return await _members_page(
            visitor, association_id, FormState(), zone_form=form, status_code=400
        )
    return redirect(f"/associations/{association_id}?done=time_zone")


@router.get("/associations/{association_id}", response_class=HTMLResponse)
async def association_page(visitor: CurrentVisitor, association_id: str, fee: str = "") -> Response:
    """An administrator's entry is the members list; a member's, the public trainings."""
    await visitor.me()
    try:
        return await _members_page(visitor, association_id, FormState(), fee)
    except ApiProblem as problem:
        if problem.status != 403:
            raise
    trainings, pager = await paged(
        visitor.request.url,
        partial(visitor.api.list_public_trainings, association_id),
        asked(visitor.request),
    )
    context = {"trainings": trainings["items"], "pager": pager, "member_view": True}
    return await portal_page(visitor, association_id, "public_trainings", "public", context)


@router.post("/associations/{association_id}/members", response_class=HTMLResponse)
async def add_member(visitor: CurrentVisitor, association_id: str) -> Response:
    values = await form_values(visitor.request)
    body: MemberBody = {
        "first_name": values.get("first_name", "").strip(),
        "last_name": values.get("last_name", "").strip(),
        "email": values.get("email", "").strip() or None,
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
    trainings, pager = await paged(
        visitor.request.url,
        partial(visitor.api.list_trainings, association_id),
        asked(visitor.request),
        path=f"/associations/{association_id}/trainings",
    )
    settings = await visitor.api.get_association_settings(association_id)
    context = {
        "trainings": trainings["items"],
        "pager": pager,
        "form": form,
        "zone": settings["time_zone"],
    }
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
        # The form's wall clock is the association's (its settings), not the server's.
        settings = await visitor.api.get_association_settings(association_id)
        body["start_time"] = _instant(values["start_time"], settings["time_zone"])
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
    trainees, pager = await paged(
        visitor.request.url,
        partial(visitor.api.list_trainees, association_id, training_id, include_cancelled=True),
        asked(visitor.request),
        path=f"/associations/{association_id}/trainings/{training_id}",
    )
    context = {
        "training": training,
        "trainees": trainees["items"],
        "pager": pager,
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
    trainings, pager = await paged(
        visitor.request.url,
        partial(visitor.api.list_public_trainings, association_id),
        asked(visitor.request),
    )
    context = {"trainings": trainings["items"], "pager": pager, "member_view": False}
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
            association_id, training_id, cast("TrainingRegistrationBody", body)
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
    pager = None
    if visitor.signed_in:
        try:
            page, pager = await paged(
                visitor.request.url,
                partial(visitor.api.list_coverage, association_id),
                asked(visitor.request),
                path=f"/associations/{association_id}/dps-requests",
            )
            requests = page["items"]
        except ApiProblem as problem:
            if problem.status not in (403, 404):
                raise
    context = {"form": form, "requests": requests, "pager": pager}
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


# Message ids this module builds at run time, declared for the extraction.


# Message ids this module builds at run time, declared for the extraction.
RUNTIME_MESSAGES = (
    N_("association.deleted"),
    N_("association.email_corrected"),
    N_("association.fee_recorded"),
    N_("association.kind_all"),
    N_("association.kind_certain"),
    N_("association.kind_probable"),
    N_("association.member_added"),
    N_("association.reg_cancelled"),
    N_("association.reg_registered"),
    N_("association.reg_validated"),
    N_("association.tab_audit"),
    N_("association.tab_dps"),
    N_("association.tab_duplicates"),
    N_("association.tab_public"),
    N_("association.tab_records"),
    N_("association.tab_trainings"),
    N_("association.time_zone_saved"),
    N_("association.title"),
    N_("association.training_created"),
    N_("association.validated"),
)
