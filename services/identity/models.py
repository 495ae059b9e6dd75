"""Identity's tables: organisations, users and their roles, credentials, links, keys, audit.

Timestamps are set by the domain from its clock (not by the database), so that a row written and
the answer built from it agree, and tests can reason about time.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    false,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from services.kit.db import new_metadata
from services.kit.name_keys import name_clashes_table
from services.kit.outbox import outbox_table


class Base(DeclarativeBase):
    metadata = new_metadata()


class OrganisationKind(StrEnum):
    SERVICE_PROVIDER = "service_provider"
    CLIENT_BUSINESS = "client_business"
    ASSOCIATION = "association"
    DELIVERY_PARTNER = "delivery_partner"
    WORKSHOP = "workshop"
    ERP_CUSTOMER = "erp_customer"
    OPERATOR = "operator"


class UserStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    DISABLED = "disabled"


class LinkPurpose(StrEnum):
    VERIFY_EMAIL = "verify_email"
    PASSWORD_RESET = "password_reset"


def _one_of(column: str, values: type[StrEnum]) -> str:
    listed = ", ".join(f"'{member.value}'" for member in values)
    return f"{column} IN ({listed})"


TZ = DateTime(timezone=True)


class Organisation(Base):
    __tablename__ = "organisations"
    __table_args__ = (
        # NULL codes are distinct in PostgreSQL: organisations without a code never collide.
        UniqueConstraint("kind", "code"),
        CheckConstraint(_one_of("kind", OrganisationKind), name="kind"),
        Index("ix_organisations_name_id", "name", "id"),
        # One name per kind, compared as people read them (services.kit.names.name_key).
        Index("uq_organisations_kind_name_key", "kind", "name_key", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    # NULL only for a row whose key an older row had when keys came (see name_clashes).
    name_key: Mapped[str | None] = mapped_column(Text)
    code: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(TZ)
    # The organisation requires a second factor for its roles that act for others
    # (domain/second_factor.py); ops_admin needs one whatever its organisation says.
    second_factor_required: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        Index("ix_users_search", "organisation_id", "search_last_name", "search_first_name"),
        Index("ix_users_org_status_created", "organisation_id", "status", "created_at"),
        CheckConstraint(_one_of("status", UserStatus), name="status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    username: Mapped[str] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(320))
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    # None for an account created by an admin until its owner chooses a password.
    password_hash: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32))
    address_line: Mapped[str | None] = mapped_column(String(200))
    postal_code: Mapped[str | None] = mapped_column(String(16))
    city: Mapped[str | None] = mapped_column(String(100))
    birth_date: Mapped[date | None] = mapped_column(Date)
    # Names folded for search (accents stripped, case folded), kept in step by the domain. The
    # "C" collation lets the index serve both `LIKE 'prefix%'` and the keyset ordering.
    search_last_name: Mapped[str] = mapped_column(String(200, collation="C"), default="")
    search_first_name: Mapped[str] = mapped_column(String(200, collation="C"), default="")
    created_at: Mapped[datetime] = mapped_column(TZ)
    updated_at: Mapped[datetime] = mapped_column(TZ)

    memberships: Mapped[list[Membership]] = relationship(
        lazy="selectin",
        cascade="all, delete-orphan",
        order_by="(Membership.organisation_id, Membership.role)",
    )


# The one rule that makes `DUPONT.jean` and `dupont.jean` the same account, even under concurrent
# registrations.
Index("uq_users_username_lower", func.lower(User.username), unique=True)
Index("ix_users_email_lower", func.lower(User.email))


class Membership(Base):
    """One role held by one user in one organisation."""

    __tablename__ = "memberships"
    __table_args__ = (Index("ix_memberships_organisation_role", "organisation_id", "role"),)

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(40), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(TZ)


class EmailLink(Base):
    """A one-time link mailed to a user (verify e-mail, reset password); only its hash is kept."""

    __tablename__ = "email_links"
    __table_args__ = (
        CheckConstraint(_one_of("purpose", LinkPurpose), name="purpose"),
        Index("ix_email_links_user_purpose", "user_id", "purpose"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The address the link was sent to: a link proves ownership of that address only.
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(TZ)
    expires_at: Mapped[datetime] = mapped_column(TZ)
    used_at: Mapped[datetime | None] = mapped_column(TZ)
    # Set when a newer link of the same purpose replaced this one.
    revoked_at: Mapped[datetime | None] = mapped_column(TZ)


class RefreshToken(Base):
    """An opaque refresh token (hash only); rotation keeps every token of a login in one family."""

    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    family_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(TZ)
    expires_at: Mapped[datetime] = mapped_column(TZ)
    revoked_at: Mapped[datetime | None] = mapped_column(TZ)
    # rotated, logout, reuse, password_reset, disabled
    revoke_reason: Mapped[str | None] = mapped_column(String(20))
    # How the session was authenticated (RFC 8176 values, space separated: "pwd", "pwd otp mfa",
    # "hwk user mfa"); kept across rotations, so a refresh knows whether a second factor was used.
    amr: Mapped[str] = mapped_column(String(40), default="pwd", server_default="pwd")


class SigningKey(Base):
    """An Ed25519 key that signs access tokens.

    The private key sits in the database as PKCS#8 PEM: good enough here; production would keep
    it in a KMS or HSM and store only a reference and the public key.
    """

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    private_key_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ, index=True)
    # When a newer key took over; the key stays published until its last token has expired.
    retired_at: Mapped[datetime | None] = mapped_column(TZ)


class ServiceClient(Base):
    """An internal caller allowed to get a service token; mirrors the SERVICE_CLIENTS setting."""

    __tablename__ = "service_clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(TZ)


class LoginFailures(Base):
    """Failed sign-ins counted per key, with the lock they earned (domain/throttles.py).

    Keys: `user:<lower(username)>` (failures from devices that never signed in to the account,
    known usernames or not, so a lock reveals nothing), `device:<id>` (failures from one known
    device), `address:<ip or /64>` (failures of unknown devices from one address, across
    usernames), `factor:<user id>` (wrong second factors). Shared by every replica; a row
    disappears once `expires_at` passes (the purge in `throttles.purge`).
    """

    __tablename__ = "login_failures"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[datetime] = mapped_column(TZ)
    locked_until: Mapped[datetime | None] = mapped_column(TZ)
    expires_at: Mapped[datetime] = mapped_column(TZ, index=True)


class RateLimit(Base):
    """Requests per (public route, address), as GCRA's theoretical arrival time (`tat`).

    One upsert per request decides and records it (domain/throttles.py); shared by every replica
    of the gateway, which asks through identity's TakeAttempt. The row expires at `tat`.
    """

    __tablename__ = "rate_limits"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    tat: Mapped[datetime] = mapped_column(TZ, index=True)
    # Whether the last request was refused (read back by the same upsert's RETURNING).
    refused: Mapped[bool] = mapped_column(Boolean, default=False)


class HmacKey(Base):
    """Secrets that sign what identity hands out and verifies itself: device cookies and
    second-factor tickets. Created at start (domain/startup.py); every replica reads them."""

    __tablename__ = "hmac_keys"

    kid: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(TZ)


class TotpCredential(Base):
    """A user's TOTP authenticator (RFC 6238). The secret is sealed (AES-GCM); `last_step` is the
    last time step accepted, so a code is never accepted twice (replay)."""

    __tablename__ = "totp_credentials"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    secret_sealed: Mapped[str] = mapped_column(Text)
    # None while enrolment waits for the first code (an unconfirmed secret signs nobody in).
    confirmed_at: Mapped[datetime | None] = mapped_column(TZ)
    last_step: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(TZ)


class RecoveryCode(Base):
    """A one-time recovery code; only its SHA-256 is kept (80 random bits, like the links)."""

    __tablename__ = "recovery_codes"
    __table_args__ = (UniqueConstraint("user_id", "code_hash"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(TZ)
    used_at: Mapped[datetime | None] = mapped_column(TZ)


class Passkey(Base):
    """A WebAuthn credential (passkey or security key) registered by a user."""

    __tablename__ = "passkeys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # The authenticator's credential id, base64url.
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)
    # COSE public key, base64url.
    public_key: Mapped[str] = mapped_column(Text)
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    name: Mapped[str] = mapped_column(String(100))
    # Whether the authenticator verified its user (PIN, biometrics) at registration.
    user_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(TZ)
    last_used_at: Mapped[datetime | None] = mapped_column(TZ)


class WebauthnChallenge(Base):
    """A WebAuthn challenge handed out and not yet answered; consumed once (DELETE … RETURNING)."""

    __tablename__ = "webauthn_challenges"

    challenge_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    # register, second_factor, sign_in
    purpose: Mapped[str] = mapped_column(String(16))
    # The account it is for (None for a passkey sign-in, where the authenticator names it).
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    expires_at: Mapped[datetime] = mapped_column(TZ, index=True)


class AuditEvent(Base):
    """What happened to an account and who did it. No foreign key: the audit outlives rows."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_user_time", "user_id", "time", "seq"),)
    # Server-generated `seq` is never read back after an insert.
    __mapper_args__ = {"eager_defaults": False}

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    # Insertion order: events of one transaction share their time, and still list in order.
    seq: Mapped[int] = mapped_column(BigInteger, Identity())
    time: Mapped[datetime] = mapped_column(TZ)
    event: Mapped[str] = mapped_column(String(60))
    # A user id, `svc:<client>` for a service, or None for an anonymous caller.
    actor_id: Mapped[str | None] = mapped_column(String(100))
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


outbox = outbox_table(Base.metadata)
name_clashes = name_clashes_table(Base.metadata)
