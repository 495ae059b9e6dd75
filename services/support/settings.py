"""Settings of the support service (environment variables, validated at start)."""

from __future__ import annotations

import base64
import binascii

from pydantic import Field, field_validator

from services.kit.settings import ServiceSettings

DEFAULT_ATTACHMENT_TYPES = (
    "application/pdf,image/png,image/jpeg,image/gif,text/plain,text/csv,"
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet,"
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
)


class SupportSettings(ServiceSettings):
    """Everything support reads from its environment; a bad value stops the process at start."""

    grpc_port: int = Field(default=50053, ge=0, le=65535)
    # Largest attachment, in bytes: under the 4 MiB gRPC message cap with room for the envelope.
    attachment_max_bytes: int = Field(default=3 * 1024 * 1024, ge=1, le=3_900_000)
    # Comma-separated content types accepted as attachments.
    attachment_types: str = DEFAULT_ATTACHMENT_TYPES
    # Who is mailed when a ticket breaches its SLA.
    support_team_email: str = "support-team@guichet.example.com"
    # A category view that led to no ticket within this many seconds counts as a deflection.
    deflection_window_seconds: int = Field(default=24 * 3600, gt=0)
    # Outbox relays in this process (SKIP LOCKED shares the rows). One is enough: it starts a
    # batch's workflows concurrently (32 at a time); more only add polling.
    outbox_relays: int = Field(default=1, ge=1, le=32)
    # Seconds between two polls of the SLA signal outbox when nothing wakes it.
    signal_poll_interval: float = Field(default=0.5, gt=0)
    # Breach mails and partners' answers travel sealed like every mail.
    mail_sealing_key: str

    @field_validator("mail_sealing_key")
    @classmethod
    def _sealing_key_is_32_bytes(cls, value: str) -> str:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("must be base64") from None
        if len(raw) != 32:
            raise ValueError("must be 32 bytes, base64-encoded")
        return value

    @field_validator("attachment_types")
    @classmethod
    def _types(cls, value: str) -> str:
        if not [part for part in value.split(",") if part.strip()]:
            raise ValueError("must list at least one content type")
        return value

    @property
    def allowed_attachment_types(self) -> frozenset[str]:
        return frozenset(part.strip().lower() for part in self.attachment_types.split(",") if part)
