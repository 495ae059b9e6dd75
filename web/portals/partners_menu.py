"""The store's menu and account pages: products (price, deactivation), content changes, the daily
check-in, promotions (create, configure, activate, report a problem), messages to support and
the bank-detail change with its proof."""

from __future__ import annotations

from functools import partial
from typing import cast
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from web.client.api import (
    ContentChangeBody,
    DeactivateBody,
    MessageCategory,
    PriceBody,
    PromotionConfigBody,
    PromotionKind,
    SupportMessageBody,
)
from web.client.transport import ApiProblem
from web.deps import CurrentVisitor
from web.flash import flash
from web.formatting import amount_input, money
from web.forms import TypedInputs
from web.i18n import N_
from web.pages import form_values, redirect, render
from web.paging import asked, every_item, paged
from web.portals.partners_common import (
    as_instant,
    pick,
    refused,
    store_context,
)
from web.problems import FormState
from web.session import Visitor

# Products per page of the menu: a phone scrolls through a page of them, not the whole menu.
PRODUCTS_PAGE = 20
# A month of daily check-ins per page; bank-detail changes are cards, a few per page.
CHECK_INS_PAGE = 31
BANK_CHANGES_PAGE = 20

router = APIRouter()


def _product_options(visitor: Visitor, products: list[dict[str, object]]) -> list[tuple[str, str]]:
    return [("", visitor.t("partners.new_product"))] + [
        (str(p["id"]), str(p["name"])) for p in products
    ]


async def _products_page(
    visitor: Visitor,
    store_id: str,
    forms: dict[str, FormState] | None = None,
    page_token: str = "",
    status_code: int = 200,
) -> Response:
    """One page of the menu (PRODUCTS_PAGE products, by name): a product's forms open under
    it only when asked for, when refused, or when it was just changed."""
    context = await store_context(visitor, store_id)
    page, pager = await paged(
        visitor.request.url,
        partial(visitor.api.list_products, store_id),
        page_token,
        path=f"/partners/{store_id}/products",
        size=PRODUCTS_PAGE,
    )
    return await render(
        visitor,
        "partners/products.html",
        {
            **context,
            "products": page["items"],
            "forms": forms or {},
            "page_token": page_token,
            "pager": pager,
        },
        status_code=status_code,
    )


def _back_to(store_id: str, values: dict[str, str]) -> str:
    """The page of the menu the person acted from. No `#p-…` fragment: the confirmation shown
    in the product's card takes the focus (autofocus), which brings it into view; a fragment
    would make the browser skip the autofocus."""
    page = values.get("page_token", "")
    query = f"?page_token={quote(page, safe='')}" if page else ""
    return f"/partners/{store_id}/products{query}"


@router.get("/partners/{store_id}/products", response_class=HTMLResponse)
async def products(visitor: CurrentVisitor, store_id: str, page_token: str = "") -> Response:
    return await _products_page(visitor, store_id, page_token=page_token)


@router.post("/partners/{store_id}/products/{product_id}/price", response_class=HTMLResponse)
async def set_price(visitor: CurrentVisitor, store_id: str, product_id: str) -> Response:
    values = await form_values(visitor.request)
    page_token = values.get("page_token", "")
    typed = TypedInputs()
    cents = typed.cents(values, "price", "partners.price_invalid")
    try:
        body = {"price_cents": cents} if cents is not None else {}  # blank: "missing"
        product = await visitor.api.set_price(store_id, product_id, cast("PriceBody", body))
    except ApiProblem as problem:
        form = refused(visitor, values, problem)
        if "price_cents" in form.errors:
            form.errors["price"] = form.errors.pop("price_cents")
        typed.explain(form, visitor.t)
        return await _products_page(
            visitor, store_id, {product_id: form}, page_token, status_code=400
        )
    flash(
        visitor.request,
        "partners.price_saved",
        anchor=f"p-{product_id}",
        name=product["name"],
        price=money(product["price_cents"], product["currency"], visitor.locale),
    )
    return redirect(_back_to(store_id, values))


