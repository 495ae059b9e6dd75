"""The delivery-partner back office (seed 003): a store's orders in progress and history, the
out-of-stock escalation, couriers, the menu, check-ins, promotions, messages and bank details;
plus the operator's partner views. The store id is the delivery_partner organisation's id, so
/partners/{store_id} is the page nav.py links to; the gateway decides who may see a store."""

from __future__ import annotations

import asyncio
from datetime import date
from functools import partial

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from web.client.api import AnswerBody, CourierReportBody, HistoryStatus, OutOfStockBody
from web.client.transport import ApiProblem
from web.deps import CurrentVisitor
from web.flash import flash
from web.forms import TypedInputs
from web.pages import form_values, redirect, render
from web.paging import every_item, paged
from web.portals import partners_menu, partners_operator
from web.portals.partners_common import as_instant, refused, store_context
from web.problems import FormState

router = APIRouter()
router.include_router(partners_menu.router)
router.include_router(partners_operator.router)

_HISTORY_STATUSES: tuple[HistoryStatus, ...] = ("collected", "delivered", "cancelled", "refunded")


@router.get("/partners/{store_id}", response_class=HTMLResponse)
async def store_home(visitor: CurrentVisitor, store_id: str) -> Response:
    context = await store_context(visitor, store_id)
    store = context["store"]
    form = FormState(
        values={
            "operations_email": store["operations_email"],
            "phone": store["phone"] or "",
            "timezone": store["timezone"],
        }
    )
    return await render(visitor, "partners/home.html", {**context, "form": form})


@router.post("/partners/{store_id}/settings", response_class=HTMLResponse)
async def save_settings(visitor: CurrentVisitor, store_id: str) -> Response:
    values = await form_values(visitor.request)
    context = await store_context(visitor, store_id)
    try:
        store = await visitor.api.update_settings(
            store_id,
            {
                "operations_email": values.get("operations_email", ""),
                "phone": values.get("phone") or None,
                "timezone": values.get("timezone", "").strip() or None,
            },
        )
    except ApiProblem as problem:
        form = refused(visitor, values, problem)
        return await render(
            visitor, "partners/home.html", {**context, "form": form}, status_code=400
        )
    form = FormState(values=values, done=visitor.t("partners.settings_saved"))
    return await render(visitor, "partners/home.html", {**context, "store": store, "form": form})


@router.get("/partners/{store_id}/orders", response_class=HTMLResponse)
async def orders_in_progress(
    visitor: CurrentVisitor, store_id: str, page_token: str = ""
) -> Response:
    context = await store_context(visitor, store_id)
    page, pager = await paged(
        visitor.request.url, partial(visitor.api.orders_in_progress, store_id), page_token
    )
    return await render(visitor, "partners/orders.html", {**context, "page": page, "pager": pager})


@router.get("/partners/{store_id}/history", response_class=HTMLResponse)
async def order_history(
    visitor: CurrentVisitor,
    store_id: str,
    status: str = "",
    from_day: str = "",
    to_day: str = "",
    page_token: str = "",
) -> Response:
    """RAPPORTS > HISTORIQUE: filters by status and by day (the store's own days)."""
    context = await store_context(visitor, store_id)
    chosen: HistoryStatus | None = next((s for s in _HISTORY_STATUSES if s == status), None)
    zone = context["zone"]
    history = partial(
        visitor.api.order_history,
        store_id,
        status=chosen,
        from_=as_instant(f"{from_day}T00:00", zone) if _is_day(from_day) else None,
        to=as_instant(f"{to_day}T23:59:59", zone) if _is_day(to_day) else None,
    )
    page, pager = await paged(visitor.request.url, history, page_token)
    filters = {"status": chosen or "", "from_day": from_day, "to_day": to_day}
    return await render(
        visitor,
        "partners/history.html",
        {
            **context,
            "page": page,
            "pager": pager,
            "filters": filters,
            "form": FormState(values=filters),
            "statuses": [(s, visitor.t(f"status.{s}")) for s in _HISTORY_STATUSES],
        },
    )


