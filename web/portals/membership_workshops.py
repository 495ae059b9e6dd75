"""A banner-program workshop's pages (seed 000): its information and program, option-change
requests (added any time, removed only in the yearly window at the renewal date), its
technicians and their training courses, and its labour-warranty claims."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any, cast

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from web.client.api import (
    ClaimBody,
    ClaimStatus,
    CourseRegistrationBody,
    OptionChange,
    TechnicianBody,
)
from web.client.transport import ApiProblem
from web.deps import CurrentVisitor
from web.flash import flash
from web.forms import TypedInputs
from web.i18n import N_
from web.pages import form_values, redirect, render
from web.paging import asked, every_item, paged, whole_list
from web.portals.membership_common import refused
from web.problems import FormState
from web.session import Visitor

router = APIRouter()

_DONE = {
    "requested": "workshop.requested",
    "technician": "workshop.technician_added",
    "registered": "workshop.registered",
    "cancelled": "workshop.registration_cancelled",
    "claim": "workshop.claim_submitted",
    "claim_updated": "workshop.claim_updated",
    "time_zone": "workshop.time_zone_saved",
    "resent": "workshop.letter_resent_done",
}

_TEAM_ROLES = frozenset({"ops_admin", "support_agent"})


async def _view_page(
    visitor: Visitor,
    workshop_id: str,
    form: FormState,
    status_code: int = 200,
    team_form: FormState | None = None,
) -> Response:
    view, (requests, requests_pager) = await asyncio.gather(
        visitor.api.get_workshop(workshop_id),
        paged(
            visitor.request.url,
            partial(visitor.api.list_option_requests, workshop_id),
            asked(visitor.request, "page_token"),
            path=f"/workshops/{workshop_id}",
        ),
    )
    held = {option["id"] for option in view["membership"]["options"]}
    me = await visitor.me()
    context: dict[str, Any] = {
        "workshop_id": workshop_id,
        "tab": "view",
        "view": view,
        "held": held,
        "requests": requests["items"],
        "requests_pager": requests_pager,
        "form": form,
        "team": any(m["role"] in _TEAM_ROLES for m in me["memberships"]),
        "team_form": team_form
        or FormState(values={"time_zone": view["membership"]["time_zone"] or ""}),
    }
    return await render(visitor, "membership/workshop.html", context, status_code=status_code)


@router.post("/workshops/{workshop_id}/time-zone", response_class=HTMLResponse)
async def set_time_zone(visitor: CurrentVisitor, workshop_id: str) -> Response:
    """The program team names the workshop's own zone (empty: the program's)."""
    values = await form_values(visitor.request)
    try:
        await visitor.api.set_workshop_time_zone(
            workshop_id, {"time_zone": values.get("time_zone", "").strip()}
        )
    except ApiProblem as problem:
        if problem.status >= 500 or problem.status in (401, 404):
            raise
        team_form = refused(visitor.locale, values, problem)
        return await _view_page(
            visitor, workshop_id, FormState(), status_code=400, team_form=team_form
        )
    return redirect(f"/workshops/{workshop_id}?done=time_zone")


@router.post("/workshops/{workshop_id}/anniversary-letter/resend", response_class=HTMLResponse)
async def resend_letter(visitor: CurrentVisitor, workshop_id: str) -> Response:
    """The program team sends this renewal's letter again, saying why (recorded)."""
    values = await form_values(visitor.request)
    try:
        await visitor.api.resend_letter(workshop_id, {"reason": values.get("reason", "").strip()})
    except ApiProblem as problem:
        if problem.status >= 500 or problem.status in (401, 404):
            raise
        team_form = refused(visitor.locale, values, problem)
        return await _view_page(
            visitor, workshop_id, FormState(), status_code=400, team_form=team_form
        )
    return redirect(f"/workshops/{workshop_id}?done=resent")


@router.get("/workshops/{workshop_id}", response_class=HTMLResponse)
async def workshop_page(visitor: CurrentVisitor, workshop_id: str) -> Response:
    await visitor.me()
    return await _view_page(visitor, workshop_id, FormState())


@router.post("/workshops/{workshop_id}/option-requests", response_class=HTMLResponse)
async def request_option_change(visitor: CurrentVisitor, workshop_id: str) -> Response:
    values = await form_values(visitor.request)
    change: OptionChange = "remove" if values.get("change") == "remove" else "add"
    try:
        await visitor.api.request_option_change(
            workshop_id,
            {
                "option_id": values.get("option_id", ""),
                "change": change,
                "channel": "portal",
                "note": values.get("note", "").strip(),
            },
        )
    except ApiProblem as problem:
        if problem.status >= 500 or problem.status in (401, 403, 404):
            raise
        form = refused(visitor.locale, values, problem)
        return await _view_page(visitor, workshop_id, form, status_code=400)
    flash(visitor.request, _DONE["requested"])
    return redirect(f"/workshops/{workshop_id}")


