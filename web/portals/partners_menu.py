"""The store's menu and account pages: products (price, deactivation), content changes, the daily
check-in, promotions (create, configure, activate, report a problem), messages to support and
the bank-detail change with its proof."""

from __future__ import annotations

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
from web.forms import TypedInputs
from web.i18n import register
from web.pages import form_values, redirect, render
from web.portals.partners_common import (
    as_instant,
    money,
    pick,
    refused,
    store_context,
)
from web.problems import FormState
from web.session import Visitor

MESSAGES: dict[str, tuple[str, str]] = {
    "partners.products_help": (
        "Vous pouvez désactiver un produit épuisé et changer les prix directement. Pour un nom, "
        "une description ou un nouveau produit, demandez une modification du contenu.",
        "You can deactivate a product that ran out and change prices directly. For a name, a "
        "description or a new product, ask for a content change.",
    ),
    "partners.price": ("Prix (€)", "Price (€)"),
    "partners.set_price": ("Changer le prix", "Change the price"),
    "partners.deactivate": ("Désactiver", "Deactivate"),
    "partners.activate": ("Réactiver", "Reactivate"),
    "partners.deactivation_reason": (
        "Raison (facultatif, 200 caractères au plus)",
        "Reason (optional, at most 200 characters)",
    ),
    "partners.reactivate_at": (
        "Réactiver automatiquement le (facultatif)",
        "Reactivate by itself on (optional)",
    ),
    "partners.reactivate_help": ("Dans les 90 jours.", "Within 90 days."),
    "partners.until": ("Jusqu'au {at}", "Until {at}"),
    "partners.price_invalid": (
        "Un montant est attendu, par exemple 9,50.",
        "An amount is expected, e.g. 9.50.",
    ),
    "partners.description": ("Description", "Description"),
    "partners.content_help": (
        "Les noms et descriptions sont modifiés par notre équipe après votre demande.",
        "Names and descriptions are changed by our team after your request.",
    ),
    "partners.product_id": ("Produit concerné", "Product"),
    "partners.new_product": ("Nouveau produit", "New product"),
    "partners.proposed_name": ("Nouveau nom", "New name"),
    "partners.proposed_description": ("Nouvelle description", "New description"),
    "partners.proposed_price": ("Prix du nouveau produit (€)", "New product's price (€)"),
    "partners.reply_to_email": ("Répondre à (facultatif)", "Reply to (optional)"),
    "partners.reply_help": (
        "Par défaut : l'e-mail du contact opérations.",
        "By default: the operations contact e-mail.",
    ),
    "partners.send": ("Envoyer", "Send"),
    "partners.content_sent": ("Demande de modification envoyée.", "Content change sent."),
    "partners.decision_note": ("Décision", "Decision"),
    "partners.check_in_help": (
        "Pointez chaque jour. Si vous avez pointé et que le problème persiste, appelez-nous.",
        "Check in every day. If you did and the problem persists, call us.",
    ),
    "partners.check_in": ("Pointer aujourd'hui", "Check in today"),
    "partners.checked_in": ("Pointage enregistré pour le {day}.", "Checked in for {day}."),
    "partners.day": ("Jour", "Day"),
    "partners.at": ("Heure", "Time"),
    "partners.today_done": ("Vous avez pointé aujourd'hui.", "You checked in today."),
    "partners.today_missing": (
        "Vous n'avez pas encore pointé aujourd'hui.",
        "You have not checked in today.",
    ),
    "partners.promotion_new": ("Créer une promotion", "Create a promotion"),
    "partners.promotion_step1": ("Étape 1 : le nom et le type", "Step 1: name and kind"),
    "partners.promotion_step2": (
        "Étape 2 : la remise, les produits et la période",
        "Step 2: discount, products and period",
    ),
    "partners.promotion_step3": ("Étape 3 : l'activation", "Step 3: activation"),
    "partners.name": ("Nom", "Name"),
    "partners.kind": ("Type", "Kind"),
    "partners.kind.percent_off": ("Pourcentage de remise", "Percent off"),
    "partners.kind.amount_off": ("Montant de remise", "Amount off"),
    "partners.kind.free_delivery": ("Livraison offerte", "Free delivery"),
    "partners.create": ("Créer", "Create"),
    "partners.percent_off": ("Remise (%)", "Discount (%)"),
    "partners.amount_off": ("Remise (€)", "Discount (€)"),
    "partners.min_order": ("Commande minimum (€, facultatif)", "Minimum order (€, optional)"),
    "partners.promotion_products": (
        "Produits concernés (aucun : tout le menu)",
        "Products (none: the whole menu)",
    ),
    "partners.starts_at": ("Début", "Start"),
    "partners.ends_at": ("Fin", "End"),
    "partners.configure": ("Enregistrer la configuration", "Save the configuration"),
    "partners.activate_promotion": ("Activer la promotion", "Activate the promotion"),
    "partners.active_promotions": ("Promotions actives", "Active promotions"),
    "partners.all_promotions": ("Toutes les promotions", "All promotions"),
    "partners.discount": ("Remise", "Discount"),
    "partners.period": ("Période", "Period"),
    "partners.report_problem": ("Signaler un problème", "Report a problem"),
    "partners.problem_description": ("Décrivez le problème", "Describe the problem"),
    "partners.promotion_created": (
        "Promotion créée : configurez-la.",
        "Promotion created: configure it.",
    ),
    "partners.promotion_configured": (
        "Promotion configurée : activez-la.",
        "Promotion configured: activate it.",
    ),
    "partners.promotion_activated": ("Promotion activée.", "Promotion activated."),
    "partners.problem_sent": ("Problème signalé à l'assistance.", "Problem reported to support."),
    "partners.messages_help": (
        "Pour une facture ou une commande, précisez le code de commande ; pour un paiement, "
        "la période et le mois.",
        "For an invoice or an order, give the order code; for a payment, the period and month.",
    ),
    "partners.category": ("Sujet", "Topic"),
    "partners.category.invoices_and_orders": ("Factures et commandes", "Invoices and orders"),
    "partners.category.other": ("Autre", "Other"),
    "partners.category.content_changes": ("Modifications du contenu", "Content changes"),
    "partners.category.bank_details": ("Coordonnées bancaires", "Bank details"),
    "partners.subject": ("Objet", "Subject"),
    "partners.body": ("Message", "Message"),
    "partners.order_code": ("Code de commande", "Order code"),
    "partners.period_field": ("Période (ex. 2026-11)", "Period (e.g. 2026-11)"),
    "partners.message_sent": ("Message envoyé.", "Message sent."),
    "partners.sent_messages": ("Messages envoyés", "Messages sent"),
    "partners.bank_help": (
        "Indiquez les nouvelles coordonnées, puis joignez le justificatif émis par votre banque "
        "(PDF, PNG ou JPEG). Elles s'appliquent après vérification par notre équipe.",
        "Enter the new details, then attach the proof issued by your bank (PDF, PNG or JPEG). "
        "They apply once our team has checked it.",
    ),
    "partners.iban": ("IBAN", "IBAN"),
    "partners.bic": ("BIC", "BIC"),
    "partners.account_holder": ("Titulaire du compte", "Account holder"),
    "partners.bank_submit": ("Demander le changement", "Ask for the change"),
    "partners.bank_sent": (
        "Demande enregistrée : joignez maintenant le justificatif de la banque.",
        "Request recorded: now attach the bank's proof.",
    ),
    "partners.proof": ("Justificatif de la banque", "Proof from the bank"),
    "partners.upload": ("Envoyer le justificatif", "Upload the proof"),
    "partners.proof_sent": (
        "Justificatif envoyé : notre équipe va le vérifier.",
        "Proof uploaded: our team will check it.",
    ),
    "partners.proof_missing_file": ("Choisissez un fichier.", "Choose a file."),
    "partners.download_proof": ("Télécharger le justificatif", "Download the proof"),
    "partners.bank_changes": ("Demandes de changement", "Change requests"),
    "partners.requested": ("Demandée le", "Requested"),
}