def _is_day(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


async def _order_page(
    visitor: CurrentVisitor,
    store_id: str,
    order_id: str,
    form: FormState | None = None,
    status_code: int = 200,
) -> Response:
    context, detail, products = await asyncio.gather(
        store_context(visitor, store_id),
        visitor.api.get_order(store_id, order_id),
        every_item(partial(visitor.api.list_products, store_id, active_only=True)),
    )
    if form is None:
        form = FormState()
    return await render(
        visitor,
        "partners/order.html",
        {
            **context,
            "detail": detail,
            "form": form,
            "item_options": [
                (i["id"], i["name"]) for i in detail["items"] if i["status"] == "active"
            ],
            "product_options": [("", "—")] + [(p["id"], p["name"]) for p in products],
        },
        status_code=status_code,
    )


@router.get("/partners/{store_id}/orders/{order_id}", response_class=HTMLResponse)
async def order_page(visitor: CurrentVisitor, store_id: str, order_id: str) -> Response:
    return await _order_page(visitor, store_id, order_id)


@router.post("/partners/{store_id}/orders/{order_id}/out-of-stock", response_class=HTMLResponse)
async def out_of_stock(visitor: CurrentVisitor, store_id: str, order_id: str) -> Response:
    values = await form_values(visitor.request)
    body: OutOfStockBody = {
        "item_id": values.get("item_id", ""),
        "note": values.get("note") or None,
    }
    try:
        await visitor.api.report_out_of_stock(store_id, order_id, body)
    except ApiProblem as problem:
        form = refused(visitor, values, problem)
        return await _order_page(visitor, store_id, order_id, form, 400)
    flash(visitor.request, "partners.done_out_of_stock")
    return redirect(f"/partners/{store_id}/orders/{order_id}")


@router.post(
    "/partners/{store_id}/orders/{order_id}/out-of-stock/answer", response_class=HTMLResponse
)
async def answer(visitor: CurrentVisitor, store_id: str, order_id: str) -> Response:
    values = await form_values(visitor.request)
    accepted = values.get("customer_accepted") == "true"
    body: AnswerBody = {"customer_accepted": accepted, "note": values.get("note") or None}
    typed = TypedInputs()
    if accepted:
        body["replacement_product_id"] = values.get("replacement_product_id") or None
        body["replacement_quantity"] = typed.number(
            values, "replacement_quantity", "form.expects_whole"
        )
    try:
        await visitor.api.answer_out_of_stock(store_id, order_id, body)
    except ApiProblem as problem:
        form = typed.explain(refused(visitor, values, problem), visitor.t)
        return await _order_page(visitor, store_id, order_id, form, 400)
    flash(visitor.request, "partners.done_answer")
    return redirect(f"/partners/{store_id}/orders/{order_id}")


@router.post("/partners/{store_id}/orders/{order_id}/courier-report", response_class=HTMLResponse)
async def courier_report(visitor: CurrentVisitor, store_id: str, order_id: str) -> Response:
    values = await form_values(visitor.request)
    body: CourierReportBody = {
        "reason": values.get("reason", "other"),  # type: ignore[typeddict-item]
        "comment": values.get("comment") or None,
    }
    try:
        await visitor.api.report_courier(store_id, order_id, body)
    except ApiProblem as problem:
        form = refused(visitor, values, problem)
        return await _order_page(visitor, store_id, order_id, form, 400)
    flash(visitor.request, "partners.done_courier_report")
    return redirect(f"/partners/{store_id}/orders/{order_id}")


@router.post("/partners/{store_id}/orders/{order_id}/courier-contact", response_class=HTMLResponse)
async def courier_contact(visitor: CurrentVisitor, store_id: str, order_id: str) -> Response:
    values = await form_values(visitor.request)
    try:
        await visitor.api.contact_courier(
            store_id, order_id, {"message": values.get("message") or None}
        )
    except ApiProblem as problem:
        form = refused(visitor, values, problem)
        return await _order_page(visitor, store_id, order_id, form, 400)
    flash(visitor.request, "partners.done_courier_contact")
    return redirect(f"/partners/{store_id}/orders/{order_id}")
