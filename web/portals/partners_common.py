"""What every partners page shares: the messages, the store header, refusals in French, money
and the store's local times."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from web.client.transport import ApiProblem
from web.problems import FormState, field_message
from web.session import Visitor

MESSAGES: dict[str, tuple[str, str]] = {
    "partners.title": ("Espace partenaire", "Partner back office"),
    "partners.menu": ("Menu de l'espace partenaire", "Partner back office menu"),
    "partners.home": ("Accueil", "Home"),
    "partners.orders": ("Commandes acceptées", "Accepted orders"),
    "partners.history": ("Historique", "History"),
    "partners.products": ("Mon menu", "My menu"),
    "partners.content_changes": ("Modifications du contenu", "Content changes"),
    "partners.check_ins": ("Pointage", "Check-in"),
    "partners.promotions": ("Promotions", "Promotions"),
    "partners.messages": ("Aide et ressources", "Help and resources"),
    "partners.bank": ("Coordonnées bancaires", "Bank details"),
    "partners.urgent": (
        "Appelez l'assistance aux partenaires uniquement pour les urgences et les commandes en "
        "cours : +212520430012. Pour le reste, envoyez-nous un message.",
        "Call partner support only for emergencies and orders in progress: +212520430012. "
        "For anything else, send us a message.",
    ),
    "partners.settings": ("Contact opérations", "Operations contact"),
    "partners.settings_help": (
        "Les réponses de l'assistance sont envoyées à cette adresse, sauf si votre message en "
        "précise une autre.",
        "Support's answers go to this address unless your message names another.",
    ),
    "partners.operations_email": ("E-mail du contact opérations", "Operations contact e-mail"),
    "partners.phone": ("Téléphone", "Phone"),
    "partners.save": ("Enregistrer", "Save"),
    "partners.settings_saved": ("Contact opérations enregistré.", "Operations contact saved."),
    "partners.store_bank": ("Compte bancaire actuel", "Current bank account"),
    "partners.none": ("Aucun", "None"),
    "partners.code": ("Code", "Code"),
    "partners.status": ("Statut", "Status"),
    "partners.created": ("Passée le", "Placed"),
    "partners.closed": ("Clôturée le", "Closed"),
    "partners.total": ("Total", "Total"),
    "partners.payment": ("Paiement", "Payment"),
    "partners.paid": ("Payée", "Paid"),
    "partners.unpaid": ("Non payée", "Not paid"),
    "partners.reason": ("Motif", "Reason"),
    "partners.open": ("Ouvrir", "Open"),
    "partners.no_orders": ("Aucune commande.", "No orders."),
    "partners.next_page": ("Page suivante", "Next page"),
    "partners.orders_help": (
        "Une commande absente de cette liste a probablement été annulée : vérifiez l'historique.",
        "An order missing from this list was probably cancelled: check the history.",
    ),
    "partners.filter": ("Filtrer", "Filter"),
    "partners.all": ("Toutes", "All"),
    "partners.from_day": ("Du", "From"),
    "partners.to_day": ("Au", "To"),
    "status.accepted": ("Acceptée", "Accepted"),
    "status.collected": ("Collectée", "Collected"),
    "status.delivered": ("Livrée", "Delivered"),
    "status.cancelled": ("Annulée", "Cancelled"),
    "status.refunded": ("Remboursée", "Refunded"),
    "status.awaiting_answer": ("En attente du client", "Awaiting the customer"),
    "status.item_replaced": ("Produit remplacé", "Item replaced"),
    "status.escalated": ("Transmise à l'assistance", "Escalated to support"),
    "status.out_of_stock": ("Épuisé", "Out of stock"),
    "status.replaced": ("Remplacé", "Replaced"),
    "status.active": ("Actif", "Active"),
    "status.draft": ("Brouillon", "Draft"),
    "status.configured": ("Configurée", "Configured"),
    "status.ended": ("Terminée", "Ended"),
    "status.pending": ("En attente", "Pending"),
    "status.applied": ("Appliquée", "Applied"),
    "status.rejected": ("Refusée", "Rejected"),
    "status.awaiting_proof": ("Justificatif attendu", "Awaiting proof"),
    "status.proof_submitted": ("Justificatif envoyé", "Proof submitted"),
    "status.approved": ("Approuvée", "Approved"),
    "status.pending_ticket": ("En cours de transmission", "Being forwarded"),
    "status.ticket_opened": ("Ticket ouvert", "Ticket opened"),
    "status.inactive": ("Désactivé", "Deactivated"),
    "partners.order_title": ("Commande {code}", "Order {code}"),
    "partners.customer": ("Client", "Customer"),
    "partners.courier": ("Coursier", "Courier"),
    "partners.items": ("Produits", "Items"),
    "partners.product": ("Produit", "Product"),
    "partners.quantity": ("Quantité", "Quantity"),
    "partners.unit_price": ("Prix unitaire", "Unit price"),
    "partners.payments": ("Paiements", "Payments"),
    "partners.kind.payment": ("Paiement", "Payment"),
    "partners.kind.refund": ("Remboursement", "Refund"),
    "partners.funded_by": ("Financé par", "Funded by"),
    "partners.funder.platform": ("La plateforme", "The platform"),
    "partners.funder.partner": ("Le partenaire", "The partner"),
    "partners.events": ("Suivi", "Timeline"),
    "partners.event_at": ("Quand", "When"),
    "partners.event_kind": ("Étape", "Step"),
    "partners.event_actor": ("Par", "By"),
    "partners.event_detail": ("Détail", "Detail"),
    "partners.cancellation_reason": ("Raison de l'annulation", "Cancellation reason"),
    "partners.refund_reason": ("Raison du remboursement", "Refund reason"),
    "partners.payment_made": ("Un paiement a eu lieu", "A payment was made"),
    "partners.no_payment": ("Aucun paiement", "No payment"),
    "partners.out_of_stock": ("Un produit est épuisé", "A product ran out"),
    "partners.out_of_stock_help": (
        "Le produit est désactivé. Appelez le client et proposez une solution alternative, "
        "puis indiquez sa réponse ci-dessous.",
        "The product is deactivated. Call the customer and offer an alternative, then record "
        "their answer below.",
    ),
    "partners.item_id": ("Produit épuisé", "Product that ran out"),
    "partners.note": ("Note (facultatif)", "Note (optional)"),
    "partners.report_out_of_stock": ("Signaler le produit épuisé", "Report it out of stock"),
    "partners.escalation": ("Produit épuisé : suivi", "Out of stock: follow-up"),
    "partners.answer_deadline": ("Réponse attendue avant", "Answer expected before"),
    "partners.customer_answer": ("Réponse du client", "The customer's answer"),
    "partners.customer_accepted": (
        "Le client accepte l'alternative",
        "The customer accepts the alternative",
    ),
    "partners.customer_refused": (
        "Le client refuse : l'assistance annule la commande",
        "The customer refuses: support cancels the order",
    ),
    "partners.replacement_product_id": ("Produit de remplacement", "Replacement product"),
    "partners.replacement_quantity": ("Quantité de remplacement", "Replacement quantity"),
    "partners.send_answer": ("Enregistrer la réponse", "Record the answer"),
    "partners.report_courier": ("Signaler le coursier", "Report the courier"),
    "partners.courier_reason": ("Motif du signalement", "Reason for the report"),
    "partners.courier.late": ("Retard", "Late"),
    "partners.courier.behaviour": ("Comportement", "Behaviour"),
    "partners.courier.damaged_order": ("Commande abîmée", "Damaged order"),
    "partners.courier.other": ("Autre", "Other"),
    "partners.comment": ("Commentaire (facultatif)", "Comment (optional)"),
    "partners.courier_reported": ("Coursier signalé : {reason}", "Courier reported: {reason}"),
    "partners.contact_courier": ("Contacter le coursier", "Contact the courier"),
    "partners.contact_help": (
        "Le coursier est en retard ? Contactez-le directement ou appelez-nous.",
        "Is the courier late? Contact them directly or call us.",
    ),
    "partners.message": ("Message (facultatif)", "Message (optional)"),
    "partners.done_out_of_stock": (
        "Produit signalé épuisé et désactivé. Appelez le client.",
        "Product reported out of stock and deactivated. Call the customer.",
    ),
    "partners.done_answer": (
        "Réponse du client enregistrée.",
        "The customer's answer is recorded.",
    ),
    "partners.done_courier_report": ("Coursier signalé.", "Courier reported."),
    "partners.done_courier_contact": (
        "Contact avec le coursier enregistré.",
        "Contact with the courier recorded.",
    ),
    "partners.courier_phone": ("Téléphone du coursier : {phone}", "Courier's phone: {phone}"),
    "partners.detail.must_be_future": (
        "La date doit être dans le futur.",
        "The date must be in the future.",
    ),
    "partners.detail.within_days": (
        "La date doit être dans les {n} jours.",
        "The date must be within {n} days.",
    ),
    "partners.detail.not_on_menu": ("Ce produit n'est pas au menu.", "Not on the menu."),
    "partners.detail.same_product": (
        "C'est le produit épuisé : choisissez-en un autre.",
        "This is the product that ran out: choose another.",
    ),
    "partners.detail.deactivated": ("Ce produit est désactivé.", "This product is deactivated."),
    "partners.detail.between": ("Entre {a} et {b}.", "Between {a} and {b}."),
    "partners.detail.iban": ("Cet IBAN n'est pas valide.", "This IBAN is not valid."),
    "partners.detail.bic": (
        "Ce BIC n'est pas valide (8 ou 11 caractères).",
        "This BIC is not valid (8 or 11 characters).",
    ),
    "partners.detail.proof_type": (
        "Le justificatif doit être un PDF, un PNG ou un JPEG.",
        "The proof must be a PDF, PNG or JPEG.",
    ),
    "partners.detail.proof_content": (
        "Le fichier est vide, trop gros, ou n'est pas du type annoncé.",
        "The file is empty, too large, or not of the type it claims.",
    ),
    "problem.already_active": ("La promotion est déjà active.", "The promotion is already active."),
    "problem.already_cancelled": ("Cette commande est déjà annulée.", "Already cancelled."),
    "problem.already_checked_in": (
        "Vous avez déjà pointé aujourd'hui.",
        "You already checked in today.",
    ),
    "problem.already_decided": (
        "Cette demande a déjà été traitée.",
        "This request was already decided.",
    ),
    "problem.already_refunded": ("Cette commande est déjà remboursée.", "Already refunded."),
    "problem.answer_deadline_passed": (
        "Le délai de réponse est passé : l'assistance prend le relais.",
        "The deadline to answer has passed: support takes it from here.",
    ),
    "problem.answer_not_settled": (
        "La réponse du client n'est pas encore connue.",
        "The customer's answer is not settled yet.",
    ),
    "problem.change_decided": (
        "Cette demande est déjà traitée : aucun justificatif ne peut être ajouté.",
        "This change is decided: no proof can be added.",
    ),
    "problem.change_open": (
        "Une demande de changement de coordonnées bancaires est déjà en cours.",
        "A bank-detail change is already open.",
    ),
    "problem.decided": ("Cette demande est déjà traitée.", "This change is already decided."),
    "problem.escalation_exists": (
        "Un produit de cette commande a déjà été signalé épuisé : contactez l'assistance.",
        "This order already had an out-of-stock report: contact support.",
    ),
    "problem.escalation_open": (
        "Un signalement de produit épuisé est en cours sur cette commande.",
        "An out-of-stock escalation is open on this order.",
    ),
    "problem.invalid_transition": (
        "Ce changement de statut n'est pas possible.",
        "This status change is not possible.",
    ),
    "problem.no_courier": ("Aucun coursier sur cette commande.", "No courier on this order."),
    "problem.no_escalation": (
        "Aucun produit de cette commande n'a été signalé épuisé.",
        "No product of this order ran out.",
    ),
    "problem.not_awaiting_answer": (
        "La réponse du client n'est plus attendue sur cette commande.",
        "The customer's answer is no longer expected.",
    ),
    "problem.not_configured": (
        "Configurez la promotion avant de l'activer.",
        "Configure the promotion before activating it.",
    ),
    "problem.not_escalated": (
        "Cette commande n'est pas transmise à l'assistance.",
        "This order is not escalated.",
    ),
    "problem.not_paid": ("Aucun paiement sur cette commande.", "No payment on this order."),
    "problem.order_in_progress": (
        "Cette commande est en cours : contactez le coursier plutôt.",
        "This order is in progress: contact the courier instead.",
    ),
    "problem.order_not_in_progress": (
        "Cette commande n'est plus en cours (elle a peut-être été annulée) : voyez l'historique.",
        "This order is no longer in progress (maybe cancelled): see the history.",
    ),
    "problem.period_ended": (
        "La période de la promotion est terminée : configurez-la à nouveau.",
        "The promotion's period has ended: configure it again.",
    ),
    "problem.promotion_active": (
        "Une promotion active ne peut pas être modifiée.",
        "An active promotion cannot be changed.",
    ),
    "problem.proof_missing": (
        "Aucun justificatif de la banque n'a été envoyé.",
        "No proof from the bank was uploaded.",
    ),
    "problem.refunded": ("Cette commande a été remboursée.", "This order was refunded."),
    "problem.reported": ("Le coursier est déjà signalé.", "The courier is already reported."),
    "problem.store_exists": ("Ce magasin existe déjà.", "This store already exists."),
}

# The service's own field names where the page's inputs say it otherwise.
_FIELDS = {
    "reactivate_time": "reactivate_at",
    "start_time": "starts_at",
    "end_time": "ends_at",
    "content_type": "proof",
    "content": "proof",
    "filename": "proof",
}

_DETAILS: tuple[tuple[str, str], ...] = (
    ("must be in the future", "partners.detail.must_be_future"),
    ("is not on this store's menu", "partners.detail.not_on_menu"),
    ("is the product that ran out", "partners.detail.same_product"),
    ("is not available (deactivated)", "partners.detail.deactivated"),
    ("is not a valid IBAN", "partners.detail.iban"),
    ("is not a valid BIC", "partners.detail.bic"),
    ("must be application/pdf", "partners.detail.proof_type"),
    ("is empty", "partners.detail.proof_content"),
    ("is larger than", "partners.detail.proof_content"),
    ("document", "partners.detail.proof_content"),
)


def _detail(visitor: Visitor, detail: str) -> str:
    for english, key in _DETAILS:
        if english in detail:
            return visitor.t(key)
    if detail.startswith("must be within ") and detail.endswith(" days"):
        return visitor.t("partners.detail.within_days", n=detail.split()[3])
    if detail.startswith("must be between ") and " and " in detail:
        low, high = detail.removeprefix("must be between ").split(" and ", 1)
        return visitor.t("partners.detail.between", a=low, b=high)
    return field_message(visitor.locale, detail)


def refused(visitor: Visitor, values: dict[str, str], problem: ApiProblem) -> FormState:
    """A refusal beside its fields, the service's English complaints said in French; a 5xx or
    a 401 is no form's business and goes to the error page."""
    if problem.status >= 500 or problem.status == 401:
        raise problem
    form = FormState.refused(visitor.locale, values, problem, _FIELDS)
    for api_field, detail in problem.field_errors.items():
        name = api_field.removeprefix("body.")
        name = _FIELDS.get(name, name)
        if name in form.errors:
            form.errors[name] = _detail(visitor, detail)
    return form


async def store_context(visitor: Visitor, store_id: str) -> dict[str, Any]:
    """The store (the gateway refuses another store's: that reaches the error page)."""
    await visitor.me()
    store = await visitor.api.get_store(store_id)
    return {"store": store, "store_id": store_id, "zone": store["timezone"]}


def money(cents: int | None, currency: str | None = "EUR", locale: str = "fr") -> str:
    if cents is None:
        return "—"
    amount = f"{cents / 100:.2f}"
    symbol = {"EUR": "€"}.get(currency or "EUR", currency or "")
    return f"{amount.replace('.', ',')} {symbol}" if locale == "fr" else f"{symbol}{amount}"


def as_instant(raw: str, zone: str) -> str | None:
    """A datetime-local input ('2026-12-05T11:00', the store's clock) → RFC 3339."""
    if not raw.strip():
        return None
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        return raw.strip()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment.isoformat()


T = TypeVar("T", bound=str)


def pick(options: tuple[T, ...], value: str | None, default: T) -> T:
    """One of the API's literal values, from what a form sent (anything else: the default)."""
    return next((option for option in options if option == value), default)