async def _technicians_page(
    visitor: Visitor, workshop_id: str, form: FormState, status_code: int = 200
) -> Response:
    """The technicians and the registrations page apart (a query parameter each); the form's
    choices (every technician, every upcoming course) are whole."""
    here = f"/workshops/{workshop_id}/technicians"
    team = partial(visitor.api.list_technicians, workshop_id)
    token = asked(visitor.request, "page_token")
    (
        view,
        (technicians, technicians_pager),
        (history, history_pager),
        courses,
    ) = await asyncio.gather(
        visitor.api.get_workshop(workshop_id),
        paged(visitor.request.url, team, token, path=here),
        paged(
            visitor.request.url,
            partial(visitor.api.list_course_registrations, workshop_id),
            asked(visitor.request, "history_page"),
            param="history_page",
            path=here,
        ),
        every_item(partial(visitor.api.list_courses, upcoming=True)),
    )
    context: dict[str, Any] = {
        "workshop_id": workshop_id,
        "tab": "technicians",
        "view": view,
        "technicians": technicians["items"],
        "technicians_pager": technicians_pager,
        "every_technician": await whole_list(technicians, token, team),
        "history": history["items"],
        "history_pager": history_pager,
        "courses": courses,
        "form": form,
    }
    return await render(visitor, "membership/technicians.html", context, status_code=status_code)


@router.get("/workshops/{workshop_id}/technicians", response_class=HTMLResponse)
async def technicians_page(visitor: CurrentVisitor, workshop_id: str) -> Response:
    await visitor.me()
    return await _technicians_page(visitor, workshop_id, FormState())


@router.post("/workshops/{workshop_id}/technicians", response_class=HTMLResponse)
async def add_technician(visitor: CurrentVisitor, workshop_id: str) -> Response:
    values = await form_values(visitor.request)
    body: TechnicianBody = {
        "first_name": values.get("first_name", "").strip(),
        "last_name": values.get("last_name", "").strip(),
    }
    if values.get("email", "").strip():
        body["email"] = values["email"].strip()
    try:
        await visitor.api.add_technician(workshop_id, body)
    except ApiProblem as problem:
        if problem.status >= 500 or problem.status in (401, 403, 404):
            raise
        form = refused(visitor.locale, values, problem)
        return await _technicians_page(visitor, workshop_id, form, status_code=400)
    flash(visitor.request, _DONE["technician"])
    return redirect(f"/workshops/{workshop_id}/technicians")


@router.post("/workshops/{workshop_id}/training-registrations", response_class=HTMLResponse)
async def register_technician(visitor: CurrentVisitor, workshop_id: str) -> Response:
    values = await form_values(visitor.request)
    body: CourseRegistrationBody = {
        "course_id": values.get("course_id", ""),
        "technician_id": values.get("technician_id", ""),
    }
    try:
        await visitor.api.register_technician(workshop_id, body)
    except ApiProblem as problem:
        if problem.status >= 500 or problem.status in (401, 403):
            raise
        form = refused(visitor.locale, values, problem)
        return await _technicians_page(visitor, workshop_id, form, status_code=400)
    flash(visitor.request, _DONE["registered"])
    return redirect(f"/workshops/{workshop_id}/technicians")


@router.post(
    "/workshops/{workshop_id}/training-registrations/{registration_id}/cancel",
    response_class=HTMLResponse,
)
async def cancel_registration(
    visitor: CurrentVisitor, workshop_id: str, registration_id: str
) -> Response:
    try:
        await visitor.api.update_course_registration(
            workshop_id, registration_id, {"status": "cancelled"}
        )
    except ApiProblem as problem:
        if problem.status >= 500 or problem.status in (401, 403, 404):
            raise
        form = refused(visitor.locale, {}, problem)
        return await _technicians_page(visitor, workshop_id, form, status_code=400)
    flash(visitor.request, _DONE["cancelled"])
    return redirect(f"/workshops/{workshop_id}/technicians")


async def _claims_page(
    visitor: Visitor, workshop_id: str, form: FormState, status_code: int = 200
) -> Response:
    """One page of the claims; every technician in the claim form's choice."""
    view, (claims, claims_pager), technicians = await asyncio.gather(
        visitor.api.get_workshop(workshop_id),
        paged(
            visitor.request.url,
            partial(visitor.api.list_claims, workshop_id),
            asked(visitor.request, "page_token"),
            path=f"/workshops/{workshop_id}/claims",
        ),
        every_item(partial(visitor.api.list_technicians, workshop_id)),
    )
    context: dict[str, Any] = {
        "workshop_id": workshop_id,
        "tab": "claims",
        "view": view,
        "claims": claims["items"],
        "claims_pager": claims_pager,
        "technicians": technicians,
        "form": form,
    }
    return await render(visitor, "membership/claims.html", context, status_code=status_code)


