"""Tokens: password login with brute-force lockout, refresh rotation, logout, service tokens.

Two calls must keep a change although they refuse the request (a failed login counts towards the
lockout; a reused refresh token revokes its family): they return a `Refusal` for the servicer to
raise after the commit, instead of raising.
"""

from __future__ import annotations

import hmac
import math
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.domain.common import audit, check_token_field, sha256_hex
from services.identity.domain.signing_keys import sign
from services.identity.models import LoginThrottle, RefreshToken, ServiceClient, User, UserStatus
from services.identity.passwords import Passwords
from services.identity.settings import IdentitySettings
from services.kit.errors import (
    DomainError,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Validator,
)


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_in: int


@dataclass(frozen=True)
class Refusal:
    """A refused request whose bookkeeping must be committed before `error` is raised."""

    error: DomainError


def user_claims(user: User) -> dict[str, Any]:
    """What an access token says about a user; roles only once an admin validated the account."""
    orgs: dict[str, list[str]] = {}
    if user.status == UserStatus.ACTIVE:
        for membership in user.memberships:
            orgs.setdefault(str(membership.organisation_id), []).append(membership.role)
    return {
        "sub": str(user.id),
        "typ": "user",
        "st": user.status,
        "name": user.username,
        "orgs": {org: sorted(roles) for org, roles in orgs.items()},
    }


async def _issue_user_tokens(
    session: AsyncSession,
    *,
    settings: IdentitySettings,
    now: datetime,
    user: User,
    family_id: uuid.UUID | None = None,
) -> IssuedTokens:
    access = await sign(
        session,
        settings=settings,
        now=now,
        claims=user_claims(user),
        ttl=settings.access_token_ttl_seconds,
    )
    refresh = secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            id=uuid.uuid4(),
            user_id=user.id,
            family_id=family_id or uuid.uuid4(),
            token_hash=sha256_hex(refresh),
            created_at=now,
            expires_at=now + timedelta(seconds=settings.refresh_token_ttl_seconds),
        )
    )
    return IssuedTokens(
        access_token=access,
        refresh_token=refresh,
        expires_in=settings.access_token_ttl_seconds,
        refresh_expires_in=settings.refresh_token_ttl_seconds,
    )


async def revoke_refresh_tokens(
    session: AsyncSession, now: datetime, where: ColumnElement[bool], reason: str
) -> None:
    await session.execute(
        update(RefreshToken)
        .where(where, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now, revoke_reason=reason)
    )


async def _record_login_failure(
    session: AsyncSession, settings: IdentitySettings, now: datetime, key: str
) -> None:
    """Counts one failure atomically (one upsert), so concurrent failures are all counted."""
    table = LoginThrottle.__table__
    window_over = table.c.window_started_at <= now - timedelta(
        seconds=settings.lockout_window_seconds
    )
    failures = case((window_over, 1), else_=table.c.failures + 1)
    locked_until = now + timedelta(seconds=settings.lockout_seconds)
    statement = pg_insert(LoginThrottle).values(
        username_key=key,
        failures=1,
        window_started_at=now,
        locked_until=locked_until if settings.lockout_threshold <= 1 else None,
    )
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.username_key],
        set_={
            "failures": failures,
            "window_started_at": case((window_over, now), else_=table.c.window_started_at),
            "locked_until": case(
                (failures >= settings.lockout_threshold, locked_until), else_=table.c.locked_until
            ),
        },
    )
    await session.execute(statement)


INVALID_CREDENTIALS = "invalid username or password"


async def login(
    *,
    session: AsyncSession,
    settings: IdentitySettings,
    passwords: Passwords,
    now: datetime,
    username: str,
    password: str,
    client_ip: str,
) -> IssuedTokens | Refusal:
    """Password login; unknown and known usernames cost the same and lock out the same."""
    v = Validator()
    v.require("username", username)
    v.check(
        len(username) <= 64, "username", "must be at most 64 characters", code="string_too_long"
    )
    v.require("password", password)
    v.check(len(password) <= 1024, "password", "is too long")
    v.check(len(client_ip) <= 64, "client_ip", "must be at most 64 characters")
    v.raise_if_any()
    key = username.strip().lower()
    throttle = (
        await session.execute(select(LoginThrottle).where(LoginThrottle.username_key == key))
    ).scalar_one_or_none()
    if throttle is not None and throttle.locked_until is not None and throttle.locked_until > now:
        wait = math.ceil((throttle.locked_until - now).total_seconds())
        return Refusal(
            ResourceExhausted("too many failed attempts, try again later", retry_after_seconds=wait)
        )
    user = (
        await session.execute(select(User).where(func.lower(User.username) == key))
    ).scalar_one_or_none()
    ok = await passwords.verify(user.password_hash if user is not None else None, password)
    if not ok or user is None or user.password_hash is None:
        await _record_login_failure(session, settings, now, key)
        if user is not None:
            audit(
                session=session,
                now=now,
                event="login.failed",
                actor=None,
                user_id=user.id,
                client_ip=client_ip or None,
                reason="wrong_password",
            )
        return Refusal(Unauthenticated(INVALID_CREDENTIALS, reason="invalid_credentials"))
    if user.status == UserStatus.DISABLED:
        # Said only to whoever knows the password: it reveals nothing to a guesser.
        audit(
            session=session,
            now=now,
            event="login.failed",
            actor=None,
            user_id=user.id,
            client_ip=client_ip or None,
            reason="disabled",
        )
        return Refusal(PermissionDenied("this account is disabled", reason="account_disabled"))
    if throttle is not None:  # earlier failures are forgiven; most logins have none to forgive
        await session.execute(delete(LoginThrottle).where(LoginThrottle.username_key == key))
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = await passwords.hash(password)
        user.updated_at = now
    audit(
        session=session,
        now=now,
        event="login.succeeded",
        actor=None,
        user_id=user.id,
        client_ip=client_ip or None,
    )
    return await _issue_user_tokens(session, settings=settings, now=now, user=user)


