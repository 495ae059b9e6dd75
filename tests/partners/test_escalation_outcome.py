"""The sentence an escalation closes its support ticket with, for each way it can end."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from services.partners.domain.escalations import outcome_note
from services.partners.models import Escalation, EscalationStatus, Order

DEADLINE = datetime(2027, 2, 8, 19, 31, tzinfo=UTC)


def _ended(status: EscalationStatus, cancelled_by: str | None, *, paid: int, refunded: bool) -> str:
    order = Order(id=uuid.uuid4(), code="NAP-1001", paid_cents=paid)
    escalation = Escalation(
        order_id=order.id,
        status=status.value,
        cancelled_by=cancelled_by,
        refunded=refunded,
        support_deadline=DEADLINE,
    )
    return outcome_note(order, escalation, "Pizza Margherita")


def test_each_ending_has_its_sentence() -> None:
    assert _ended(EscalationStatus.CANCELLED, "support", paid=3100, refunded=True) == (
        "Order NAP-1001 was cancelled by support (product unavailable). The payment was refunded."
    )
    assert _ended(EscalationStatus.CANCELLED, "deadline", paid=0, refunded=False) == (
        "Order NAP-1001 was cancelled at the support deadline (2027-02-08T19:31:00+00:00): "
        "Pizza Margherita unavailable, no decision in time. Nothing had been paid."
    )
    assert _ended(EscalationStatus.CANCELLED, "platform", paid=3100, refunded=False) == (
        "Order NAP-1001 was cancelled by the platform while escalated."
    )
    assert _ended(EscalationStatus.ITEM_REPLACED, None, paid=3100, refunded=False).startswith(
        "Order NAP-1001: the customer accepted an alternative"
    )
