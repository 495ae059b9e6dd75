"""The keys that sign identity's JWTs: rotation, the published JWKS, and signing itself.

Keys rotate after a period (or on an ops_admin's demand) and stay published while a token they
signed may still be alive, plus a grace for clock skew between services.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity import keys
from services.identity.domain.common import SIGNING_KEY_LOCK, audit
from services.identity.domain.roles import is_ops_admin
from services.identity.models import SigningKey
from services.identity.settings import IdentitySettings
from services.kit.auth import AUDIENCE, ISSUER, Principal
from services.kit.errors import PermissionDenied

# Keys stay published this long past their last token's expiry (clock skew between services).
JWKS_GRACE_SECONDS = 60


async def _newest_key(session: AsyncSession) -> SigningKey | None:
    return (
        await session.execute(select(SigningKey).order_by(SigningKey.created_at.desc()).limit(1))
    ).scalar_one_or_none()


async def _create_key(
    session: AsyncSession, now: datetime, *, unless_newer_than: datetime | None
) -> SigningKey:
    """A new newest key, unless a concurrent caller made one meanwhile (advisory lock)."""
    await session.execute(select(func.pg_advisory_xact_lock(SIGNING_KEY_LOCK)))
    newest = await _newest_key(session)
    if (
        newest is not None
        and unless_newer_than is not None
        and newest.created_at > unless_newer_than
    ):
        return newest
    await session.execute(
        update(SigningKey).where(SigningKey.retired_at.is_(None)).values(retired_at=now)
    )
    kid, pem = keys.new_key()
    key = SigningKey(kid=kid, private_key_pem=pem, created_at=now)
    session.add(key)
    await session.flush()
    return key


async def current_signing_key(
    *, session: AsyncSession, settings: IdentitySettings, now: datetime
) -> SigningKey:
    """The key that signs now: the newest, replaced once older than the rotation period."""
    newest = await _newest_key(session)
    oldest_acceptable = now - timedelta(seconds=settings.signing_key_rotation_seconds)
    if newest is not None and newest.created_at > oldest_acceptable:
        return newest
    return await _create_key(session, now, unless_newer_than=oldest_acceptable)


async def rotate_signing_key(
    *, session: AsyncSession, actor: Principal | None, now: datetime
) -> str:
    if not is_ops_admin(actor):
        raise PermissionDenied("only ops_admin may rotate signing keys")
    key = await _create_key(session, now, unless_newer_than=None)
    audit(
        session=session,
        now=now,
        event="signing_key.rotated",
        actor=actor,
        user_id=None,
        kid=key.kid,
    )
    return key.kid


async def published_keys(
    *, session: AsyncSession, settings: IdentitySettings, now: datetime
) -> list[SigningKey]:
    """Every key that may have signed a token still alive: the signing one and recent retirees."""
    horizon = now - timedelta(seconds=settings.longest_token_ttl_seconds + JWKS_GRACE_SECONDS)
    result = await session.execute(
        select(SigningKey)
        .where(or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > horizon))
        .order_by(SigningKey.created_at.desc())
    )
    return list(result.scalars().all())


async def jwks(*, session: AsyncSession, settings: IdentitySettings, now: datetime) -> str:
    return keys.jwks_json(
        [
            (key.kid, key.private_key_pem)
            for key in await published_keys(session=session, settings=settings, now=now)
        ]
    )


async def sign(
    session: AsyncSession,
    *,
    settings: IdentitySettings,
    now: datetime,
    claims: dict[str, Any],
    ttl: int,
) -> str:
    key = await current_signing_key(session=session, settings=settings, now=now)
    return sign_with(key.kid, key.private_key_pem, now=now, claims=claims, ttl=ttl)


def sign_with(kid: str, pem: str, *, now: datetime, claims: dict[str, Any], ttl: int) -> str:
    """A JWT of `claims` signed by the key `kid` (a caller that already read the current key)."""
    issued_at = int(now.timestamp())
    payload = {
        **claims,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": issued_at,
        "exp": issued_at + ttl,
        "jti": str(uuid.uuid4()),
    }
    return keys.sign(payload, kid=kid, pem=pem)
