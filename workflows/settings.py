"""Settings of the worker process."""

from __future__ import annotations

from pydantic import Field

from services.kit.settings import CommonSettings


class WorkerSettings(CommonSettings):
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_sender: str = "Guichet <no-reply@guichet.local>"
    smtp_starttls: bool = False
    mail_sealing_key: str
