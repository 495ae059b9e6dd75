"""One-time links mailed to an account (verify the e-mail, choose a password).

Only a token's SHA-256 is stored; a new link of a purpose replaces the live ones, and a used,
replaced or expired link says which. What each link is for lives with its process
(`registration`, `credentials`).
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.domain.common import sha256_hex
from services.identity.models import EmailLink, LinkPurpose, User
from services.identity.settings import IdentitySettings
from services.kit.errors import FailedPrecondition, NotFound


async def recently_sent(
    session: AsyncSession,
    settings: IdentitySettings,
    now: datetime,
    user: User,
    purpose: LinkPurpose,
) -> bool:
    if settings.link_resend_cooldown_seconds <= 0:
        return False
    since = now - timedelta(seconds=settings.link_resend_cooldown_seconds)
    latest = await session.scalar(
        select(func.max(EmailLink.created_at)).where(
            EmailLink.user_id == user.id, EmailLink.purpose == purpose.value
        )
    )
    return latest is not None and latest > since


async def issue_link(
    session: AsyncSession, *, now: datetime, user: User, purpose: LinkPurpose, ttl_seconds: int
) -> str:
    """A fresh one-time token (only its SHA-256 is stored); older live links of the purpose die."""
    assert user.email is not None
    await session.execute(
        update(EmailLink)
        .where(
            EmailLink.user_id == user.id,
            EmailLink.purpose == purpose.value,
            EmailLink.used_at.is_(None),
            EmailLink.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    token = secrets.token_urlsafe(32)
    session.add(
        EmailLink(
            id=uuid.uuid4(),
            user_id=user.id,
            purpose=purpose.value,
            token_hash=sha256_hex(token),
            email=user.email,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_seconds),
        )
    )
    return token


async def consume_link(
    session: AsyncSession, *, now: datetime, token: str, purpose: LinkPurpose
) -> tuple[EmailLink, User]:
    """The link and its user, locked; unknown, used, replaced and expired links say which."""
    link = (
        await session.execute(
            select(EmailLink)
            .where(EmailLink.token_hash == sha256_hex(token), EmailLink.purpose == purpose.value)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if link is None:
        raise NotFound("unknown link", reason="link_unknown")
    if link.used_at is not None:
        raise FailedPrecondition("this link was already used", reason="link_used")
    if link.revoked_at is not None:
        raise FailedPrecondition("this link was replaced by a newer one", reason="link_replaced")
    if link.expires_at <= now:
        raise FailedPrecondition("this link has expired", reason="link_expired")
    user = await session.get(User, link.user_id, with_for_update=True)
    if user is None:  # pragma: no cover - links are deleted with their user
        raise NotFound("unknown link", reason="link_unknown")
    link.used_at = now
    return link, user
