"""A small in-process brake on the routes that take a password, a secret token or send mail.

Token bucket per (client address, route): `burst` attempts at once, then `rate_per_minute`.
It protects identity's argon2 CPU and slows credential stuffing before identity's own lockout
(which is per account) has to act. State lives in this process only: with several replicas each
one brakes separately, so a multi-replica deployment wants a shared store (Redis, or the ingress's
limiter) in front; see docs/gateway.md.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable

from fastapi import Request

from services.gateway.problems import ProblemException


class TokenBucketLimiter:
    """Buckets keyed by any hashable; least-recently-used keys are forgotten beyond `max_keys`."""

    def __init__(
        self,
        rate_per_minute: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.rate = rate_per_minute / 60.0
        self.burst = float(burst)
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def acquire(self, key: tuple[str, str]) -> float | None:
        """Takes one token: None when allowed, else the seconds until one is available."""
        if not self.enabled:
            return None
        now = self._clock()
        tokens, updated = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - updated) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            wait = None
        else:
            self._buckets[key] = (tokens, now)
            wait = (1.0 - tokens) / self.rate
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return wait


def client_ip(request: Request, trusted_proxy_count: int) -> str:
    """The caller's address: the peer, or the hop our N trusted proxies recorded in X-Forwarded-For.

    Entries further left than the trusted hops are written by the client and ignored; if the
    header has fewer entries than proxies, the request bypassed them and the peer is used.
    """
    peer = request.client.host if request.client else "unknown"
    if trusted_proxy_count <= 0:
        return peer
    forwarded = ",".join(request.headers.getlist("x-forwarded-for"))
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    if len(hops) < trusted_proxy_count:
        return peer
    candidate = hops[-trusted_proxy_count]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return peer


def bucket_key(address: str) -> str:
    """IPv6 clients are braked per /64: one subscriber usually holds the whole prefix."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


async def auth_rate_limit(request: Request) -> None:
    """Dependency of the authentication routes: 429 problem with Retry-After when over the limit."""
    limiter: TokenBucketLimiter = request.app.state.auth_limiter
    if not limiter.enabled:
        return
    route = request.scope.get("route")
    route_key = str(getattr(route, "path", request.url.path))
    address = client_ip(request, request.app.state.settings.trusted_proxy_count)
    wait = limiter.acquire((bucket_key(address), route_key))
    if wait is not None:
        seconds = max(1, math.ceil(wait))
        raise ProblemException(
            429,
            "rate_limited",
            f"Too many attempts from this address. Try again in {seconds} s.",
            headers={"Retry-After": str(seconds)},
        )
