"""What every partners page shares: the store header, refusals in the page's language, money
and the store's local times."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from web.client.transport import ApiProblem
from web.i18n import N_
from web.problems import FormState, field_errors
from web.session import Visitor

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


# A format the gateway's pattern refuses, said by what the field is.
_PATTERN_FIELDS = {"iban": "partners.detail.iban", "bic": "partners.detail.bic"}


def _detail(visitor: Visitor, detail: str) -> str | None:
    """The partners service's own English complaint said in the page's language; None when it
    is not one of them (the generic text by code, already on the form, stays)."""
    for english, key in _DETAILS:
        if english in detail:
            return visitor.t(key)
    if detail.startswith("must be within ") and detail.endswith(" days"):
        return visitor.t("partners.detail.within_days", n=detail.split()[3])
    if detail.startswith("must be between ") and " and " in detail:
        low, high = detail.removeprefix("must be between ").split(" and ", 1)
        return visitor.t("partners.detail.between", a=low, b=high)
    return None


def refused(visitor: Visitor, values: dict[str, str], problem: ApiProblem) -> FormState:
    """A refusal beside its fields, the service's English complaints said in the page's
    language; a 5xx or a 401 is no form's business and goes to the error page."""
    if problem.status >= 500 or problem.status == 401:
        raise problem
    form = FormState.refused(visitor.locale, values, problem, _FIELDS)
    for error in field_errors(problem):
        name = error.field.removeprefix("body.")
        name = _FIELDS.get(name, name)
        if name not in form.errors or not values.get(name, "x").strip():
            continue  # no input of its own, or left blank: "required" says it
        said = _detail(visitor, error.detail)
        if error.code == "string_pattern_mismatch" and name in _PATTERN_FIELDS:
            said = visitor.t(_PATTERN_FIELDS[name])
        if said is not None:
            form.errors[name] = said
    return form


async def store_context(visitor: Visitor, store_id: str) -> dict[str, Any]:
    """The store (the gateway refuses another store's: that reaches the error page)."""
    await visitor.me()
    store = await visitor.api.get_store(store_id)
    return {"store": store, "store_id": store_id, "zone": store["timezone"]}


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


# Message ids this module builds at run time, declared for the extraction.
RUNTIME_MESSAGES = (
    N_("partners.courier_phone"),
    N_("partners.detail.bic"),
    N_("partners.detail.deactivated"),
    N_("partners.detail.iban"),
    N_("partners.detail.must_be_future"),
    N_("partners.detail.not_on_menu"),
    N_("partners.detail.proof_content"),
    N_("partners.detail.proof_type"),
    N_("partners.detail.same_product"),
    N_("partners.done_answer"),
    N_("partners.done_courier_contact"),
    N_("partners.done_courier_report"),
    N_("partners.done_out_of_stock"),
    N_("partners.funder.partner"),
    N_("partners.funder.platform"),
    N_("partners.home"),
    N_("partners.kind.payment"),
    N_("partners.kind.refund"),
    N_("partners.open"),
    N_("partners.title"),
    N_("problem.already_active"),
    N_("problem.already_cancelled"),
    N_("problem.already_checked_in"),
    N_("problem.already_decided"),
    N_("problem.already_refunded"),
    N_("problem.answer_deadline_passed"),
    N_("problem.answer_not_settled"),
    N_("problem.change_decided"),
    N_("problem.change_open"),
    N_("problem.decided"),
    N_("problem.escalation_exists"),
    N_("problem.escalation_open"),
    N_("problem.invalid_transition"),
    N_("problem.no_courier"),
    N_("problem.no_escalation"),
    N_("problem.not_awaiting_answer"),
    N_("problem.not_configured"),
    N_("problem.not_escalated"),
    N_("problem.not_paid"),
    N_("problem.order_in_progress"),
    N_("problem.order_not_in_progress"),
    N_("problem.period_ended"),
    N_("problem.promotion_active"),
    N_("problem.proof_missing"),
    N_("problem.refunded"),
    N_("problem.reported"),
    N_("problem.store_exists"),
    N_("status.accepted"),
    N_("status.applied"),
    N_("status.approved"),
    N_("status.awaiting_answer"),
    N_("status.awaiting_proof"),
    N_("status.cancelled"),
    N_("status.collected"),
    N_("status.configured"),
    N_("status.delivered"),
    N_("status.draft"),
    N_("status.ended"),
    N_("status.escalated"),
    N_("status.item_replaced"),
    N_("status.out_of_stock"),
    N_("status.pending"),
    N_("status.pending_ticket"),
    N_("status.proof_submitted"),
    N_("status.refunded"),
    N_("status.rejected"),
    N_("status.replaced"),
    N_("status.ticket_opened"),
)