@router.post("/partners/{store_id}/products/{product_id}/deactivate", response_class=HTMLResponse)
async def deactivate(visitor: CurrentVisitor, store_id: str, product_id: str) -> Response:
    values = await form_values(visitor.request)
    context = await store_context(visitor, store_id)
    body: DeactivateBody = {
        "reason": values.get("reason", "").strip() or None,
        "reactivate_at": as_instant(values.get("reactivate_at", ""), context["zone"]),
    }
    try:
        product = await visitor.api.deactivate_product(store_id, product_id, body)
    except ApiProblem as problem:
        form = refused(visitor, values, problem)
        return await _products_page(
            visitor, store_id, {product_id: form}, values.get("page_token", ""), status_code=400
        )
    flash(
        visitor.request,
        "partners.product_deactivated",
        anchor=f"p-{product_id}",
        name=product["name"],
    )
    return redirect(_back_to(store_id, values))


@router.post("/partners/{store_id}/products/{product_id}/activate", response_class=HTMLResponse)
async def activate(visitor: CurrentVisitor, store_id: str, product_id: str) -> Response:
    values = await form_values(visitor.request)
    product = await visitor.api.activate_product(store_id, product_id)
    flash(
        visitor.request,
        "partners.product_reactivated",
        anchor=f"p-{product_id}",
        name=product["name"],
    )
    return redirect(_back_to(store_id, values))


async def _content_page(
    visitor: Visitor, store_id: str, form: FormState, status_code: int = 200
) -> Response:
    context = await store_context(visitor, store_id)
    changes, pager = await paged(
        visitor.request.url,
        partial(visitor.api.list_content_changes, store_id),
        asked(visitor.request),
        path=f"/partners/{store_id}/content-changes",
    )
    # Every product: they name the changes and fill the form's choice.
    menu = await every_item(partial(visitor.api.list_products, store_id))
    names = {p["id"]: p["name"] for p in menu}
    return await render(
        visitor,
        "partners/content_changes.html",
        {
            **context,
            "changes": changes["items"],
            "pager": pager,
            "names": names,
            "options": _product_options(visitor, menu),
            "form": form,
        },
        status_code=status_code,
    )


@router.get("/partners/{store_id}/content-changes", response_class=HTMLResponse)
async def content_changes(visitor: CurrentVisitor, store_id: str) -> Response:
    return await _content_page(visitor, store_id, FormState())


@router.post("/partners/{store_id}/content-changes", response_class=HTMLResponse)
async def submit_content_change(visitor: CurrentVisitor, store_id: str) -> Response:
    values = await form_values(visitor.request)
    typed = TypedInputs()
    body: ContentChangeBody = {
        "product_id": values.get("product_id") or None,
        "proposed_name": values.get("proposed_name") or None,
        "proposed_description": values.get("proposed_description") or None,
        "proposed_price_cents": typed.cents(values, "proposed_price", "form.expects_amount"),
        "note": values.get("note") or None,
        "reply_to_email": values.get("reply_to_email") or None,
    }
    try:
        await visitor.api.submit_content_change(store_id, body)
    except ApiProblem as problem:
        form = refused(visitor, values, problem)
        if "proposed_price_cents" in form.errors:
            form.errors["proposed_price"] = form.errors.pop("proposed_price_cents")
        return await _content_page(visitor, store_id, typed.explain(form, visitor.t), 400)
    flash(visitor.request, "partners.content_sent")
    return redirect(f"/partners/{store_id}/content-changes")


async def _check_ins_page(
    visitor: Visitor, store_id: str, form: FormState, status_code: int = 200
) -> Response:
    context = await store_context(visitor, store_id)
    page, pager = await paged(
        visitor.request.url,
        partial(visitor.api.list_check_ins, store_id),
        asked(visitor.request),
        path=f"/partners/{store_id}/check-ins",
        size=CHECK_INS_PAGE,
    )
    return await render(
        visitor,
        "partners/check_ins.html",
        {**context, "check_ins": page["items"], "pager": pager, "form": form},
        status_code=status_code,
    )


@router.get("/partners/{store_id}/check-ins", response_class=HTMLResponse)
async def check_ins(visitor: CurrentVisitor, store_id: str) -> Response:
    return await _check_ins_page(visitor, store_id, FormState())


@router.post("/partners/{store_id}/check-ins", response_class=HTMLResponse)
async def check_in(visitor: CurrentVisitor, store_id: str) -> Response:
    try:
        done = await visitor.api.check_in(store_id)
    except ApiProblem as problem:
        return await _check_ins_page(visitor, store_id, refused(visitor, {}, problem), 409)
    flash(visitor.request, "partners.checked_in", day=done["day"])
    return redirect(f"/partners/{store_id}/check-ins")


_KINDS: tuple[PromotionKind, ...] = ("percent_off", "amount_off", "free_delivery")


