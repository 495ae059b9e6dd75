"""Settings of the partners service (environment variables, validated at start)."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from services.kit.settings import ServiceSettings

_CLIENT_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class PartnersSettings(ServiceSettings):
    """Everything partners reads from its environment; a bad value stops the process at start."""

    grpc_port: int = Field(default=50054, ge=0, le=65535)
    # Service clients trusted with the internal calls (order intake, workflow steps), as
    # identity knows them: "worker" is the Temporal worker, "platform" the order platform.
    internal_clients: str = "worker,platform"
    # A new store's time zone and currency unless its registration names others.
    default_timezone: str = "Europe/Paris"
    default_currency: str = "EUR"
    # How long the partner has to call the customer and record the answer, then how long support
    # has to decide before the order is cancelled anyway.
    escalation_answer_timeout_seconds: int = Field(default=600, ge=1)
    escalation_support_timeout_seconds: int = Field(default=1200, ge=1)
    # Who funds the refund of an order cancelled because the store ran out of a product.
    stockout_refund_funded_by: str = Field(default="partner", pattern=r"^(partner|platform)$")
    # Proof documents of bank-detail changes: largest accepted size (under the 4 MiB gRPC cap).
    proof_max_bytes: int = Field(default=2 * 1024 * 1024, ge=1024, le=3_900_000)
    # A message sent by a partner opens its ticket in support at once, with the partner's own
    # token; if support did not answer, a workflow retries after this many seconds.
    ticket_retry_delay_seconds: int = Field(default=60, ge=0)
    # Most orders one ImportOrders call takes.
    import_max_orders: int = Field(default=20_000, ge=1, le=50_000)
    # How long a best-effort signal to a workflow may take before the request gives up on it.
    signal_timeout_seconds: float = Field(default=2.0, gt=0)

    @field_validator("internal_clients")
    @classmethod
    def _clients(cls, value: str) -> str:
        for client in _split(value):
            if not _CLIENT_ID.match(client):
                raise ValueError(f"{client!r} is not a client id (a-z 0-9 _ . -)")
        return value

    @field_validator("default_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("is not an IANA time zone") from None
        return value

    @field_validator("default_currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if not _CURRENCY.match(value):
            raise ValueError("must be an ISO 4217 code, e.g. EUR")
        return value

    @property
    def trusted_clients(self) -> frozenset[str]:
        return frozenset(_split(self.internal_clients))


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]
