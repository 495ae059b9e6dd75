"""Device cookies and the keys that sign what identity hands out and reads back itself.

A device that completed a sign-in (every factor) receives a token naming the account and a random
device id, signed with HMAC-SHA256 (OWASP's device cookie). The gateway keeps it in an HttpOnly
cookie and passes it back on the next sign-in; identity alone signs and verifies it. It proves
only that this device signed in to this account before: it is no credential (the password and
second factor are still asked), it decides which failure counter a sign-in answers to
(`domain/throttles.py`). It is renewed at every sign-in, and lasts `DEVICE_COOKIE_TTL_SECONDS`.

The same keys sign second-factor tickets (`domain/second_factor.py`); every MAC names its purpose
first, so one kind of token is never accepted as another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.domain.common import HMAC_KEY_LOCK
from services.identity.models import HmacKey
from services.identity.settings import IdentitySettings

DEVICE_PREFIX = "d1"
_MAC_BYTES = 16  # 128 bits: forging one is as hard as guessing a random 128-bit value


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class Keyring:
    """The HMAC keys: the newest signs, every one verifies (older ones until they are deleted)."""

    signing_kid: str
    secrets: dict[str, bytes]

    def mac(self, purpose: str, message: str, kid: str | None = None) -> str:
        key = self.secrets[kid or self.signing_kid]
        digest = hmac.new(key, f"{purpose}|{message}".encode(), hashlib.sha256).digest()
        return b64url(digest[:_MAC_BYTES])

    def verifies(self, purpose: str, message: str, kid: str, mac: str) -> bool:
        if kid not in self.secrets:
            return False
        return hmac.compare_digest(self.mac(purpose, message, kid), mac)


async def ensure_keyring(session: AsyncSession, *, now: datetime) -> Keyring:
    """Reads the keys, creating the first one when there is none (advisory lock: replicas that
    start together create one)."""
    rows = (await session.execute(select(HmacKey).order_by(HmacKey.created_at))).scalars().all()
    if not rows:
        await session.execute(select(func.pg_advisory_xact_lock(HMAC_KEY_LOCK)))
        rows = (await session.execute(select(HmacKey).order_by(HmacKey.created_at))).scalars().all()
        if not rows:
            key = HmacKey(kid=secrets.token_hex(8), secret=secrets.token_hex(32), created_at=now)
            session.add(key)
            await session.flush()
            rows = [key]
    return Keyring(
        signing_kid=rows[-1].kid,
        secrets={row.kid: bytes.fromhex(row.secret) for row in rows},
    )


@dataclass(frozen=True)
class Device:
    """A verified device cookie: the account it signed in to and its own id."""

    user_id: uuid.UUID
    device_id: str

    @property
    def throttle_key(self) -> str:
        return f"device:{self.device_id}"


def issue_device_token(
    keyring: Keyring, *, user_id: uuid.UUID, now: datetime, device_id: str | None = None
) -> str:
    """A fresh token for `user_id` (keeping `device_id` when the device had one for it)."""
    device = device_id or secrets.token_hex(12)
    message = f"{user_id.hex}.{device}.{int(now.timestamp())}"
    mac = keyring.mac("device", message)
    return f"{DEVICE_PREFIX}.{keyring.signing_kid}.{message}.{mac}"


def read_device_token(
    keyring: Keyring, token: str, *, settings: IdentitySettings, now: datetime
) -> Device | None:
    """The device a token names, or None when it is absent, forged, malformed or expired."""
    if not token or len(token) > 200:
        return None
    parts = token.split(".")
    if len(parts) != 6 or parts[0] != DEVICE_PREFIX:
        return None
    _, kid, user_hex, device, issued, mac = parts
    message = f"{user_hex}.{device}.{issued}"
    if not keyring.verifies("device", message, kid, mac):
        return None
    try:
        user_id = uuid.UUID(hex=user_hex)
        issued_at = int(issued)
    except ValueError:
        return None
    if not 0 <= now.timestamp() - issued_at <= settings.device_cookie_ttl_seconds:
        return None
    return Device(user_id=user_id, device_id=device)