register(MESSAGES)

# Added for the portal's journeys (issue 25); moved to the catalogs with the rest.
register(
    {
        "partners.price_saved": (
            "Nouveau prix de « {name} » : {price}.",
            "New price of “{name}”: {price}.",
        ),
        "partners.product_deactivated": (
            "« {name} » est désactivé : il n'est plus proposé aux clients.",
            "“{name}” is deactivated: customers no longer see it.",
        ),
        "partners.product_reactivated": (
            "« {name} » est réactivé : les clients peuvent de nouveau le commander.",
            "“{name}” is reactivated: customers can order it again.",
        ),
        "partners.products_page": ("Produits {first} à {last}", "Products {first} to {last}"),
        "partners.first_page": ("Première page", "First page"),
        "partners.edit_product": ("Modifier « {name} »", "Change “{name}”"),
    }
)

# Products per page of the menu: a phone scrolls through a page of them, not the whole menu.
PRODUCTS_PAGE = 20

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
    page = await visitor.api.list_products(
        store_id, page_size=PRODUCTS_PAGE, page_token=page_token or None
    )
    return await render(
        visitor,
        "partners/products.html",
        {
            **context,
            "products": page["items"],
            "forms": forms or {},
            "page_token": page_token,
            "next_page_token": page.get("next_page_token"),
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
    page = await visitor.api.list_check_ins(store_id, page_size=31)
    return await render(
        visitor,
        "partners/check_ins.html",
        {**context, "check_ins": page["items"], "form": form},
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
    menu = await visitor.api.list_products(store_id, page_size=200)
    if form is None:
        form = FormState(
            values={
                "percent_off": str(promotion["percent_off"] or ""),
                "amount_off": f"{promotion['amount_off_cents'] / 100:.2f}"
                if promotion["amount_off_cents"]
                else "",
                "min_order": f"{promotion['min_order_cents'] / 100:.2f}"
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
    page = await visitor.api.list_bank_detail_changes(store_id, page_size=20)
    if form is None:
        form = FormState()
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