async def _promotions_page(
    visitor: Visitor, store_id: str, form: FormState, status_code: int = 200
) -> Response:
    context = await store_context(visitor, store_id)
    here = f"/partners/{store_id}/promotions"
    active, active_pager = await paged(
        visitor.request.url,
        partial(visitor.api.list_promotions, store_id, status="active"),
        asked(visitor.request, "active_page"),
        param="active_page",
        path=here,
    )
    every, pager = await paged(
        visitor.request.url,
        partial(visitor.api.list_promotions, store_id),
        asked(visitor.request),
        path=here,
    )
    return await render(
        visitor,
        "partners/promotions.html",
        {
            **context,
            "active": active["items"],
            "active_pager": active_pager,
            "promotions": every["items"],
            "pager": pager,
            "kinds": [(k, visitor.t(f"partners.kind.{k}")) for k in _KINDS],
            "form": form,
        },
        status_code=status_code,
    )


@router.get("/partners/{store_id}/promotions", response_class=HTMLResponse)
async def promotions(visitor: CurrentVisitor, store_id: str) -> Response:
    return await _promotions_page(visitor, store_id, FormState(values={"kind": "percent_off"}))


@router.post("/partners/{store_id}/promotions", response_class=HTMLResponse)
async def create_promotion(visitor: CurrentVisitor, store_id: str) -> Response:
    values = await form_values(visitor.request)
    kind = pick(_KINDS, values.get("kind"), "percent_off")
    try:
        made = await visitor.api.create_promotion(
            store_id, {"name": values.get("name", ""), "kind": kind}
        )
    except ApiProblem as problem:
        return await _promotions_page(visitor, store_id, refused(visitor, values, problem), 400)
    flash(visitor.request, _PROMOTION_DONE["created"])
    return redirect(f"/partners/{store_id}/promotions/{made['id']}")


_PROMOTION_DONE = {
    "created": "partners.promotion_created",
    "configured": "partners.promotion_configured",
    "activated": "partners.promotion_activated",
    "problem": "partners.problem_sent",
}


async def _promotion_page(
    visitor: Visitor,
    store_id: str,
    promotion_id: str,
    form: FormState | None = None,
    problem_form: FormState | None = None,
    status_code: int = 200,
) -> Response:
    context = await store_context(visitor, store_id)
    promotion = await visitor.api.get_promotion(store_id, promotion_id)
    menu = await every_item(partial(visitor.api.list_products, store_id))
    if form is None:
        form = FormState(
            values={
                "percent_off": str(promotion["percent_off"] or ""),
                "amount_off": amount_input(promotion["amount_off_cents"], visitor.locale)
                if promotion["amount_off_cents"]
                else "",
                "min_order": amount_input(promotion["min_order_cents"], visitor.locale)
                if promotion["min_order_cents"]
                else "",
            },
        )
    selected = set(visitor.request.query_params.getlist("product_ids")) or set(
        promotion["product_ids"]
    )
    return await render(
        visitor,
        "partners/promotion.html",
        {
            **context,
            "promotion": promotion,
            "menu": menu,
            "names": {p["id"]: p["name"] for p in menu},
            "selected": selected,
            "form": form,
            "problem_form": problem_form or FormState(),
        },
        status_code=status_code,
    )


@router.get("/partners/{store_id}/promotions/{promotion_id}", response_class=HTMLResponse)
async def promotion_page(visitor: CurrentVisitor, store_id: str, promotion_id: str) -> Response:
    return await _promotion_page(visitor, store_id, promotion_id)


@router.post(
    "/partners/{store_id}/promotions/{promotion_id}/configuration", response_class=HTMLResponse
)
async def configure_promotion(
    visitor: CurrentVisitor, store_id: str, promotion_id: str
) -> Response:
    form = await visitor.request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    context = await store_context(visitor, store_id)
    zone = context["zone"]
    body: PromotionConfigBody = {
        "starts_at": as_instant(values.get("starts_at", ""), zone) or "",
        "ends_at": as_instant(values.get("ends_at", ""), zone) or "",
        "product_ids": [str(v) for v in form.getlist("product_ids") if isinstance(v, str)],
    }
    typed = TypedInputs()
    percent = typed.number(values, "percent_off", "form.expects_percent")
    if percent is not None:
        body["percent_off"] = percent
    amount = typed.cents(values, "amount_off", "form.expects_amount")
    if amount is not None:
        body["amount_off_cents"] = amount
    minimum = typed.cents(values, "min_order", "form.expects_amount")
    if minimum is not None:
        body["min_order_cents"] = minimum
    try:
        await visitor.api.configure_promotion(store_id, promotion_id, body)
    except ApiProblem as problem:
        refusal = refused(visitor, values, problem)
        for api_name, input_name in (
            ("amount_off_cents", "amount_off"),
            ("min_order_cents", "min_order"),
        ):
            if api_name in refusal.errors:
                refusal.errors[input_name] = refusal.errors.pop(api_name)
        typed.explain(refusal, visitor.t)
        return await _promotion_page(visitor, store_id, promotion_id, refusal, None, 400)
    flash(visitor.request, _PROMOTION_DONE["configured"])
    return redirect(f"/partners/{store_id}/promotions/{promotion_id}")


