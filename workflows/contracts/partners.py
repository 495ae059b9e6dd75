"""What the partners service and its workflows agree on: workflow names, ids, signal names, and
support's category codes for partners' messages.

Imports neither side (see `workflows.contracts`), so workflow code imports it without SQLAlchemy
and the service without workflow code.
"""

from __future__ import annotations

ESCALATION_WORKFLOW = "OrderEscalation"
TICKET_WORKFLOW = "OpenPartnerTicket"
REACTIVATION_WORKFLOW = "ReactivateProduct"

# Wake-ups sent after the answer or support's decision is committed (the database is the truth;
# the workflow re-reads it, so a lost signal only delays a step until its deadline).
PARTNER_ANSWERED_SIGNAL = "partner_answered"
SUPPORT_DECIDED_SIGNAL = "support_decided"

# Support's categories for partners' messages, by their code in the support service.
SUPPORT_CATEGORY_CODES = {
    "content_changes": "PARTNER-CONTENT",
    "bank_details": "PARTNER-BANK",
    "invoices_and_orders": "PARTNER-INVOICES",
    "other": "PARTNER-OTHER",
}

STOCKOUT_REASON = "product unavailable"


def escalation_workflow_id(order_id: str) -> str:
    return f"order-escalation/{order_id}"


def ticket_workflow_id(message_id: str) -> str:
    return f"partner-ticket/{message_id}"


def reactivation_workflow_id(product_id: str, deactivation: int) -> str:
    return f"product-reactivation/{product_id}/{deactivation}"
