"""Authentication at the edge: who is calling, proven by an access token identity signed.

The gateway verifies the bearer token locally against identity's JWKS (cached, refreshed on an
unknown key id) and then forwards the same token on every gRPC call, explicitly as metadata: the
services authorise with it. The gateway itself takes no authorisation decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.gateway.problems import ProblemException, bearer_challenge, request_id_of
from services.kit.auth import Principal
from services.kit.errors import Unauthenticated
from services.kit.identity_client import IdentityLink

Metadata = tuple[tuple[str, str], ...]

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    bearerFormat="JWT",
    description="Access token from POST /v1/auth/token.",
)


async def identity_link(request: Request) -> IdentityLink:
    """Async on purpose: FastAPI runs a plain `def` dependency in a worker thread."""
    link: IdentityLink | None = getattr(request.app.state, "identity", None)
    if link is None:
        raise ProblemException(
            503,
            "unavailable",
            "The gateway is starting. Try again shortly.",
            headers={"Retry-After": "1"},
        )
    return link


Identity = Annotated[IdentityLink, Depends(identity_link)]


def _request_metadata(request: Request) -> Metadata:
    request_id = request_id_of(request.scope)
    return (("x-request-id", request_id),) if request_id else ()


def public_metadata(request: Request) -> Metadata:
    """For calls made on nobody's behalf: the channel adds the gateway's service token."""
    return _request_metadata(request)


@dataclass(frozen=True)
class Caller:
    """The authenticated end user of this request, and the metadata that carries them to gRPC."""

    principal: Principal
    token: str
    metadata: Metadata


def _unauthenticated(detail: str, *, error: str | None) -> ProblemException:
    return ProblemException(
        401,
        "unauthenticated",
        detail,
        headers={"WWW-Authenticate": bearer_challenge(error, detail if error else None)},
    )


async def authenticate(
    request: Request,
    link: Identity,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """401 problem unless the request carries a valid, unexpired user access token."""
    if credentials is None:
        raise _unauthenticated(
            "This route needs an access token (Authorization: Bearer).", error=None
        )
    token = credentials.credentials.strip()
    try:
        principal = await link.verifier.verify(token)
    except Unauthenticated as error:
        raise _unauthenticated(
            f"The access token is refused: {error.message}.", error="invalid_token"
        ) from None
    if principal.kind != "user":
        # Service tokens are for internal callers; they are not credentials at the public edge.
        raise _unauthenticated("The access token is not a user token.", error="invalid_token")
    metadata = (("authorization", f"Bearer {token}"), *_request_metadata(request))
    return Caller(principal=principal, token=token, metadata=metadata)


CurrentCaller = Annotated[Caller, Depends(authenticate)]