@router.post("/partners/{store_id}/promotions/{promotion_id}/activate", response_class=HTMLResponse)
async def activate_promotion(visitor: CurrentVisitor, store_id: str, promotion_id: str) -> Response:
    try:
        await visitor.api.activate_promotion(store_id, promotion_id)
    except ApiProblem as problem:
        refusal = refused(visitor, {}, problem)
        return await _promotion_page(visitor, store_id, promotion_id, refusal, None, 409)
    flash(visitor.request, _PROMOTION_DONE["activated"])
    return redirect(f"/partners/{store_id}/promotions/{promotion_id}")


@router.post("/partners/{store_id}/promotions/{promotion_id}/problems", response_class=HTMLResponse)
async def promotion_problem(visitor: CurrentVisitor, store_id: str, promotion_id: str) -> Response:
    values = await form_values(visitor.request)
    try:
        await visitor.api.report_promotion_problem(
            store_id,
            promotion_id,
            {
                "description": values.get("description", ""),
                "reply_to_email": values.get("reply_to_email") or None,
            },
        )
    except ApiProblem as problem:
        refusal = refused(visitor, values, problem)
        return await _promotion_page(visitor, store_id, promotion_id, None, refusal, 400)
    flash(visitor.request, _PROMOTION_DONE["problem"])
    return redirect(f"/partners/{store_id}/promotions/{promotion_id}")


_CATEGORIES: tuple[MessageCategory, ...] = ("invoices_and_orders", "other")


async def _messages_page(
    visitor: Visitor, store_id: str, form: FormState, status_code: int = 200
) -> Response:
    context = await store_context(visitor, store_id)
    page, pager = await paged(
        visitor.request.url,
        partial(visitor.api.list_messages, store_id),
        asked(visitor.request),
        path=f"/partners/{store_id}/messages",
    )
    return await render(
        visitor,
        "partners/messages.html",
        {
            **context,
            "messages": page["items"],
            "pager": pager,
            "categories": [(c, visitor.t(f"partners.category.{c}")) for c in _CATEGORIES],
            "form": form,
        },
        status_code=status_code,
    )


@router.get("/partners/{store_id}/messages", response_class=HTMLResponse)
async def messages(visitor: CurrentVisitor, store_id: str) -> Response:
    return await _messages_page(visitor, store_id, FormState())


@router.post("/partners/{store_id}/messages", response_class=HTMLResponse)
async def send_message(visitor: CurrentVisitor, store_id: str) -> Response:
    values = await form_values(visitor.request)
    category = pick(_CATEGORIES, values.get("category"), "other")
    body: SupportMessageBody = {
        "category": category,
        "subject": values.get("subject", ""),
        "body": values.get("body", ""),
        "order_code": values.get("order_code") or None,
        "period": values.get("period") or None,
        "reply_to_email": values.get("reply_to_email") or None,
    }
    try:
        await visitor.api.send_message(store_id, body)
    except ApiProblem as problem:
        return await _messages_page(visitor, store_id, refused(visitor, values, problem), 400)
    flash(visitor.request, "partners.message_sent")
    return redirect(f"/partners/{store_id}/messages")


_BANK_DONE = {"sent": "partners.bank_sent", "proof": "partners.proof_sent"}


async def _bank_page(
    visitor: Visitor,
    store_id: str,
    form: FormState | None = None,
    proof_form: FormState | None = None,
    status_code: int = 200,
) -> Response:
    context = await store_context(visitor, store_id)
    page, pager = await paged(
        visitor.request.url,
        partial(visitor.api.list_bank_detail_changes, store_id),
        asked(visitor.request),
        path=f"/partners/{store_id}/bank-details",
        size=BANK_CHANGES_PAGE,
    )
    if form is None:
        form = FormState()
    return await render(
        visitor,
        "partners/bank.html",
        {
            **context,
            "changes": page["items"],
            "pager": pager,
            "form": form,
            "proof_form": proof_form or FormState(),
        },
        status_code=status_code,
    )


