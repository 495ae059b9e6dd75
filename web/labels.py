"""Internal values said in words: audit events, an order's history, reasons and statuses.

The API carries machine values (`order.accepted`, `user:592573c3-…`, `total_cents: 1790`,
`merged`, a platform's cancellation code): a page never shows them as they are. Each has a text
in the catalogs, found here; a value the portal does not know yet gets a plain word ("Other
step"), never its code. tests/web/test_labels.py enumerates the values each service can write
and fails on one without a text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from web.formatting import local_time, money, number, show_date
from web.i18n import N_, has_text, translate


def label(locale: str, key: str, fallback: str) -> str:
    """The text of `key`, else the text of `fallback` (a plain word, never the key)."""
    return translate(locale, key if has_text(locale, key) else fallback)


def audit_event(locale: str, event: str) -> str:
    """An identity audit event (`profile.updated`) in words."""
    return label(locale, f"audit.{event}", "audit.other")


def record_event(locale: str, event: str) -> str:
    """An association's client-record journal event (`merged`, `deleted`) in words."""
    return label(locale, f"association.audit.{event}", "association.audit.other")


def failure_reason(locale: str, reason: str) -> str:
    """Why a program account was not updated by a process request."""
    return label(locale, f"failure.{reason}", "failure.other")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.strip().lower()).strip("_")


def cancellation_reason(locale: str, reason: str | None) -> str:
    """An order's cancellation reason: the delivery platform's code (`customer cancelled`,
    `product unavailable`) in words; a reason it has no code for is the platform's own text."""
    if not reason:
        return ""
    key = f"partners.cancel_reason.{_slug(reason)}"
    return translate(locale, key) if has_text(locale, key) else reason


_REPLACED = re.compile(
    r"^replaced by a new registration for the (?P<kind>.+) training « (?P<title>.+) » "
    r"of (?P<day>\d{4}-\d{2}-\d{2})$"
)


def registration_cancel_reason(locale: str, reason: str | None) -> str:
    """Why a training registration was cancelled (the service writes it in English)."""
    if not reason:
        return ""
    replaced = _REPLACED.match(reason)
    if replaced:
        return translate(
            locale,
            "association.cancel_reason.replaced",
            title=replaced.group("title"),
            day=show_date(replaced.group("day"), locale),
        )
    return translate(locale, "association.cancel_reason.other")


# --- an order's history --------------------------------------------------------------------

# Steps the store's own people take; every other step is the platform's or Guichet's.
_STORE_STEPS = frozenset(
    {
        "out_of_stock.reported",
        "alternative.accepted",
        "alternative.refused",
        "courier.reported",
        "courier.contacted",
    }
)
# Details kept out of the history: ids say nothing to a person.
_HIDDEN = frozenset({"item_id", "ticket_id"})


@dataclass(frozen=True)
class ShownEvent:
    at: str
    what: str
    who: str
    detail: str


def _detail_value(
    locale: str, kind: str, name: str, value: str, *, currency: str, zone: str | None
) -> str:
    if name in ("total_cents", "amount_cents"):
        return money(int(value), currency, locale) if value.lstrip("-").isdigit() else ""
    if name == "quantity":
        return number(int(value), locale) if value.isdigit() else value
    if name == "deadline":
        return local_time(value, zone, locale)
    if name == "funded_by":
        return label(locale, f"partners.funder.{value}", "partners.event.other_value")
    if name == "reason" and kind == "order.cancelled":
        return cancellation_reason(locale, value)
    if name == "reason" and kind == "courier.reported":
        return label(locale, f"partners.courier.{value}", "partners.courier.other")
    if name == "reason" and kind == "escalated_to_support":
        return label(locale, f"partners.escalated.{value}", "partners.event.other_value")
    if name == "outcome" and kind == "support_ticket.closed":
        return label(locale, f"partners.outcome.{value}", "partners.event.other_value")
    if name == "by" and kind == "order.cancelled":
        return label(locale, f"partners.cancelled_by.{value}", "partners.event.other_value")
    return value  # names, notes and messages people wrote


