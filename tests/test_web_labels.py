"""No internal key, enum value or raw API string reaches a page (issue 25): every value the
services write that a page shows has a text in every locale, and the listed defects are gone.

The values are read from their sources (the services' audit events and order steps, the
OpenAPI document's enums), so a new one without a text fails here, not in front of a person.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path
from typing import Any

import pytest

from services.devstack.demo_partners import CANCEL_REASONS
from web.client.generate import gateway_openapi
from web.i18n import LOCALES, has_text
from web.labels import audit_event, cancellation_reason, order_event, record_event
from web.templating import build_templates
from workflows.contracts.partners import STOCKOUT_REASON

ROOT = Path(__file__).resolve().parent.parent

# Each enum of the API a page shows, and the prefix of its texts in the catalogs.
ENUM_TEXTS = {
    "AuthorSide": "support.side.",
    "BankDetailChangeStatus": "status.",
    "CategoryAudience": "support.audience.",
    "ClaimStatus": "membership.claim_",
    "ContentChangeStatus": "status.",
    "CourierReportReason": "partners.courier.",
    "CourseRegistrationStatus": "membership.status_",
    "DelegatedRole": "role.",
    "DuplicateKind": "association.kind_",
    "EscalationAnswer": "partners.op.answer.",
    "EscalationStatus": "status.",
    "HistoryStatus": "status.",
    "MembershipStatus": "workshop.status_",
    "MessageCategory": "partners.category.",
    "Operation": "operation.",
    "OptionChangeStatus": "membership.status_",
    "OrderItemStatus": "status.",
    "OrderStatus": "status.",
    "OrganisationKind": "operator.kind.",
    "PaymentKind": "partners.kind.",
    "ProcessRequestStatus": "status.",
    "PromotionKind": "partners.kind.",
    "PromotionStatus": "status.",
    "RefundFunder": "partners.funder.",
    "RegistrationStatus": "association.reg_",
    "RelationshipStatus": "relationship.",
    "SlaClock": "support.clock.",
    "SupportCategory": "partners.category.",
    "SupportMessageStatus": "status.",
    "TicketKind": "support.kind.",
    "TicketPriority": "support.priority.",
    "TicketStatus": "support.status.",
    "UserStatus": "admin.status.",
}


@functools.cache
def _enums() -> dict[str, list[str]]:
    schemas = gateway_openapi()["components"]["schemas"]
    return {name: list(schema["enum"]) for name, schema in schemas.items() if "enum" in schema}


def _missing(keys: set[str]) -> list[str]:
    return sorted(
        f"{locale}: {key}" for key in keys for locale in LOCALES if not has_text(locale, key)
    )


def _calls(root: Path, function: str) -> list[ast.Call]:
    calls = []
    for path in root.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == function:
                calls.append(node)
    return calls


def _constant(call: ast.Call, name: str) -> str | None:
    for keyword in call.keywords:
        if keyword.arg == name and isinstance(keyword.value, ast.Constant):
            return str(keyword.value.value)
    return None


@pytest.mark.parametrize("enum", sorted(ENUM_TEXTS))
def test_every_value_of_a_shown_enum_has_a_text(enum: str) -> None:
    values = _enums()[enum]
    assert not _missing({ENUM_TEXTS[enum] + value for value in values})


def test_every_identity_audit_event_has_a_text() -> None:
    """Was "profile.updated" on the admin's account history."""
    events = {_constant(c, "event") for c in _calls(ROOT / "services/identity", "audit")}
    events.discard(None)
    assert {"profile.updated", "user.validated"} <= events
    assert not _missing({f"audit.{e}" for e in events if e})


def test_every_client_record_journal_event_has_a_text() -> None:
    """Was "merged" in the association's merge journal."""
    domain = ROOT / "services/membership/domain"
    found = [
        event
        for name in ("records.py", "merges.py")
        for event in re.findall(r'event="([a-z_.]+)"', (domain / name).read_text())
    ]
    assert {"merged", "deleted"} <= set(found)
    assert not _missing({f"association.audit.{e}" for e in found})


def test_every_step_of_an_order_history_has_a_text() -> None:
    """Was "order.accepted", "payment.recorded" in the order's history."""
    kinds = {_constant(c, "kind") for c in _calls(ROOT / "services/partners/domain", "_event")}
    kinds.discard(None)
    # order.{status} for the statuses the platform moves an order to
    kinds |= {"order.collected", "order.delivered", "order.cancelled"}
    assert {"order.accepted", "payment.recorded", "item.replaced"} <= kinds
    assert not _missing({"partners.event." + str(k).replace(".", "_") for k in kinds})


