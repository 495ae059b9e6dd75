"""The operator's partner views (ops admin): out-of-stock escalations (cancel the order, refund
it), bank-detail changes to review with their proof, content changes, stores not checked in."""

from __future__ import annotations

from functools import partial
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from web.client.api import BankDetailChangeStatus, EscalationStatus, RefundFunder
from web.client.transport import ApiProblem
from web.deps import CurrentVisitor
from web.flash import flash
from web.i18n import N_
from web.pages import form_values, redirect, render
from web.paging import asked, every_item, paged
from web.portals.partners_common import pick, refused
from web.portals.partners_menu import proof_response
from web.problems import FormState
from web.session import Visitor

router = APIRouter()

_ESCALATION_STATUSES: tuple[EscalationStatus, ...] = (
    "escalated",
    "awaiting_answer",
    "accepted",
    "item_replaced",
    "cancelled",
)
_FUNDERS: tuple[RefundFunder, ...] = ("platform", "partner")


async def _escalations_context(visitor: Visitor, status: str) -> dict[str, object]:
    """One page of the escalations in a status; the live table polls the same page (its
    address carries the page's token) and its links lead to the page, not to the table."""
    chosen = pick(_ESCALATION_STATUSES, status, "escalated")
    token = asked(visitor.request)
    page, pager = await paged(
        visitor.request.url,
        partial(visitor.api.list_escalations, status=chosen),
        token,
        path="/operator/partners/escalations",
    )
    return {
        "escalations": page["items"],
        "pager": pager,
        "page_token": token,
        "status": chosen,
        "statuses": _ESCALATION_STATUSES,
    }


async def _escalations_page(
    visitor: Visitor,
    status: str,
    form: FormState,
    refund_form: FormState | None = None,
    status_code: int = 200,
) -> Response:
    await visitor.me()
    context = await _escalations_context(visitor, status)
    return await render(
        visitor,
        "partners/op_escalations.html",
        {
            **context,
            "form": form,
            "refund_form": refund_form or FormState(values={"funded_by": "platform"}),
            "funders": [(f, visitor.t(f"partners.funder.{f}")) for f in _FUNDERS],
        },
        status_code=status_code,
    )


@router.get("/operator/partners", response_class=HTMLResponse)
async def operator_home() -> Response:
    return redirect("/operator/partners/escalations")


@router.get("/operator/partners/escalations", response_class=HTMLResponse)
async def escalations(visitor: CurrentVisitor, status: str = "escalated") -> Response:
    return await _escalations_page(visitor, status, FormState())


@router.get("/operator/partners/escalations/table", response_class=HTMLResponse)
async def escalations_table(
    visitor: CurrentVisitor, status: str = "escalated", known: int | None = None
) -> Response:
    """The live table (htmx): an escalation appears once its workflow hands it to support;
    `known` is how many the page showed, so that a change (only) is announced."""
    await visitor.me()
    context = await _escalations_context(visitor, status)
    return await render(visitor, "partners/_op_escalations_table.html", {**context, "known": known})


@router.post("/operator/partners/orders/{order_id}/cancel", response_class=HTMLResponse)
async def cancel_order(visitor: CurrentVisitor, order_id: str) -> Response:
    values = await form_values(visitor.request)
    try:
        result = await visitor.api.cancel_escalated_order(
            order_id, {"note": values.get("note") or None}
        )
    except ApiProblem as problem:
        return await _escalations_page(
            visitor, "escalated", refused(visitor, values, problem), None, 409
        )
    refunded = visitor.t("partners.op.and_refunded") if result["escalation"]["refunded"] else ""
    done = visitor.t("partners.op.cancelled", code=result["order"]["code"], refunded=refunded)
    form = FormState(done=done)
    return await _escalations_page(visitor, "cancelled", form)


@router.post("/operator/partners/refunds", response_class=HTMLResponse)
async def refund(visitor: CurrentVisitor) -> Response:
    values = await form_values(visitor.request)
    funder = pick(_FUNDERS, values.get("funded_by"), "platform")
    try:
        await visitor.api.refund_order(
            values.get("order_id", "").strip(),
            {"reason": values.get("reason", ""), "funded_by": funder},
        )
    except ApiProblem as problem:
        if problem.status == 404:
            problem.problem.setdefault("errors", [{"field": "order_id", "detail": "not found"}])
        return await _escalations_page(
            visitor, "escalated", FormState(), refused(visitor, values, problem), 400
        )
    return await _escalations_page(
        visitor, "escalated", FormState(), FormState(done=visitor.t("partners.op.refunded"))
    )


_BANK_STATUSES: tuple[BankDetailChangeStatus, ...] = (
    "proof_submitted",
    "awaiting_proof",
    "approved",
    "rejected",
)


async def _bank_page(
    visitor: Visitor, status: str, form: FormState, status_code: int = 200
) -> Response:
    await visitor.me()
    chosen = pick(_BANK_STATUSES, status, "proof_submitted")
    page, pager = await paged(
        visitor.request.url,
        partial(visitor.api.review_bank_detail_changes, status=chosen),
        asked(visitor.request),
        path="/operator/partners/bank-detail-changes",
    )
    return await render(
        visitor,
        "partners/op_bank.html",
        {
            "changes": page["items"],
            "pager": pager,
            "status": chosen,
            "statuses": _BANK_STATUSES,
            "form": form,
        },
        status_code=status_code,
    )


