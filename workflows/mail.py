"""DeliverMail: sends one mail recorded in a service's outbox, retrying until the relay takes it.

Id `mail/<mail_id>`. The body arrives sealed (see `services.kit.mail`) and is opened only inside
the activity, so a reset link never appears in clear in the workflow history. An operator finds
a run by `GuichetMailKind` and the business key the mail is about (`GuichetTicketNumber`,
`GuichetMembership`, `GuichetUsername`…), set by the relay from the outbox row; the send's
summary says what it sends and to how many.

The send is a local activity (`send: "local"`, what `enqueue_mail` records): one workflow task
per mail, where an activity task costs Temporal a second workflow task, an activity dispatch and
four more writes of the run (docs/performance.md, "SLA timers"). A mail is one SMTP exchange of
a few milliseconds, the case local activities are for; long SMTP outages still back off on the
server's timers. Runs started before (`send: "activity"`, the input's default) keep their
activity task, so that their histories replay.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from services.kit.mail import MAIL_WORKFLOW, Mail, SmtpSender, unseal


@dataclass
class DeliverMailInput:
    mail_id: str
    to: list[str]
    subject: str
    sealed_body: str
    # What the mail is (`password_reset`, `ticket_reply`…): also the run's `GuichetMailKind`.
    kind: str = "mail"
    # How the run sends it: "local" (a local activity) since enqueue_mail records it; runs whose
    # input predates the field sent through an activity task and must replay as they ran.
    send: str = "activity"


@dataclass
class DeliverMailResult:
    mail_id: str
    recipients: int


class MailActivities:
    """Activities are methods of an object built with its dependencies (the SMTP sender, key)."""

    def __init__(self, sender: SmtpSender, sealing_key: str) -> None:
        self._sender = sender
        self._key = sealing_key

    @activity.defn(name="send_mail")
    async def send_mail(self, mail: DeliverMailInput) -> int:
        body = unseal(mail.sealed_body, self._key)
        await self._sender.send(
            Mail(to=tuple(mail.to), subject=mail.subject, body=body), message_id=mail.mail_id
        )
        return len(mail.to)


# Retried until the relay takes it: an SMTP relay away for hours delays mail, never drops it.
# TicketSla sends a ticket's receipt with the same.
SEND_RETRIES = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=0,
)
SEND_TIMEOUT = timedelta(seconds=30)
LOCAL_SEND = "local"


# Not sandboxed: the run only passes its input to the send (no clock, no I/O, no randomness),
# and one run per mail would pay the sandbox's per-run module reload (as TicketSla would).
@workflow.defn(name=MAIL_WORKFLOW, sandboxed=False)
class DeliverMail:
    @workflow.run
    async def run(self, mail: DeliverMailInput) -> DeliverMailResult:
        recipients = f"{len(mail.to)} recipient{'s' if len(mail.to) != 1 else ''}"
        summary = f"send the {mail.kind.replace('_', ' ')} mail to {recipients} over SMTP"
        if mail.send == LOCAL_SEND:
            sent = await workflow.execute_local_activity_method(
                MailActivities.send_mail,
                mail,
                summary=summary,
                start_to_close_timeout=SEND_TIMEOUT,
                retry_policy=SEND_RETRIES,
            )
        else:
            sent = await workflow.execute_activity_method(
                MailActivities.send_mail,
                mail,
                summary=summary,
                start_to_close_timeout=SEND_TIMEOUT,
                retry_policy=SEND_RETRIES,
            )
        return DeliverMailResult(mail_id=mail.mail_id, recipients=sent)
