"""Service tokens: client credentials for internal callers, and identity's own (signed here, the
issuer needing no credentials of its own)."""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.domain import signing_keys
from services.identity.domain.common import sha256_hex
from services.identity.models import ServiceClient
from services.identity.settings import IdentitySettings
from services.kit.errors import Unauthenticated, Validator

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
    return await signing_keys.sign(session, settings=settings, now=now, claims=claims, ttl=ttl), ttl


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
    return await signing_keys.sign(session, settings=settings, now=now, claims=claims, ttl=ttl), ttl
