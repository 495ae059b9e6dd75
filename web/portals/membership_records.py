"""An association's client records ("fiches clients", seed 002): the list by name, one record
with its duplicates (the merge screen), a merge previewed then made (audited), the emptied record
deleted as a separate, deliberate, irreversible step, and the duplicates review with its totals."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from web.client.api import DuplicateKind, MergePreview
from web.client.transport import ApiProblem
from web.deps import CurrentVisitor
from web.flash import flash
from web.pages import form_values, redirect
from web.paging import paged
from web.portals.membership_associations import keep, portal_page
from web.portals.membership_common import refused
from web.problems import FormState
from web.session import Visitor

# Groups of duplicates per page: each group is a card of several records.
DUPLICATES_PAGE = 25

router = APIRouter()


# Client records and the duplicates review ---------------------------------------------------


@router.get("/associations/{association_id}/records", response_class=HTMLResponse)
async def records_page(
    visitor: CurrentVisitor,
    association_id: str,
    name: str = "",
    page_token: str = "",
) -> Response:
    await visitor.me()
    records, pager = await paged(
        visitor.request.url,
        partial(visitor.api.list_records, association_id, name=name or None),
        page_token,
    )
    context = {
        "records": records["items"],
        "pager": pager,
        "name": name,
        "form": FormState(),
    }
    return await portal_page(visitor, association_id, "records", "records", context)


async def _record_page(
    visitor: Visitor,
    association_id: str,
    record_id: str,
    form: FormState,
    preview: MergePreview | None = None,
    delete_form: FormState | None = None,
    status_code: int = 200,
) -> Response:
    duplicates = await visitor.api.record_duplicates(association_id, record_id)
    context = {
        "record": duplicates["record"],
        "candidates": duplicates["candidates"],
        "preview": preview,
        "form": form,
        "delete_form": delete_form or FormState(),
    }
    return await portal_page(visitor, association_id, "record", "records", context, status_code)


@router.get("/associations/{association_id}/records/{record_id}", response_class=HTMLResponse)
async def record_page(
    visitor: CurrentVisitor, association_id: str, record_id: str, target_id: str = ""
) -> Response:
    """The merge screen; with a target chosen, what the merge would move (nothing moves yet)."""
    await visitor.me()
    preview = None
    form = FormState(values={"target_id": target_id})
    if target_id:
        try:
            preview = await visitor.api.merge_preview(
                association_id, record_id, target_id=target_id
            )
        except ApiProblem as problem:
            keep(problem)
            form = refused(visitor.locale, form.values, problem)
    return await _record_page(visitor, association_id, record_id, form, preview)


@router.post(
    "/associations/{association_id}/records/{record_id}/merge", response_class=HTMLResponse
)
async def merge_records(visitor: CurrentVisitor, association_id: str, record_id: str) -> Response:
    values = await form_values(visitor.request)
    try:
        result = await visitor.api.merge_records(
            association_id, record_id, {"target_id": values.get("target_id", "")}
        )
    except ApiProblem as problem:
        keep(problem)
        form = refused(visitor.locale, values, problem)
        return await _record_page(visitor, association_id, record_id, form, status_code=400)
    done = visitor.t(
        "association.merged",
        registrations=result["registrations_moved"],
        coverage=result["coverage_requests_moved"],
        target=result["target"]["number"],
    )
    return await _record_page(visitor, association_id, record_id, FormState(done=done))


@router.post(
    "/associations/{association_id}/records/{record_id}/delete", response_class=HTMLResponse
)
async def delete_record(visitor: CurrentVisitor, association_id: str, record_id: str) -> Response:
    """Irreversible, so a word typed on purpose, checked by the service too."""
    values = await form_values(visitor.request)
    confirmation = values.get("confirmation", "").strip()
    if confirmation.upper() != "SUPPRIMER":
        delete_form = FormState(
            values=values,
            errors={"confirmation": visitor.t("association.confirm_mismatch")},
            summary=visitor.t("problem.invalid_argument"),
        )
        return await _record_page(
            visitor, association_id, record_id, FormState(), None, delete_form, status_code=400
        )
    try:
        await visitor.api.delete_record(association_id, record_id, confirmation="SUPPRIMER")
    except ApiProblem as problem:
        keep(problem)
        delete_form = refused(visitor.locale, values, problem)
        return await _record_page(
            visitor, association_id, record_id, FormState(), None, delete_form, status_code=409
        )
    flash(visitor.request, "association.deleted")
    return redirect(f"/associations/{association_id}/records")


@router.get("/associations/{association_id}/duplicates", response_class=HTMLResponse)
async def duplicates_page(
    visitor: CurrentVisitor, association_id: str, kind: str = "", page_token: str = ""
) -> Response:
    await visitor.me()
    chosen: DuplicateKind | None = (
        "certain" if kind == "certain" else "probable" if kind == "probable" else None
    )
    page, pager = await paged(
        visitor.request.url,
        partial(visitor.api.list_duplicates, association_id, kind=chosen),
        page_token,
        size=DUPLICATES_PAGE,
    )
    context = {
        "groups": page["items"],
        "totals": page["totals"],
        "pager": pager,
        "kind": chosen or "",
    }
    return await portal_page(visitor, association_id, "duplicates", "duplicates", context)


@router.get("/associations/{association_id}/audit", response_class=HTMLResponse)
async def audit_page(
    visitor: CurrentVisitor, association_id: str, page_token: str = ""
) -> Response:
    await visitor.me()
    audit, pager = await paged(
        visitor.request.url,
        partial(visitor.api.list_client_record_audit, association_id),
        page_token,
    )
    context = {"entries": audit["items"], "pager": pager}
    return await portal_page(visitor, association_id, "audit", "audit", context)
