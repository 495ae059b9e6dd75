"""The mails support writes to customers, in the language the ticket was opened in.

Why the ticket's language: identity keeps no language preference, and a ticket is one
conversation: the customer who wrote it in Portuguese from a Portuguese page reads its answers
in Portuguese, even if a colleague opens the next one in French. The gateway records the
request's language (Accept-Language, which the portal sets from the page's) when the ticket is
opened; partner messages come through the worker and are in French (the partners' seed).

The texts are a gettext catalog (`services/support/locale/<locale>/LC_MESSAGES/mail.po`),
checked by `python -m services.kit.catalogs check` like the portal's. Mails are recorded in the
caller's transaction (outbox → DeliverMail, body sealed) and never sent twice; the receipt of a
new ticket goes with the start of its SLA run, which sends it (`opened_receipt`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.i18n import Texts
from services.kit.mail import enqueue_mail, seal
from services.kit.temporal import TICKET, TICKET_NUMBER
from services.support.models import Channel, Message, Ticket, outbox
from services.support.settings import SupportSettings
from workflows.contracts.support import SlaReceipt

TEXTS = Texts(Path(__file__).resolve().parents[1] / "locale", "mail")

CustomerAddress = Callable[[str], Awaitable[str | None]]
"""A user's e-mail address to write to (verified, account active), by user id, read from identity
by the servicer; None when there is none."""


def N_(key: str) -> str:
    return key


def mail_text(language: str, key: str, **params: object) -> str:
    return TEXTS.text(language, key, **params)


# A ticket's status and priority as the mails say them.
LABELS = (
    N_("mail.status.open"),
    N_("mail.status.in_progress"),
    N_("mail.status.waiting_on_customer"),
    N_("mail.status.finished"),
    N_("mail.status.cancelled"),
    N_("mail.priority.low"),
    N_("mail.priority.normal"),
    N_("mail.priority.high"),
    N_("mail.priority.urgent"),
)


async def _send(
    session: AsyncSession,
    settings: SupportSettings,
    *,
    mail_id: str,
    to: str,
    subject: str,
    body: str,
    kind: str,
    ticket: Ticket,
) -> None:
    await enqueue_mail(
        session,
        outbox,
        mail_id=mail_id,
        to=[to],
        subject=subject,
        body=body,
        sealing_key=settings.mail_sealing_key,
        task_queue=settings.temporal_task_queue,
        kind=kind,
        about={TICKET: str(ticket.id), TICKET_NUMBER: ticket.number},
    )


async def opened_receipt(
    settings: SupportSettings,
    ticket: Ticket,
    category_name: str,
    customer_address: CustomerAddress | None,
) -> SlaReceipt | None:
    """The customer's receipt for an extranet ticket: its number, what it is about and where to
    follow it; None when the opener has no verified address. The ticket's SLA run mails it (its
    first task, `SLA_SHAPE_RECEIPT`), so it is recorded with the run's start, in the caller's
    transaction, its body sealed as any mail's."""
    address = await customer_address(ticket.opened_by_id) if customer_address else None
    if not address:
        return None
    language = ticket.language
    return SlaReceipt(
        mail_id=f"ticket-{ticket.id}-opened",
        to=[address],
        subject=mail_text(
            language, "mail.opened.subject", number=ticket.number, title=ticket.title
        ),
        sealed_body=seal(
            mail_text(
                language,
                "mail.opened.body",
                name=ticket.opened_by_name,
                number=ticket.number,
                title=ticket.title,
                category=category_name,
                priority=mail_text(language, f"mail.priority.{ticket.priority}"),
            ),
            settings.mail_sealing_key,
        ),
    )


async def mail_answer(
    session: AsyncSession,
    settings: SupportSettings,
    ticket: Ticket,
    message: Message,
    customer_address: CustomerAddress | None,
) -> None:
    """Every agent reply is mailed to the customer. A partner's message goes to the reply-to
    chosen when it came; an extranet ticket to the verified address of the user who opened it,
    read now (it may have changed since), and to nobody when there is none (they follow the
    ticket in the extranet)."""
    language = ticket.language
    if ticket.channel == Channel.PARTNER_MESSAGE:
        if not ticket.reply_to_email:
            return
        to = ticket.reply_to_email
        body = mail_text(
            language,
            "mail.answered.partner_body",
            number=ticket.number,
            message=message.body,
            author=message.author_name,
        )
    else:
        address = await customer_address(ticket.opened_by_id) if customer_address else None
        if not address:
            return
        to = address
        body = mail_text(
            language,
            "mail.answered.body",
            name=ticket.opened_by_name,
            number=ticket.number,
            title=ticket.title,
            status=mail_text(language, f"mail.status.{ticket.status}"),
            message=message.body,
            author=message.author_name,
        )
    await _send(
        session,
        settings,
        mail_id=str(message.id),
        kind="ticket_reply",
        ticket=ticket,
        to=to,
        subject=mail_text(
            language, "mail.answered.subject", number=ticket.number, title=ticket.title
        ),
        body=body,
    )