INVALID_REFRESH = "invalid refresh token"


async def refresh(
    *, session: AsyncSession, settings: IdentitySettings, now: datetime, refresh_token: str
) -> IssuedTokens | Refusal:
    """Rotation: the presented token dies and a new one of the same family is issued.

    Presenting a token that was already rotated means two parties hold the family: the whole
    family is revoked (theft detection, RFC 9700 section 4.14.2).
    """
    v = Validator()
    check_token_field(v, "refresh_token", refresh_token, "refresh")
    v.raise_if_any()
    token = (
        await session.execute(
            select(RefreshToken)
            .where(RefreshToken.token_hash == sha256_hex(refresh_token))
            .with_for_update()
        )
    ).scalar_one_or_none()
    if token is None:
        return Refusal(Unauthenticated(INVALID_REFRESH, reason="invalid_refresh_token"))
    if token.revoked_at is not None:
        if token.revoke_reason == "rotated":
            await revoke_refresh_tokens(
                session, now, RefreshToken.family_id == token.family_id, "reuse"
            )
            audit(
                session=session,
                now=now,
                event="refresh_token.reused",
                actor=None,
                user_id=token.user_id,
                family_id=token.family_id,
            )
            return Refusal(
                Unauthenticated(
                    "refresh token already used; the session was revoked",
                    reason="refresh_token_reused",
                )
            )
        return Refusal(Unauthenticated(INVALID_REFRESH, reason="refresh_token_revoked"))
    if token.expires_at <= now:
        return Refusal(Unauthenticated("refresh token expired", reason="refresh_token_expired"))
    user = await session.get(User, token.user_id)
    if user is None or user.status == UserStatus.DISABLED:
        await revoke_refresh_tokens(
            session, now, RefreshToken.family_id == token.family_id, "disabled"
        )
        return Refusal(Unauthenticated(INVALID_REFRESH, reason="account_disabled"))
    token.revoked_at = now
    token.revoke_reason = "rotated"
    return await _issue_user_tokens(
        session, settings=settings, now=now, user=user, family_id=token.family_id
    )


async def logout(*, session: AsyncSession, now: datetime, refresh_token: str) -> None:
    """Revokes the token's whole family; unknown tokens are fine (logging out twice is harmless)."""
    v = Validator()
    check_token_field(v, "refresh_token", refresh_token, "refresh")
    v.raise_if_any()
    token = (
        await session.execute(
            select(RefreshToken).where(RefreshToken.token_hash == sha256_hex(refresh_token))
        )
    ).scalar_one_or_none()
    if token is None:
        return
    await revoke_refresh_tokens(session, now, RefreshToken.family_id == token.family_id, "logout")
    audit(session=session, now=now, event="logout", actor=None, user_id=token.user_id)


_NO_SECRET = "0" * 64


async def issue_service_token(
    *,
    session: AsyncSession,
    settings: IdentitySettings,
    now: datetime,
    client_id: str,
    client_secret: str,
) -> tuple[str, int]:
    """Client credentials for internal callers; the secret is compared in constant time."""
    v = Validator()
    v.require("client_id", client_id)
    v.check(len(client_id) <= 64, "client_id", "must be at most 64 characters")
    v.require("client_secret", client_secret)
    v.check(len(client_secret) <= 1024, "client_secret", "is too long")
    v.raise_if_any()
    client = await session.get(ServiceClient, client_id)
    expected = client.secret_sha256 if client is not None else _NO_SECRET
    matches = hmac.compare_digest(sha256_hex(client_secret), expected)
    if client is None or not matches:
        raise Unauthenticated("invalid client credentials", reason="invalid_client")
    ttl = settings.service_token_ttl_seconds
    claims = _service_claims(client_id)
    return await sign(session, settings=settings, now=now, claims=claims, ttl=ttl), ttl


def _service_claims(client_id: str) -> dict[str, Any]:
    return {
        "sub": f"svc:{client_id}",
        "typ": "service",
        "st": "active",
        "name": client_id,
        "orgs": {},
    }


# The client id of identity's own calls to other services (the membership fee check).
IDENTITY_CLIENT_ID = "identity"


async def own_service_token(
    *, session: AsyncSession, settings: IdentitySettings, now: datetime
) -> tuple[str, int]:
    """Identity's own service token, signed here: the issuer needs no credentials of its own."""
    ttl = settings.service_token_ttl_seconds
    claims = _service_claims(IDENTITY_CLIENT_ID)
    return await sign(session, settings=settings, now=now, claims=claims, ttl=ttl), ttl
