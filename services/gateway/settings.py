"""Settings of the gateway: where it listens, who may call it from a browser, its cookies.

Read from the environment at start (`load_settings(GatewaySettings)`); a bad value stops the
process with one line per problem.
"""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import NoDecode

from services.kit.settings import CommonSettings

# Origins of the portals' dev servers (Vite, Next/CRA); production sets its own list.
DEV_ORIGINS = [
    "http://localhost:3000",
    "http://127.0.0.1:3000",
    "http://localhost:5173",
    "http://127.0.0.1:5173",
]


class GatewaySettings(CommonSettings):
    """The public REST edge. Every field maps to an upper-case environment variable."""

    service_name: str = "gateway"
    # The gateway is the public edge: in a container it must listen on every interface.
    http_host: str = Field(
        default="0.0.0.0",  # noqa: S104
        validation_alias=AliasChoices("http_host", "gateway_host"),
    )
    http_port: int = Field(
        default=8000, ge=0, le=65535, validation_alias=AliasChoices("http_port", "gateway_port")
    )
    # Browser origins allowed by CORS: a JSON list or a comma-separated string.
    cors_allow_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEV_ORIGINS)
    )
    # The device cookie of a completed sign-in (docs/identity.md): sent over HTTPS only (leave on
    # behind TLS; make dev serves plain HTTP), and kept this long by the client.
    device_cookie_secure: bool = True
    device_cookie_max_age: int = Field(default=365 * 24 * 3600, gt=0)
    # Reverse proxies in front of the gateway that append to X-Forwarded-For (0: none, use the
    # peer address). Only those hops are trusted; anything further left is client-controlled.
    trusted_proxy_count: int = Field(default=0, ge=0, le=10)
    # Serve /docs and /openapi.json.
    public_docs: bool = True
    # Strict-Transport-Security max-age; 0 sends no header (plain-HTTP development).
    hsts_max_age: int = Field(default=0, ge=0)
    # Largest accepted request body, in bytes: every route takes small JSON documents...
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # ... but the file uploads (support's attachments, partners' bank proofs), whose services
    # check size and type themselves. The default and the ceiling are the largest file either
    # service can be set to accept (ATTACHMENT_MAX_BYTES, PROOF_MAX_BYTES): what one 4 MiB gRPC
    # message carries with its envelope.
    max_upload_bytes: int = Field(default=3_900_000, ge=1024, le=3_900_000)
    # How long /readyz waits for identity's health answer, in seconds.
    readiness_timeout: float = Field(default=2.0, gt=0)
    # Seconds SIGTERM gives in-flight requests before the server stops.
    shutdown_grace: int = Field(default=10, ge=0)
    # The gateway's own PostgreSQL database: the Idempotency-Key store every replica shares.
    # Required to serve (`python -m services.gateway`); `migrate` builds its table.
    database_url: str | None = None
    db_pool_size: int = Field(default=5, ge=1)
    # How long an Idempotency-Key is kept (the draft's clients count on a day at least).
    idempotency_ttl_hours: float = Field(default=24.0, ge=24.0)
    # How long a claimed key waits for its request's answer before it is taken for abandoned
    # (a replica that died mid-request). Longer than any request: the slowest is an upload
    # under GRPC_DEFAULT_TIMEOUT.
    idempotency_lease_seconds: float = Field(default=120.0, ge=10.0)
    # Seconds between two purges of expired keys.
    idempotency_purge_interval: float = Field(default=300.0, gt=0)

    @field_validator("cors_allow_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        """Accepts `["https://a", "https://b"]` or `https://a,https://b` from the environment."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value
