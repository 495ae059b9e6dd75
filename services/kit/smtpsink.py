"""A local SMTP sink (aiosmtpd) for dev and tests: keeps every mail and writes it to a folder."""

from __future__ import annotations

import asyncio
import email
import email.policy
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class ReceivedMail:
    sender: str
    recipients: tuple[str, ...]
    subject: str
    body: str
    raw: bytes


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw: bytes = envelope.content
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        part = parsed.get_body(preferencelist=("plain",))
        body = part.get_content() if part is not None else ""
        mail = ReceivedMail(
            sender=envelope.mail_from,
            recipients=tuple(envelope.rcpt_tos),
            subject=str(parsed["Subject"] or ""),
            body=body,
            raw=raw,
        )
        self._sink.record(mail)
        return "250 Message accepted for delivery"


class SmtpSink:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, folder: Path | None = None) -> None:
        self.host = host
        self.folder = folder
        self.messages: list[ReceivedMail] = []
        self._controller = Controller(_Handler(self), hostname=host, port=port or _free_port())

    @property
    def port(self) -> int:
        return int(self._controller.port)

    def start(self) -> None:
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def record(self, mail: ReceivedMail) -> None:
        self.messages.append(mail)
        if self.folder is not None:
            stamp = time.strftime("%Y%m%dT%H%M%S")
            name = f"{stamp}-{len(self.messages):05d}.eml"
            (self.folder / name).write_bytes(mail.raw)

    def to(self, address: str) -> list[ReceivedMail]:
        return [m for m in self.messages if address.lower() in (r.lower() for r in m.recipients)]

    async def wait_for(
        self, address: str, *, count: int = 1, within: float = 20.0
    ) -> list[ReceivedMail]:
        """Waits until `count` mails reached `address` (mail goes through a workflow: async)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            received = self.to(address)
            if len(received) >= count:
                return received
            await asyncio.sleep(0.05)
        raise TimeoutError(f"{count} mail(s) to {address} not received within {within}s")


def _free_port() -> int:
    from services.kit.ports import free_port

    return free_port()