@router.get("/partners/{store_id}/bank-details", response_class=HTMLResponse)
async def bank_details(visitor: CurrentVisitor, store_id: str) -> Response:
    return await _bank_page(visitor, store_id)


@router.post("/partners/{store_id}/bank-details", response_class=HTMLResponse)
async def submit_bank_change(visitor: CurrentVisitor, store_id: str) -> Response:
    values = await form_values(visitor.request)
    try:
        await visitor.api.submit_bank_detail_change(
            store_id,
            {
                "iban": values.get("iban", ""),
                "bic": values.get("bic", ""),
                "account_holder": values.get("account_holder", ""),
            },
        )
    except ApiProblem as problem:
        return await _bank_page(visitor, store_id, refused(visitor, values, problem), None, 400)
    flash(visitor.request, _BANK_DONE["sent"])
    return redirect(f"/partners/{store_id}/bank-details")


@router.post("/partners/{store_id}/bank-details/{change_id}/proof", response_class=HTMLResponse)
async def upload_proof(visitor: CurrentVisitor, store_id: str, change_id: str) -> Response:
    """The file input's bytes and type go to the gateway as they are; its checks decide."""
    form = await visitor.request.form()
    upload = form.get("proof")
    if not isinstance(upload, UploadFile) or not upload.filename:
        refusal = FormState(
            errors={"proof": visitor.t("partners.proof_missing_file")},
            summary=visitor.t("problem.invalid_argument"),
        )
        return await _bank_page(visitor, store_id, None, refusal, 400)
    content = await upload.read()
    try:
        await visitor.api.upload_proof(
            store_id,
            change_id,
            content,
            upload.content_type or "application/octet-stream",
            filename=upload.filename,
        )
    except ApiProblem as problem:
        refusal = refused(visitor, {}, problem)
        if not refusal.errors:
            refusal.errors["proof"] = refusal.summary or ""
        return await _bank_page(visitor, store_id, None, refusal, 400)
    flash(visitor.request, _BANK_DONE["proof"])
    return redirect(f"/partners/{store_id}/bank-details")


@router.get("/partners/{store_id}/bank-details/{change_id}/proof")
async def download_proof(visitor: CurrentVisitor, store_id: str, change_id: str) -> Response:
    changes = await every_item(partial(visitor.api.list_bank_detail_changes, store_id))
    found = next((c for c in changes if c["id"] == change_id), None)
    content = await visitor.api.download_proof(store_id, change_id)
    proof = found["proof"] if found else None
    return proof_response(content, proof)


def proof_response(content: bytes, proof: object) -> Response:
    """The proof as an attachment, with the type it was uploaded with (never rendered inline:
    a document from outside stays a download)."""
    media = "application/octet-stream"
    name = "justificatif"
    if isinstance(proof, dict):
        media = str(proof.get("content_type") or media)
        name = str(proof.get("filename") or name)
    safe = "".join(ch for ch in name if ch.isalnum() or ch in "._-") or "justificatif"
    return Response(
        content,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{safe}"'},
    )


# Message ids this module builds at run time, declared for the extraction.


# Message ids this module builds at run time, declared for the extraction.
RUNTIME_MESSAGES = (
    N_("partners.bank_sent"),
    N_("partners.category.bank_details"),
    N_("partners.category.content_changes"),
    N_("partners.category.invoices_and_orders"),
    N_("partners.category.other"),
    N_("partners.deactivation_reason"),
    N_("partners.description"),
    N_("partners.kind.amount_off"),
    N_("partners.kind.free_delivery"),
    N_("partners.kind.percent_off"),
    N_("partners.price_invalid"),
    N_("partners.price_saved"),
    N_("partners.problem_sent"),
    N_("partners.product_deactivated"),
    N_("partners.product_reactivated"),
    N_("partners.products_page"),
    N_("partners.promotion_activated"),
    N_("partners.promotion_configured"),
    N_("partners.promotion_created"),
    N_("partners.proof_sent"),
    N_("partners.reactivate_at"),
    N_("partners.today_done"),
    N_("partners.today_missing"),
)