def order_event(
    locale: str,
    event: Mapping[str, Any],
    *,
    currency: str,
    zone: str | None,
    me: str | None,
) -> ShownEvent:
    """One step of an order's history, said: what happened, who did it, its details."""
    kind = str(event.get("kind") or "")
    step = kind.replace(".", "_")
    what = label(locale, f"partners.event.{step}", "partners.event.other")
    actor = str(event.get("actor") or "")
    if me and actor == f"user:{me}":
        who = translate(locale, "partners.actor.you")
    elif actor.startswith("service:"):
        who = translate(locale, "partners.actor.platform")
    elif kind in _STORE_STEPS:
        who = translate(locale, "partners.actor.store")
    else:
        who = translate(locale, "partners.actor.guichet")
    parts = []
    detail: Mapping[str, Any] = event.get("detail") or {}
    for name, raw in detail.items():
        if name in _HIDDEN or raw in (None, "", "None"):
            continue
        value = _detail_value(locale, kind, name, str(raw), currency=currency, zone=zone)
        if not value:
            continue
        # A detail's name for this step (`by` of a cancellation), else for every step.
        specific = f"partners.event_field.{step}.{name}"
        field = (
            translate(locale, specific)
            if has_text(locale, specific)
            else label(locale, f"partners.event_field.{name}", "partners.event_field.other")
        )
        parts.append(translate(locale, "label.pair", label=field, value=value))
    return ShownEvent(
        at=local_time(event.get("at"), zone, locale),
        what=what,
        who=who,
        detail=translate(locale, "label.separator").join(parts),
    )


# The values the services write today, each with its text (tests/web/test_labels.py checks
# that none is missing, reading the services' sources).
KNOWN = (
    N_("audit.other"),
    N_("audit.email.verified"),
    N_("audit.email_verification.sent"),
    N_("audit.login.failed"),
    N_("audit.login.succeeded"),
    N_("audit.logout"),
    N_("audit.organisation.created"),
    N_("audit.password_reset.sent"),
    N_("audit.password_reset.used"),
    N_("audit.profile.updated"),
    N_("audit.refresh_token.reused"),
    N_("audit.role.granted"),
    N_("audit.role.revoked"),
    N_("audit.signing_key.rotated"),
    N_("audit.user.created"),
    N_("audit.user.email_set"),
    N_("audit.user.registered"),
    N_("audit.user.validated"),
    N_("audit.username.recovered"),
    N_("association.audit.other"),
    N_("association.audit.merged"),
    N_("association.audit.deleted"),
    N_("association.cancel_reason.replaced"),
    N_("association.cancel_reason.other"),
    N_("failure.other"),
    N_("failure.batch_failed"),
    N_("failure.program_account_closed"),
    N_("label.pair"),
    N_("label.separator"),
    N_("partners.actor.you"),
    N_("partners.actor.platform"),
    N_("partners.actor.store"),
    N_("partners.actor.guichet"),
    N_("partners.cancel_reason.customer_cancelled"),
    N_("partners.cancel_reason.restaurant_closed_early"),
    N_("partners.cancel_reason.no_courier_available"),
    N_("partners.cancel_reason.address_unreachable"),
    N_("partners.cancel_reason.product_unavailable"),
    N_("partners.cancelled_by.deadline"),
    N_("partners.cancelled_by.support"),
    N_("partners.escalated.refused"),
    N_("partners.escalated.no_answer"),
    N_("partners.event.other"),
    N_("partners.event.other_value"),
    N_("partners.event.order_accepted"),
    N_("partners.event.payment_recorded"),
    N_("partners.event.order_cancelled"),
    N_("partners.event.order_collected"),
    N_("partners.event.order_delivered"),
    N_("partners.event.order_refunded"),
    N_("partners.event.out_of_stock_reported"),
    N_("partners.event.alternative_accepted"),
    N_("partners.event.alternative_refused"),
    N_("partners.event.product_deactivated"),
    N_("partners.event.customer_call_requested"),
    N_("partners.event.customer_answer_missing"),
    N_("partners.event.item_replaced"),
    N_("partners.event.escalated_to_support"),
    N_("partners.event.support_ticket_opened"),
    N_("partners.event.support_ticket_closed"),
    N_("partners.outcome.deadline"),
    N_("partners.outcome.support"),
    N_("partners.outcome.item_replaced"),
    N_("partners.outcome.cancelled"),
    N_("partners.event_field.outcome"),
    N_("partners.event.courier_reported"),
    N_("partners.event.courier_contacted"),
    N_("partners.event_field.other"),
    N_("partners.event_field.total_cents"),
    N_("partners.event_field.amount_cents"),
    N_("partners.event_field.product"),
    N_("partners.event_field.quantity"),
    N_("partners.event_field.note"),
    N_("partners.event_field.reason"),
    N_("partners.event_field.deadline"),
    N_("partners.event_field.message"),
    N_("partners.event_field.funded_by"),
    N_("partners.event_field.replaced"),
    N_("partners.event_field.item_replaced.by"),
    N_("partners.event_field.order_cancelled.by"),
    N_("partners.event_field.order_refunded.amount_cents"),
)
