"""The store's menu and account pages: products (price, deactivation), content changes, the daily
check-in, promotions (create, configure, activate, report a problem), messages to support and
the bank-detail change with its proof."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from web.client.api import (
    ContentChangeBody,
    DeactivateBody,
    MessageCategory,
    PromotionConfigBody,
    PromotionKind,
    SupportMessageBody,
)
from web.client.transport import ApiProblem
from web.deps import CurrentVisitor
from web.formatting import amount_input
from web.i18n import N_
from web.pages import form_values, redirect, render
from web.portals.partners_common import as_instant, parse_cents, pick, refused, store_context
from web.problems import FormState
from web.session import Visitor

router = APIRouter()


def _product_options(visitor: Visitor, products: list[dict[str, object]]) -> list[tuple[str, str]]:
    return [("", visitor.t("partners.new_product"))] + [
        (str(p["id"]), str(p["name"])) for p in products
    ]


async def _products_page(
    visitor: Visitor,
    store_id: str,
    forms: dict[str, FormState] | None = None,
    done: str | None = None,
    status_code: int = 200,
) -> Response:
    context = await store_context(visitor, store_id)
    page = await visitor.api.list_products(store_id, page_size=200)
    return await render(
        visitor,
        "partners/products.html",
        {**context, "products": page["items"], "forms": forms or {}, "done": done},
        status_code=status_code,
    )


@router.get("/partners/{store_id}/products", response_class=HTMLResponse)
async def products(visitor: CurrentVisitor, store_id: str, saved: str = "") -> Response:
    done = visitor.t("partners.product_saved", name=saved) if saved else None
    return await _products_page(visitor, store_id, done=done)


@router.post("/partners/{store_id}/products/{product_id}/price", response_class=HTMLResponse)
async def set_price(visitor: CurrentVisitor, store_id: str, product_id: str) -> Response:
    values = await form_values(visitor.request)
    cents = parse_cents(values.get("price", ""))
    if cents is None:
        form = FormState(
            values=values,
            errors={"price": visitor.t("partners.price_invalid")},
            summary=visitor.t("problem.invalid_argument"),
        )
        return await _products_page(visitor, store_id, {product_id: form}, status_code=400)
    try:
        product = await visitor.api.set_price(store_id, product_id, {"price_cents": cents})
    except ApiProblem as problem:
        form = refused(visitor, values, problem)
        if "price_cents" in form.errors:
            form.errors["price"] = form.errors.pop("price_cents")
        return await _products_page(visitor, store_id, {product_id: form}, status_code=400)
    return redirect(f"/partners/{store_id}/products?saved={product['name']}#p-{product_id}")


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
        return await _products_page(visitor, store_id, {product_id: form}, status_code=400)
    return redirect(f"/partners/{store_id}/products?saved={product['name']}#p-{product_id}")


@router.post("/partners/{store_id}/products/{product_id}/activate", response_class=HTMLResponse)
async def activate(visitor: CurrentVisitor, store_id: str, product_id: str) -> Response:
    product = await visitor.api.activate_product(store_id, product_id)
    return redirect(f"/partners/{store_id}/products?saved={product['name']}#p-{product_id}")


async def _content_page(
    visitor: Visitor, store_id: str, form: FormState, status_code: int = 200
) -> Response:
    context = await store_context(visitor, store_id)
    changes = await visitor.api.list_content_changes(store_id, page_size=50)
    page = await visitor.api.list_products(store_id, page_size=200)
    names = {p["id"]: p["name"] for p in page["items"]}
    return await render(
        visitor,
        "partners/content_changes.html",
        {
            **context,
            "changes": changes["items"],
            "names": names,
            "options": _product_options(visitor, list(page["items"])),  # type: ignore[arg-type]
            "form": form,
        },
        status_code=status_code,
    )


@router.get("/partners/{store_id}/content-changes", response_class=HTMLResponse)
async def content_changes(visitor: CurrentVisitor, store_id: str, sent: str = "") -> Response:
    form = FormState(done=visitor.t("partners.content_sent") if sent else None)
    return await _content_page(visitor, store_id, form)


@router.post("/partners/{store_id}/content-changes", response_class=HTMLResponse)
async def submit_content_change(visitor: CurrentVisitor, store_id: str) -> Response:
    values = await form_values(visitor.request)
    body: ContentChangeBody = {
        "product_id": values.get("product_id") or None,
        "proposed_name": values.get("proposed_name") or None,
        "proposed_description": values.get("proposed_description") or None,
        "proposed_price_cents": parse_cents(values.get("proposed_price", "")),
        "note": values.get("note") or None,
        "reply_to_email": values.get("reply_to_email") or None,
    }
    try:
        await visitor.api.submit_content_change(store_id, body)
    except ApiProblem as problem:
        form = refused(visitor, values, problem)
        if "proposed_price_cents" in form.errors:
            form.errors["proposed_price"] = form.errors.pop("proposed_price_cents")
        return await _content_page(visitor, store_id, form, 400)
    return redirect(f"/partners/{store_id}/content-changes?sent=1")


async def _check_ins_page(
    visitor: Visitor, store_id: str, form: FormState, status_code: int = 200
) -> Response:
    context = await store_context(visitor, store_id)
    page = await visitor.api.list_check_ins(store_id, page_size=31)
    return await render(
        visitor,
        "partners/check_ins.html",
        {**context, "check_ins": page["items"], "form": form},
        status_code=status_code,
    )


@router.get("/partners/{store_id}/check-ins", response_class=HTMLResponse)
async def check_ins(visitor: CurrentVisitor, store_id: str, day: str = "") -> Response:
    form = FormState(done=visitor.t("partners.checked_in", day=day) if day else None)
    return await _check_ins_page(visitor, store_id, form)


@router.post("/partners/{store_id}/check-ins", response_class=HTMLResponse)
async def check_in(visitor: CurrentVisitor, store_id: str) -> Response:
    try:
        done = await visitor.api.check_in(store_id)
    except ApiProblem as problem:
        return await _check_ins_page(visitor, store_id, refused(visitor, {}, problem), 409)
    return redirect(f"/partners/{store_id}/check-ins?day={done['day']}")


_KINDS: tuple[PromotionKind, ...] = ("percent_off", "amount_off", "free_delivery")


async def _promotions_page(
    visitor: Visitor, store_id: str, form: FormState, status_code: int = 200
) -> Response:
    context = await store_context(visitor, store_id)
    active = await visitor.api.list_promotions(store_id, status="active", page_size=50)
    every = await visitor.api.list_promotions(store_id, page_size=50)
    return await render(
        visitor,
        "partners/promotions.html",
        {
            **context,
            "active": active["items"],
            "promotions": every["items"],
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
    return redirect(f"/partners/{store_id}/promotions/{made['id']}?done=created")


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
    menu = await visitor.api.list_products(store_id, page_size=200)
    if form is None:
        done = _PROMOTION_DONE.get(visitor.request.query_params.get("done", ""))
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
            done=visitor.t(done) if done else None,
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
            "menu": menu["items"],
            "names": {p["id"]: p["name"] for p in menu["items"]},
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
    percent = values.get("percent_off", "").strip()
    if percent:
        body["percent_off"] = int(percent) if percent.isdigit() else -1
    amount = parse_cents(values.get("amount_off", ""))
    if amount is not None:
        body["amount_off_cents"] = amount
    minimum = parse_cents(values.get("min_order", ""))
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
        return await _promotion_page(visitor, store_id, promotion_id, refusal, None, 400)
    return redirect(f"/partners/{store_id}/promotions/{promotion_id}?done=configured")


@router.post("/partners/{store_id}/promotions/{promotion_id}/activate", response_class=HTMLResponse)
async def activate_promotion(visitor: CurrentVisitor, store_id: str, promotion_id: str) -> Response:
    try:
        await visitor.api.activate_promotion(store_id, promotion_id)
    except ApiProblem as problem:
        refusal = refused(visitor, {}, problem)
        return await _promotion_page(visitor, store_id, promotion_id, refusal, None, 409)
    return redirect(f"/partners/{store_id}/promotions/{promotion_id}?done=activated")


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
    return redirect(f"/partners/{store_id}/promotions/{promotion_id}?done=problem")


_CATEGORIES: tuple[MessageCategory, ...] = ("invoices_and_orders", "other")


async def _messages_page(
    visitor: Visitor, store_id: str, form: FormState, status_code: int = 200
) -> Response:
    context = await store_context(visitor, store_id)
    page = await visitor.api.list_messages(store_id, page_size=50)
    return await render(
        visitor,
        "partners/messages.html",
        {
            **context,
            "messages": page["items"],
            "categories": [(c, visitor.t(f"partners.category.{c}")) for c in _CATEGORIES],
            "form": form,
        },
        status_code=status_code,
    )


@router.get("/partners/{store_id}/messages", response_class=HTMLResponse)
async def messages(visitor: CurrentVisitor, store_id: str, sent: str = "") -> Response:
    form = FormState(done=visitor.t("partners.message_sent") if sent else None)
    return await _messages_page(visitor, store_id, form)


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
    return redirect(f"/partners/{store_id}/messages?sent=1")


_BANK_DONE = {"sent": "partners.bank_sent", "proof": "partners.proof_sent"}


async def _bank_page(
    visitor: Visitor,
    store_id: str,
    form: FormState | None = None,
    proof_form: FormState | None = None,
    status_code: int = 200,
) -> Response:
    context = await store_context(visitor, store_id)
    page = await visitor.api.list_bank_detail_changes(store_id, page_size=20)
    if form is None:
        done = _BANK_DONE.get(visitor.request.query_params.get("done", ""))
        form = FormState(done=visitor.t(done) if done else None)
    return await render(
        visitor,
        "partners/bank.html",
        {
            **context,
            "changes": page["items"],
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
    return redirect(f"/partners/{store_id}/bank-details?done=sent")


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
    return redirect(f"/partners/{store_id}/bank-details?done=proof")


@router.get("/partners/{store_id}/bank-details/{change_id}/proof")
async def download_proof(visitor: CurrentVisitor, store_id: str, change_id: str) -> Response:
    changes = await visitor.api.list_bank_detail_changes(store_id, page_size=20)
    found = next((c for c in changes["items"] if c["id"] == change_id), None)
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
    N_("partners.problem_sent"),
    N_("partners.promotion_activated"),
    N_("partners.promotion_configured"),
    N_("partners.promotion_created"),
    N_("partners.proof_sent"),
    N_("partners.reactivate_at"),
    N_("partners.today_done"),
    N_("partners.today_missing"),
)
