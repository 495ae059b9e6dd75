"""OrderEscalation: a product of an accepted order ran out.

Id `order-escalation/<order_id>`, started by partners through its outbox in the transaction of the
out-of-stock report. The steps, each visible on the order as an event:

1. the product comes off the menu, and the partner is asked to call the customer and offer an
   alternative before the answer deadline;
2. the answer (recorded by partners, then signalled) or the deadline: partners' database decides
   (`settle_answer`), so a lost or late signal cannot contradict what the partner was told;
3. accepted: the alternative replaces the item — done;
4. refused or unanswered: escalated to support (a ticket), which has a second deadline;
5. support cancels (signalled), or the deadline does: reason "product unavailable", and a paid
   order is refunded.

The platform may also cancel the order meanwhile; every step then finds the escalation closed and
the workflow ends with the outcome "closed".

An escalation closes what it opened: once it ends, by whatever path, the support ticket it opened
(whose SLA is the support deadline: partners passes it to support as the ticket's own deadline) is
closed with the outcome, and the closing recorded on the order (`close_ticket`, behind the
`escalation-closes-its-ticket` patch: runs recorded before replay without it). The run is found by
the order's code (`GuichetOrderCode`, set at the start by partners), and its timers say what they
wait for.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from services.kit.temporal import ORDER
    from workflows.contracts.partners import (
        ESCALATION_WORKFLOW,
        PARTNER_ANSWERED_SIGNAL,
        SUPPORT_DECIDED_SIGNAL,
    )
    from workflows.partners_activities import (
        EscalateInput,
        EscalationState,
        PartnersActivities,
        TicketClosing,
    )

# Runs recorded before escalations closed their support ticket replay without that step.
CLOSE_TICKET_PATCH = "escalation-closes-its-ticket"

STEP_TIMEOUT = timedelta(seconds=30)
STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=0,
)


@dataclass
class OrderEscalationInput:
    order_id: str
    store_id: str
    # ISO 8601: when partners stops taking the customer's answer.
    answer_deadline: str
    support_timeout_seconds: int
    # The order's code (NAP-1001), for the summaries; "" from a start recorded before.
    order_code: str = ""


@dataclass
class OrderEscalationResult:
    order_id: str
    # item_replaced, cancelled_by_support, cancelled_at_deadline, or closed (by the platform).
    outcome: str
    refunded: bool
    # What became of the support ticket: closed, already_closed, no_ticket ("" before it existed).
    ticket: str = ""


@workflow.defn(name=ESCALATION_WORKFLOW)
class OrderEscalation:
    def __init__(self) -> None:
        self._answered = False
        self._support_decided = False
        self._stage = "starting"

    @workflow.run
    async def run(self, request: OrderEscalationInput) -> OrderEscalationResult:
        workflow.upsert_search_attributes([ORDER.value_set(request.order_id)])
        order_id = request.order_id

        code = request.order_code or order_id

        self._stage = "deactivating_product"
        state = await self._step(
            PartnersActivities.deactivate_product,
            order_id,
            f"{code}: take the product off the menu, ask the partner to call the customer",
        )

        if state.status == "awaiting_answer" and not state.answer:
            self._stage = "awaiting_answer"
            remaining = datetime.fromisoformat(request.answer_deadline) - workflow.now()
            if remaining > timedelta(0):
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(
                        lambda: self._answered or self._support_decided,
                        timeout=remaining,
                        timeout_summary=(
                            f"customer answer deadline, {code} ({request.answer_deadline})"
                        ),
                    )
        state = await self._step(
            PartnersActivities.settle_answer, order_id, f"{code}: settle the customer's answer"
        )

        ticket = False
        if state.status == "accepted":
            self._stage = "replacing_item"
            state = await self._step(
                PartnersActivities.replace_item, order_id, f"{code}: replace the item"
            )
        elif state.status == "awaiting_answer":
            self._stage = "escalated"
            timeout = timedelta(seconds=request.support_timeout_seconds)
            deadline = workflow.now() + timeout
            state = await self._step(
                PartnersActivities.escalate,
                EscalateInput(order_id, deadline.isoformat()),
                f"{code}: escalate to support, deadline {deadline.isoformat()}",
            )
            if state.status == "escalated":
                ticket = True
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(
                        lambda: self._support_decided,
                        timeout=timeout,
                        timeout_summary=(
                            f"support decision deadline, {code} ({deadline.isoformat()})"
                        ),
                    )
                state = await self._step(
                    PartnersActivities.cancel,
                    order_id,
                    f"{code}: cancel at the support deadline unless support did",
                )
        closing = ""
        if ticket and workflow.patched(CLOSE_TICKET_PATCH):
            self._stage = "closing_ticket"
            closed: TicketClosing = await workflow.execute_activity_method(
                PartnersActivities.close_ticket,
                order_id,
                start_to_close_timeout=STEP_TIMEOUT,
                retry_policy=STEP_RETRY,
                summary=f"{code}: close the support ticket with the outcome",
            )
            closing = closed.result
        self._stage = "done"
        return OrderEscalationResult(order_id, _outcome(state), state.refunded, closing)

    async def _step(self, activity: Any, argument: Any, summary: str) -> EscalationState:
        result: EscalationState = await workflow.execute_activity_method(
            activity,
            argument,
            start_to_close_timeout=STEP_TIMEOUT,
            retry_policy=STEP_RETRY,
            summary=summary,
        )
        return result

    @workflow.signal(name=PARTNER_ANSWERED_SIGNAL)
    def partner_answered(self) -> None:
        self._answered = True

    @workflow.signal(name=SUPPORT_DECIDED_SIGNAL)
    def support_decided(self) -> None:
        self._support_decided = True

    @workflow.query(name="stage")
    def stage(self) -> str:
        return self._stage


def _outcome(state: EscalationState) -> str:
    if state.status == "item_replaced":
        return "item_replaced"
    return {
        "support": "cancelled_by_support",
        "deadline": "cancelled_at_deadline",
    }.get(state.cancelled_by, "closed")
