"""DeliverMail: sends one mail recorded in a service's outbox, retrying until the relay takes it.

Id `mail/<mail_id>`. The body arrives sealed (see `services.kit.mail`) and is opened only inside
the activity, so a reset link never appears in clear in the workflow history. An operator finds
a run by `GuichetMailKind` and the business key the mail is about (`GuichetTicketNumber`,
`GuichetMembership`, `GuichetUsername`…), set by the relay from the outbox row; the pending
activity's summary says what it sends and to how many.
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


@workflow.defn(name=MAIL_WORKFLOW)
class DeliverMail:
    @workflow.run
    async def run(self, mail: DeliverMailInput) -> DeliverMailResult:
        recipients = f"{len(mail.to)} recipient{'s' if len(mail.to) != 1 else ''}"
        sent = await workflow.execute_activity_method(
            MailActivities.send_mail,
            mail,
            summary=f"send the {mail.kind.replace('_', ' ')} mail to {recipients} over SMTP",
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                backoff_coefficient=2.0,
                maximum_interval=timedelta(minutes=5),
                maximum_attempts=0,
            ),
        )
        return DeliverMailResult(mail_id=mail.mail_id, recipients=sent)