@router.get("/operator/partners/bank-detail-changes", response_class=HTMLResponse)
async def bank_changes(visitor: CurrentVisitor, status: str = "proof_submitted") -> Response:
    return await _bank_page(visitor, status, FormState())


@router.get("/operator/partners/bank-detail-changes/{change_id}/proof")
async def operator_proof(visitor: CurrentVisitor, change_id: str) -> Response:
    content = await visitor.api.operator_download_proof(change_id)
    proof = None
    statuses: tuple[BankDetailChangeStatus, ...] = ("proof_submitted", "approved", "rejected")
    for status in statuses:
        changes = await every_item(partial(visitor.api.review_bank_detail_changes, status=status))
        proof = next((c["proof"] for c in changes if c["id"] == change_id), None)
        if proof:
            break
    return proof_response(content, proof)


@router.post(
    "/operator/partners/bank-detail-changes/{change_id}/approve", response_class=HTMLResponse
)
async def approve_bank(visitor: CurrentVisitor, change_id: str) -> Response:
    try:
        await visitor.api.approve_bank_detail_change(change_id)
    except ApiProblem as problem:
        return await _bank_page(visitor, "proof_submitted", refused(visitor, {}, problem), 409)
    flash(visitor.request, "partners.op.approved")
    return redirect("/operator/partners/bank-detail-changes?status=approved")


@router.post(
    "/operator/partners/bank-detail-changes/{change_id}/reject", response_class=HTMLResponse
)
async def reject_bank(visitor: CurrentVisitor, change_id: str) -> Response:
    values = await form_values(visitor.request)
    try:
        await visitor.api.reject_bank_detail_change(change_id, {"reason": values.get("reason", "")})
    except ApiProblem as problem:
        form = refused(visitor, values, problem)
        form.errors = {f"{k}-{change_id}": v for k, v in form.errors.items()}
        return await _bank_page(visitor, "proof_submitted", form, 400)
    flash(visitor.request, "partners.op.rejected")
    return redirect("/operator/partners/bank-detail-changes?status=rejected")


async def _content_page(
    visitor: Visitor, store_id: str, form: FormState, status_code: int = 200
) -> Response:
    """The gateway lists content changes per store only, so the operator names the store."""
    await visitor.me()
    changes: list[object] = []
    store = None
    pager = None
    if store_id:
        store = await visitor.api.get_store(store_id)
        page, pager = await paged(
            visitor.request.url,
            partial(visitor.api.list_content_changes, store_id),
            asked(visitor.request),
            path="/operator/partners/content-changes",
        )
        changes = list(page["items"])
    form.values.setdefault("store_id", store_id)
    # The operator picks the store by name, among every store: nobody types an id.
    partners = await every_item(partial(visitor.api.list_organisations, kind="delivery_partner"))
    stores = [("", visitor.t("partners.op.choose_store"))] + [
        (o["id"], o["name"]) for o in sorted(partners, key=lambda o: o["name"])
    ]
    return await render(
        visitor,
        "partners/op_content.html",
        {
            "changes": changes,
            "pager": pager,
            "store": store,
            "store_id": store_id,
            "form": form,
            "stores": stores,
        },
        status_code=status_code,
    )


@router.get("/operator/partners/content-changes", response_class=HTMLResponse)
async def content_changes(visitor: CurrentVisitor, store_id: str = "") -> Response:
    return await _content_page(visitor, store_id.strip(), FormState())


@router.post(
    "/operator/partners/content-changes/{change_id}/{decision}", response_class=HTMLResponse
)
async def decide_content(visitor: CurrentVisitor, change_id: str, decision: str) -> Response:
    values = await form_values(visitor.request)
    store_id = values.get("store_id", "")
    try:
        if decision == "approve":
            await visitor.api.approve_content_change(
                change_id, {"note": values.get("note") or None}
            )
        else:
            await visitor.api.reject_content_change(change_id, {"reason": values.get("reason", "")})
    except ApiProblem as problem:
        return await _content_page(visitor, store_id, refused(visitor, values, problem), 400)
    done = "applied" if decision == "approve" else "rejected"
    flash(visitor.request, f"partners.op.content_{done}")
    return redirect(f"/operator/partners/content-changes?store_id={quote(store_id, safe='')}")


@router.get("/operator/partners/check-ins/missing", response_class=HTMLResponse)
async def missing_check_ins(visitor: CurrentVisitor, day: str = "") -> Response:
    await visitor.me()
    page, pager = await paged(
        visitor.request.url,
        partial(visitor.api.stores_not_checked_in, day=day or None),
        asked(visitor.request),
    )
    return await render(
        visitor,
        "partners/op_missing.html",
        {"missing": page["items"], "pager": pager, "form": FormState(values={"day": day})},
    )


# Message ids this module builds at run time, declared for the extraction.
RUNTIME_MESSAGES = (
    N_("partners.op.answer.accepted"),
    N_("partners.op.answer.none"),
    N_("partners.op.answer.refused"),
    N_("partners.op.approved"),
    N_("partners.op.content_applied"),
    N_("partners.op.content_rejected"),
    N_("partners.op.rejected"),
)
