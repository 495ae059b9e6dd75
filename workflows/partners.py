"""The partners service's two small workflows, both started through its outbox.

* ReactivateProduct (`product-reactivation/<product_id>/<deactivation>`): a timer to the time the
  partner chose, then the product comes back unless it changed since (a later deactivation or a
  manual reactivation wins). A Temporal timer, not a cron: nothing polls.
* OpenPartnerTicket (`partner-ticket/<message_id>`): opens a partner's message as a ticket in
  support unless the request already did. Partner-initiated messages wait `delay_seconds` first
  (the request tries at once with the partner's token); escalations go straight away. Support
  being away (or refusing the worker's token) is retried: one attempt, then a durable timer
  (30 s doubling to an hour) before the next.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.contracts.partners import REACTIVATION_WORKFLOW, TICKET_WORKFLOW
    from workflows.partners_activities import PartnersActivities, ReactivateInput


@dataclass
class ReactivateProductInput:
    product_id: str
    deactivation: int
    # ISO 8601.
    reactivate_at: str


@workflow.defn(name=REACTIVATION_WORKFLOW)
class ReactivateProduct:
    @workflow.run
    async def run(self, request: ReactivateProductInput) -> bool:
        remaining = datetime.fromisoformat(request.reactivate_at) - workflow.now()
        if remaining > timedelta(0):
            await workflow.sleep(remaining)
        return await workflow.execute_activity_method(
            PartnersActivities.reactivate_product,
            ReactivateInput(request.product_id, request.deactivation),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=0),
        )


@dataclass
class OpenPartnerTicketInput:
    message_id: str
    delay_seconds: int = 0


# Attempts at opening a ticket: one per round, durable timers between rounds (30 s doubling to an
# hour), and a fresh run after many rounds so that the history stays small. Timers rather than
# the activity's own retry back-off: an activity waiting to retry counts as running.
ONE_ATTEMPT = RetryPolicy(maximum_attempts=1)
FIRST_WAIT = timedelta(seconds=30)
LONGEST_WAIT = timedelta(hours=1)
ROUNDS_PER_RUN = 50


@workflow.defn(name=TICKET_WORKFLOW)
class OpenPartnerTicket:
    @workflow.run
    async def run(self, request: OpenPartnerTicketInput) -> str:
        if request.delay_seconds > 0:
            await workflow.sleep(timedelta(seconds=request.delay_seconds))
        wait = FIRST_WAIT
        for _ in range(ROUNDS_PER_RUN):
            try:
                ticket: str = await workflow.execute_activity_method(
                    PartnersActivities.open_support_ticket,
                    request.message_id,
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=ONE_ATTEMPT,
                )
                return ticket
            except ActivityError as error:
                if isinstance(error.cause, ApplicationError) and error.cause.non_retryable:
                    raise
            await workflow.sleep(wait)
            wait = min(wait * 2, LONGEST_WAIT)
        workflow.continue_as_new(OpenPartnerTicketInput(request.message_id))