@router.get("/workshops/{workshop_id}/claims", response_class=HTMLResponse)
async def claims_page(visitor: CurrentVisitor, workshop_id: str) -> Response:
    await visitor.me()
    return await _claims_page(visitor, workshop_id, FormState())


@router.post("/workshops/{workshop_id}/claims", response_class=HTMLResponse)
async def submit_claim(visitor: CurrentVisitor, workshop_id: str) -> Response:
    values = await form_values(visitor.request)
    body: dict[str, Any] = {
        "vehicle_vin": values.get("vehicle_vin", "").strip(),
        "repair_order": values.get("repair_order", "").strip(),
        "description": values.get("description", "").strip(),
    }
    if values.get("repair_date"):
        body["repair_date"] = values["repair_date"]
    if values.get("technician_id"):
        body["technician_id"] = values["technician_id"]
    typed = TypedInputs()
    minutes = typed.number(values, "labour_minutes", "form.expects_minutes")
    amount = typed.cents(values, "amount", "form.expects_amount")
    if minutes is not None:
        body["labour_minutes"] = minutes
    if amount is not None:
        body["amount_cents"] = amount
    try:
        claim = await visitor.api.submit_claim(workshop_id, cast("ClaimBody", body))
    except ApiProblem as problem:
        if problem.status >= 500 or problem.status in (401, 403, 404):
            raise
        form = refused(visitor.locale, values, problem, {"amount_cents": "amount"})
        typed.explain(form, visitor.t)
        return await _claims_page(visitor, workshop_id, form, status_code=400)
    flash(visitor.request, _DONE["claim"])
    return redirect(f"/workshops/{workshop_id}/claims/{claim['id']}")


async def _claim_page(
    visitor: Visitor, workshop_id: str, claim_id: str, form: FormState, status_code: int = 200
) -> Response:
    view = await visitor.api.get_workshop(workshop_id)
    claim = await visitor.api.get_claim(workshop_id, claim_id)
    context: dict[str, Any] = {
        "workshop_id": workshop_id,
        "tab": "claims",
        "view": view,
        "claim": claim,
        "form": form,
    }
    return await render(visitor, "membership/claim.html", context, status_code=status_code)


@router.get("/workshops/{workshop_id}/claims/{claim_id}", response_class=HTMLResponse)
async def claim_page(visitor: CurrentVisitor, workshop_id: str, claim_id: str) -> Response:
    await visitor.me()
    return await _claim_page(visitor, workshop_id, claim_id, FormState())


_WORKSHOP_MOVES: dict[str, ClaimStatus] = {"withdrawn": "withdrawn", "under_review": "under_review"}


@router.post("/workshops/{workshop_id}/claims/{claim_id}/transitions", response_class=HTMLResponse)
async def transition_claim(visitor: CurrentVisitor, workshop_id: str, claim_id: str) -> Response:
    """The workshop's own moves: withdraw a submitted claim, answer a request for information."""
    values = await form_values(visitor.request)
    to_status = _WORKSHOP_MOVES.get(values.get("to_status", ""), "withdrawn")
    try:
        await visitor.api.transition_claim(
            workshop_id, claim_id, {"to_status": to_status, "note": values.get("note", "").strip()}
        )
    except ApiProblem as problem:
        if problem.status >= 500 or problem.status in (401, 404):
            raise
        form = refused(visitor.locale, values, problem)
        return await _claim_page(visitor, workshop_id, claim_id, form, status_code=400)
    flash(visitor.request, _DONE["claim_updated"])
    return redirect(f"/workshops/{workshop_id}/claims/{claim_id}")


# Message ids this module builds at run time, declared for the extraction.


# Message ids this module builds at run time, declared for the extraction.
RUNTIME_MESSAGES = (
    N_("membership.claim_approved"),
    N_("membership.claim_needs_information"),
    N_("membership.claim_paid"),
    N_("membership.claim_rejected"),
    N_("membership.claim_submitted"),
    N_("membership.claim_under_review"),
    N_("membership.claim_withdrawn"),
    N_("membership.status_absent"),
    N_("membership.status_approved"),
    N_("membership.status_cancelled"),
    N_("membership.status_completed"),
    N_("membership.status_pending"),
    N_("membership.status_registered"),
    N_("membership.status_rejected"),
    N_("workshop.claim_submitted"),
    N_("workshop.claim_updated"),
    N_("workshop.letter_resent_done"),
    N_("workshop.registered"),
    N_("workshop.registration_cancelled"),
    N_("workshop.requested"),
    N_("workshop.status_active"),
    N_("workshop.status_ended"),
    N_("workshop.technician_added"),
    N_("workshop.time_zone_saved"),
)
