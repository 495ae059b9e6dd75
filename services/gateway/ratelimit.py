"""The per-address brake on the public routes that mail or hash, shared by every replica.

Registration, e-mail verification, password reset and the public association forms each send
mail or compute an argon2 hash per request, so each address gets a rate per route. The state
lives in identity's PostgreSQL (GCRA, one upsert per request: `identity.domain.throttles`),
asked through identity's `TakeAttempt`, so N gateway replicas brake as one. Sign-in is not braked
here: identity counts its *failures* per username, device and address (docs/identity.md), so
that successful sign-ins behind one office address never wait. A refused request answers 429
with `Retry-After`.
"""

from __future__ import annotations

import ipaddress

from fastapi import Request
from guichet.identity.v1 import identity_pb2 as pb

from services.gateway.auth import identity_link, public_metadata


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


async def auth_rate_limit(request: Request) -> None:
    """Dependency of the braked routes: identity's shared brake answers, or 429 with Retry-After
    (raised as identity's RESOURCE_EXHAUSTED, which the problem handlers map)."""
    link = await identity_link(request)
    route = request.scope.get("route")
    scope = str(getattr(route, "path", request.url.path))
    address = client_ip(request, request.app.state.settings.trusted_proxy_count)
    await link.stub.TakeAttempt(
        pb.TakeAttemptRequest(scope=f"{request.method} {scope}", client_ip=address),
        metadata=public_metadata(request),
    )
