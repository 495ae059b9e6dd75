"""Outgoing mail: a real SMTP client, and sealing so that links never sit in clear in Temporal.

Services do not talk SMTP themselves: they record a mail in their outbox (same transaction as the
change that caused it) and the `DeliverMail` workflow sends it with retries. The body may carry a
secret (a reset link), so it travels sealed with AES-GCM under the deployment's mail sealing key.
"""

from __future__ import annotations

import asyncio
import base64
import os
import smtplib
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Table
from temporalio.common import SearchAttributeKey


@dataclass(frozen=True)
class Mail:
    to: tuple[str, ...]
    subject: str
    body: str


def _key(encoded: str) -> bytes:
    key = base64.b64decode(encoded)
    if len(key) != 32:
        raise ValueError("mail sealing key must be 32 bytes, base64-encoded")
    return key


def new_sealing_key() -> str:
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


def seal(text: str, key: str) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(_key(key)).encrypt(nonce, text.encode(), b"guichet-mail")
    return base64.b64encode(nonce + sealed).decode()


def unseal(sealed: str, key: str) -> str:
    raw = base64.b64decode(sealed)
    return AESGCM(_key(key)).decrypt(raw[:12], raw[12:], b"guichet-mail").decode()


class SmtpSender:
    """Sends through an SMTP server (the local sink in dev and tests, a relay in production)."""

    def __init__(self, host: str, port: int, sender: str, *, starttls: bool = False) -> None:
        self.host, self.port, self.sender, self.starttls = host, port, sender, starttls

    def _send(self, mail: Mail, message_id: str | None) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = ", ".join(mail.to)
        message["Subject"] = mail.subject
        if message_id:
            message["Message-ID"] = f"<{message_id}@guichet>"
        message.set_content(mail.body)
        with smtplib.SMTP(self.host, self.port, timeout=10) as client:
            if self.starttls:
                client.starttls()
            client.send_message(message)

    async def send(self, mail: Mail, *, message_id: str | None = None) -> None:
        await asyncio.to_thread(self._send, mail, message_id)


MAIL_WORKFLOW = "DeliverMail"


def mail_workflow_id(mail_id: str) -> str:
    return f"mail/{mail_id}"


async def enqueue_mail(
    session: Any,
    outbox: Table,
    *,
    mail_id: str,
    to: list[str],
    subject: str,
    body: str,
    sealing_key: str,
    task_queue: str,
    kind: str = "mail",
    about: Mapping[SearchAttributeKey[Any], str | int] | None = None,
) -> None:
    """Records a mail to send in the caller's transaction; the relay starts `DeliverMail`.

    `kind` says what the mail is (`password_reset`, `ticket_reply`…) and `about` the business
    keys it concerns (e.g. `{TICKET_NUMBER: 1042}`): both become the run's search attributes,
    so that an operator asked "did my mail go out?" finds it (docs/runbook.md)."""
    from services.kit.outbox import enqueue
    from services.kit.temporal import MAIL_KIND

    await enqueue(
        session,
        outbox,
        workflow=MAIL_WORKFLOW,
        workflow_id=mail_workflow_id(mail_id),
        argument={
            "mail_id": mail_id,
            "to": to,
            "subject": subject,
            "sealed_body": seal(body, sealing_key),
            "kind": kind,
            # DeliverMail sends it in a local activity (workflows/mail.py).
            "send": "local",
        },
        task_queue=task_queue,
        search_attributes={
            MAIL_KIND.name: kind,
            **{key.name: value for key, value in (about or {}).items() if value != ""},
        },
    )
