"""Settings of the identity service (environment variables, validated at start)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from services.kit.settings import ServiceSettings

_CLIENT_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
# Client secrets are generated, not chosen by people: ask for enough entropy to make a plain
# SHA-256 of them a safe thing to store.
MIN_CLIENT_SECRET_LENGTH = 24

DAY = 24 * 3600


class IdentitySettings(ServiceSettings):
    """Everything identity reads from its environment; a bad value stops the process at start."""

    grpc_port: int = Field(default=50051, ge=0, le=65535)

    # --- tokens -------------------------------------------------------------------------------
    access_token_ttl_seconds: int = Field(default=300, gt=0)
    refresh_token_ttl_seconds: int = Field(default=30 * DAY, gt=0)
    service_token_ttl_seconds: int = Field(default=600, gt=0)
    # The newest signing key is replaced on the next issue once it is older than this.
    signing_key_rotation_seconds: int = Field(default=DAY, gt=0)

    # --- links sent by mail ---------------------------------------------------------------------
    # Where the portal lives: links in mails are `{public_base_url}/verify-email?token=...` and
    # `{public_base_url}/reset-password?token=...`.
    public_base_url: str = "http://localhost:8000"
    verify_link_ttl_seconds: int = Field(default=2 * DAY, gt=0)
    reset_link_ttl_seconds: int = Field(default=3600, gt=0)
    # The "choose your password" link of an account created by an admin lives as long as a
    # verification link: the person may not read their mail within the hour.
    welcome_link_ttl_seconds: int = Field(default=2 * DAY, gt=0)
    # Public "send me a link" calls (resend verification, forgot password) mail at most once per
    # account and purpose within this many seconds, so they cannot be used to flood a mailbox.
    link_resend_cooldown_seconds: int = Field(default=60, ge=0)

    # --- brute force (docs/identity.md, "Sign-in throttles") -----------------------------------
    # Failures of one kind (a username from unknown devices, one known device, one second
    # factor) before sign-ins of that kind wait; each further failure doubles the wait, from
    # LOCKOUT_SECONDS up to LOCKOUT_MAX_SECONDS. A quiet LOCKOUT_WINDOW_SECONDS after the last
    # failure (or the end of the wait) forgives them.
    lockout_threshold: int = Field(default=5, ge=1)
    lockout_window_seconds: int = Field(default=900, gt=0)
    lockout_seconds: int = Field(default=60, gt=0)
    lockout_max_seconds: int = Field(default=3600, gt=0)
    # Failures of unknown devices from one address (IPv6: its /64), whatever the usernames,
    # before that address waits (credential stuffing); known devices never wait for it.
    address_lockout_threshold: int = Field(default=20, ge=1)
    # The shared per-address brake of the public routes that mail or hash (TakeAttempt):
    # requests per minute per route and address, and how many may come at once. 0: no brake.
    auth_rate_limit_per_minute: float = Field(default=10.0, ge=0)
    auth_rate_limit_burst: int = Field(default=10, ge=1)
    # How often expired throttle rows and WebAuthn challenges are deleted.
    throttle_purge_seconds: int = Field(default=300, gt=0)

    # --- devices and second factors -------------------------------------------------------------
    # A device that signed in (every factor) gets a signed cookie that keeps it out of the
    # locks earned by failures from elsewhere; it lasts this long and is renewed at each sign-in.
    device_cookie_ttl_seconds: int = Field(default=365 * DAY, gt=0)
    # Time to answer the second factor once the password was accepted.
    second_factor_ticket_ttl_seconds: int = Field(default=300, gt=0)
    # TOTP (RFC 6238): the issuer shown in authenticator apps; codes of this many 30-second
    # steps before or after now are accepted (clock drift), each step at most once.
    totp_issuer: str = Field(default="Guichet", min_length=1, max_length=60)
    totp_valid_window: int = Field(default=1, ge=0, le=2)
    # WebAuthn: the relying party (the portal's registrable domain) and the origins whose
    # pages may register or use a passkey (the portal's URL, scheme and port included).
    webauthn_rp_id: str = "localhost"
    webauthn_rp_name: str = "Guichet"
    webauthn_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://localhost:3000"]
    )
    # Set for the bootstrap admin's TOTP at creation (base32), so that `make dev` and the tests
    # can sign in as an ops_admin, who needs a second factor. Unset: the admin enrols at first
    # sign-in.
    bootstrap_admin_totp_secret: str | None = None

    # --- password hashing: argon2id, OWASP Password Storage Cheat Sheet (m=19 MiB, t=2, p=1) ---
    argon2_memory_cost_kib: int = Field(default=19456, ge=8)
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_parallelism: int = Field(default=1, ge=1)
    # Threads that hash at once; 0: one per CPU this process may use (more only thrash caches).
    argon2_threads: int = Field(default=0, ge=0)

    # --- clients and first administrator --------------------------------------------------------
    # "client_id=secret,client_id=secret": the internal callers allowed to get a service token.
    service_clients: str = ""
    bootstrap_admin_username: str | None = None
    bootstrap_admin_password: str | None = None
    bootstrap_admin_email: str | None = None

    # Identity mails (verification, reset links): the key is required, not optional as elsewhere.
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

    @field_validator("webauthn_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        """Accepts `["https://a", "https://b"]` or `https://a,https://b` from the environment."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip().rstrip("/") for part in text.split(",") if part.strip()]
        return value

    @field_validator("bootstrap_admin_totp_secret")
    @classmethod
    def _totp_secret_is_base32(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        cleaned = value.strip().replace(" ", "").upper()
        try:
            raw = base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
        except (binascii.Error, ValueError):
            raise ValueError("must be base32 (A-Z, 2-7)") from None
        if len(raw) < 16:
            raise ValueError("must hold at least 128 bits (26 base32 characters)")
        return cleaned

    @field_validator("service_clients")
    @classmethod
    def _service_clients_parse(cls, value: str) -> str:
        parse_service_clients(value)
        return value

    @field_validator("public_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _bootstrap_admin_complete(self) -> IdentitySettings:
        if self.bootstrap_admin_username:
            from services.identity.domain.credentials import password_problems, username_problems

            problems = username_problems(self.bootstrap_admin_username)
            if not self.bootstrap_admin_password:
                problems.append("BOOTSTRAP_ADMIN_PASSWORD is required with a username")
            else:
                problems += password_problems(
                    self.bootstrap_admin_password, self.bootstrap_admin_username
                )
            if problems:
                raise ValueError("bootstrap admin: " + "; ".join(problems))
        return self

    @property
    def service_client_secrets(self) -> dict[str, str]:
        return parse_service_clients(self.service_clients)

    @property
    def longest_token_ttl_seconds(self) -> int:
        """How long a signing key must stay published after it stopped signing."""
        return max(self.access_token_ttl_seconds, self.service_token_ttl_seconds)


def parse_service_clients(value: str) -> dict[str, str]:
    clients: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        client_id, separator, secret = item.partition("=")
        client_id = client_id.strip()
        if not separator or not _CLIENT_ID.match(client_id):
            raise ValueError(f"expected client_id=secret (client_id: a-z 0-9 _ . -), got {item!r}")
        if len(secret) < MIN_CLIENT_SECRET_LENGTH:
            raise ValueError(
                f"secret of {client_id!r} must be at least {MIN_CLIENT_SECRET_LENGTH} characters"
            )
        if client_id in clients:
            raise ValueError(f"client {client_id!r} is listed twice")
        clients[client_id] = secret
    return clients
