"""Who is calling: the verified principal of a gRPC call, and how tokens are checked.

Access tokens are short-lived JWTs signed by identity (EdDSA) with rotating keys published as
JWKS. Services verify them locally against the cached JWKS and refresh it when they meet an
unknown key id, so a rotation needs no restart.

A token verified once is remembered until it expires (bounded, least recently used first out):
the same bearer token arrives on every request of a session, and an EdDSA verification plus two
base64/JSON parses cost more than the rest of a small read at the edge. The answer is the same
as verifying again (same expiry and leeway); a key withdrawn from the JWKS before its tokens
expire stops no token already seen, which is what identity's rotation promises anyway (a
rotated key stays published while its tokens live).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import jwt
from jwt import PyJWK

from services.kit.errors import PermissionDenied, Unauthenticated

ISSUER = "guichet-identity"
AUDIENCE = "guichet"
ALGORITHM = "EdDSA"


@dataclass(frozen=True)
class Principal:
    """The verified caller. `memberships` maps organisation id to the roles held there."""

    subject: str
    kind: str  # "user" or "service"
    token: str
    status: str = "active"
    username: str = ""
    memberships: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # How the session was authenticated (RFC 8176: "pwd", "otp", "hwk", "mfa"...), its id (the
    # refresh-token family), and the roles held back because it used no second factor.
    amr: frozenset[str] = frozenset()
    session_id: str = ""
    withheld_roles: frozenset[str] = frozenset()

    @property
    def is_service(self) -> bool:
        return self.kind == "service"

    @property
    def user_id(self) -> str:
        if self.kind != "user":
            raise PermissionDenied("this call needs a user")
        return self.subject

    def roles_in(self, organisation_id: str) -> frozenset[str]:
        return self.memberships.get(organisation_id, frozenset())

    def has_role(self, organisation_id: str, *roles: str) -> bool:
        return bool(self.roles_in(organisation_id) & set(roles))

    def has_any_role(self, *roles: str) -> bool:
        wanted = set(roles)
        return any(held & wanted for held in self.memberships.values())

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any], token: str) -> Principal:
        memberships = {
            org: frozenset(roles) for org, roles in dict(claims.get("orgs") or {}).items()
        }
        return cls(
            subject=str(claims["sub"]),
            kind=str(claims.get("typ", "user")),
            token=token,
            status=str(claims.get("st", "active")),
            username=str(claims.get("name", "")),
            memberships=memberships,
            amr=frozenset(str(method) for method in claims.get("amr") or ()),
            session_id=str(claims.get("sid", "")),
            withheld_roles=frozenset(str(role) for role in claims.get("withheld") or ()),
        )


_principal: ContextVar[Principal | None] = ContextVar("guichet_principal", default=None)
_deadline: ContextVar[float | None] = ContextVar("guichet_deadline", default=None)


def current_principal() -> Principal:
    principal = _principal.get()
    if principal is None:
        raise Unauthenticated("authentication required")
    return principal


def optional_principal() -> Principal | None:
    return _principal.get()


def bind_principal(principal: Principal | None) -> object:
    return _principal.set(principal)


def bind_deadline(monotonic_deadline: float | None) -> object:
    """Remembers when the current incoming call must be answered, for outgoing calls to inherit."""
    return _deadline.set(monotonic_deadline)


def remaining_time() -> float | None:
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


class TokenVerifier:
    """Verifies access tokens against a JWKS that a loader fetches (from identity, or locally)."""

    def __init__(
        self,
        load_jwks: Callable[[], Awaitable[str]],
        *,
        min_refresh_interval: float = 1.0,
        leeway: float = 5.0,
        cache_size: int = 4096,
    ) -> None:
        self._load_jwks = load_jwks
        # token -> (principal, expiry in epoch seconds); only successful verifications.
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._cache_size = cache_size
        self._keys: dict[str, PyJWK] = {}
        self._loaded_at = 0.0
        self._min_refresh_interval = min_refresh_interval
        self._leeway = leeway
        self._lock = asyncio.Lock()

    async def _refresh(self, *, force: bool) -> None:
        async with self._lock:
            if not force and self._keys:
                return
            if force and time.monotonic() - self._loaded_at < self._min_refresh_interval:
                return
            document = json.loads(await self._load_jwks())
            self._keys = {
                key["kid"]: PyJWK.from_dict(key, algorithm=ALGORITHM)
                for key in document.get("keys", [])
            }
            self._loaded_at = time.monotonic()

    async def verify(self, token: str) -> Principal:
        cached = self._verified.get(token)
        if cached is not None:
            principal, expires = cached
            if time.time() < expires + self._leeway:  # jwt.decode's own rule, same leeway
                self._verified.move_to_end(token)
                return principal
            del self._verified[token]
            raise Unauthenticated("token expired")
        principal, expires = await self._verify_signed(token)
        self._verified[token] = (principal, expires)
        if len(self._verified) > self._cache_size:
            self._verified.popitem(last=False)
        return principal

    async def _verify_signed(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("malformed token") from None
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise Unauthenticated("malformed token")
        await self._refresh(force=False)
        if kid not in self._keys:
            await self._refresh(force=True)
        key = self._keys.get(kid)
        if key is None:
            raise Unauthenticated("token signed by an unknown key")
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token expired") from None
        except jwt.PyJWTError:
            raise Unauthenticated("invalid token") from None
        return Principal.from_claims(claims, token), float(claims["exp"])