def test_every_process_request_failure_reason_has_a_text() -> None:
    source = (ROOT / "services/groups/domain/batches.py").read_text()
    reasons = set(re.findall(r'_REASON = "([a-z_]+)"', source))
    assert reasons
    assert not _missing({f"failure.{r}" for r in reasons})


def test_the_cancellation_reasons_the_platform_sends_are_said_in_words() -> None:
    """Were English ("customer cancelled") beside French text."""
    for reason in (*CANCEL_REASONS, STOCKOUT_REASON):
        for locale in LOCALES:
            assert cancellation_reason(locale, reason) != reason, (locale, reason)
    assert cancellation_reason("fr", "customer cancelled") == "Annulée par le client"
    assert cancellation_reason("pt_BR", "product unavailable") == "Produto indisponível"


def test_an_order_step_is_said_without_its_keys_ids_or_codes() -> None:
    """Was "order.accepted · user:592573c3-… · total_cents : 1790", and "account : None"."""
    step = order_event(
        "fr",
        {
            "at": "2026-12-05T10:00:00Z",
            "kind": "order.accepted",
            "actor": "user:592573c3-1111-4222-8333-944445555666",
            "detail": {"total_cents": "1790", "account": "None"},
        },
        currency="EUR",
        zone="Europe/Paris",
        me=None,
    )
    assert (step.what, step.who) == ("Commande acceptée", "Guichet")
    assert step.detail == "Total : 17,90\u00a0€"
    shown = " ".join((step.at, step.what, step.who, step.detail))
    for raw in ("order.accepted", "user:", "592573c3", "total_cents", "1790", "account", "None"):
        assert raw not in shown
    paid = order_event(
        "pt_BR",
        {
            "kind": "payment.recorded",
            "actor": "service:platform",
            "detail": {"amount_cents": "950"},
        },
        currency="EUR",
        zone=None,
        me=None,
    )
    assert (paid.what, paid.who, paid.detail) == (
        "Pagamento recebido",
        "Plataforma (automático)",
        "Valor: €\u00a09,50",
    )
    cancelled = order_event(
        "en",
        {
            "kind": "order.cancelled",
            "actor": "user:me",
            "detail": {"reason": "product unavailable", "by": "deadline"},
        },
        currency="EUR",
        zone=None,
        me="me",
    )
    assert cancelled.who == "You"
    assert cancelled.detail == (
        "Reason: Product unavailable · Cancelled because of: the answer deadline passing"
    )
    unknown = order_event(
        "fr", {"kind": "brand.new", "detail": {"x": "y"}}, currency="EUR", zone=None, me=None
    )
    assert unknown.what == "Autre étape" and "brand" not in unknown.what


def test_audit_and_journal_events_are_said_in_words() -> None:
    assert audit_event("fr", "profile.updated") == "Profil modifié"
    assert audit_event("pt_BR", "some.future.event") == "Outro evento"
    assert record_event("fr", "merged") == "Fiche fusionnée"
    assert record_event("en", "merged") == "Record merged"


def _orders_table(locale: str, order: dict[str, Any]) -> str:
    env = build_templates().env
    from web.i18n import translate

    return env.get_template("partners/_orders_table.html").render(
        orders=[order],
        caption="",
        store_id="s",
        zone="Europe/Paris",
        locale=locale,
        t=lambda key, **params: translate(locale, key, **params),
    )


def test_a_refund_badge_carries_the_orders_currency_not_a_dollar() -> None:
    """Was a "$" badge beside euro amounts."""
    order = {
        "id": "o",
        "code": "A-1",
        "status": "refunded",
        "currency": "EUR",
        "created_at": "2026-12-05T10:00:00Z",
        "total_cents": 1790,
        "payment_made": True,
        "cancellation_reason": None,
        "refund_reason": "plat froid",
        "escalation_status": None,
    }
    page = _orders_table("fr", order)
    assert "$" not in page
    assert "€ Remboursée" in page and "17,90\u00a0€" in page
    brazilian = _orders_table("pt_BR", {**order, "currency": "BRL"})
    assert "R$ Reembolsado" in brazilian and "R$\u00a017,90" in brazilian
