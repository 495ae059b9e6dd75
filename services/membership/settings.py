"""Settings of the membership service (environment variables, validated at start)."""

from __future__ import annotations

import base64
import binascii

from pydantic import Field, field_validator

from services.kit.clock import is_time_zone
from services.kit.settings import ServiceSettings


class MembershipSettings(ServiceSettings):
    """Everything membership reads from its environment; a bad value stops the process at start."""

    grpc_port: int = Field(default=50055, ge=0, le=65535)

    # The anniversary letter leaves this many days before the renewal date (the program's rule).
    letter_lead_days: int = Field(default=30, ge=1, le=180)
    # Options can be removed from the renewal date for this many days, once a year.
    removal_window_days: int = Field(default=30, ge=1, le=180)
    # Who signs the anniversary letter and receives option-change requests by e-mail.
    program_team_name: str = "Services aux ateliers"
    program_team_email: str = "servicesateliers@guichet.example.com"
    # A new program's time zone unless its creation names one, and an association's until its
    # administrators set theirs (IANA name).
    default_time_zone: str = "Europe/Paris"

    # Mails to trainees, organisers and workshops are sealed on their way through Temporal.
    mail_sealing_key: str

    # How often the renewal-signal relay looks for signals not yet delivered, in seconds.
    signal_poll_interval: float = Field(default=1.0, gt=0)
    # Seconds between looks for client-record changes another replica made (this process's own
    # writes wake the duplicate refresher at once).
    duplicates_poll_interval: float = Field(default=5.0, gt=0)

    @field_validator("default_time_zone")
    @classmethod
    def _known_time_zone(cls, value: str) -> str:
        if not is_time_zone(value):
            raise ValueError("is not an IANA time zone, e.g. Europe/Paris")
        return value

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
