"""Tokens and passwords: sign-in (password, second factor, passkey), refresh, logout, JWKS,
forgotten and reset passwords.

Sign-in is braked by identity, which counts failures per username (for unknown devices), per
known device and per address, in PostgreSQL shared by every replica (docs/identity.md). The
device cookie a complete sign-in sets (`guichet_device`, HttpOnly) is passed back to identity at
the next one: it is what keeps a person's own device out of a lock that others' failures
earned. The routes that mail or hash per request (forgot/reset password) take identity's shared
per-address brake (`ratelimit.auth_rate_limit`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Cookie, Depends, Request, Response, status
from fastapi.responses import JSONResponse
from guichet.identity.v1 import identity_pb2 as pb

from services.gateway.auth import Identity, public_metadata
from services.gateway.openapi import errors
from services.gateway.portals.identity.factor_schemas import (
    PasskeyOptions,
    PasskeyOptionsBody,
    PasskeySignInBody,
    SecondFactorBody,
    SecondFactorChallenge,
    credential_json,
)
from services.gateway.portals.identity.schemas import (
    ForgotPasswordBody,
    Jwks,
    LoginBody,
    RefreshBody,
    ResetPasswordBody,
    TokenPair,
)
from services.gateway.ratelimit import auth_rate_limit, client_ip
from services.gateway.rpc import operation_id

router = APIRouter(tags=["authentication"], generate_unique_id_function=operation_id)
braked = [Depends(auth_rate_limit)]

DEVICE_COOKIE = "guichet_device"
# Only the sign-in routes read it; nothing else needs to carry it.
DEVICE_COOKIE_PATH = "/v1/auth"
DeviceCookie = Annotated[
    str | None,
    Cookie(
        alias=DEVICE_COOKIE,
        max_length=300,
        description="The device cookie of an earlier complete sign-in to the account, if any: "
        "failures from other devices do not hold this one back.",
    ),
]
_SECOND_FACTOR_ANSWER: dict[int | str, dict[str, Any]] = {
    202: {
        "model": SecondFactorChallenge,
        "description": "The password was right and the account uses a second factor: answer "
        "with one of `methods` at POST /v1/auth/second-factor (no tokens yet).",
    }
}


def _signed_in(
    request: Request,
    response: pb.LoginResponse | pb.CompleteSecondFactorResponse | pb.PasskeySignInResponse,
) -> Response:
    """200 with the pair and the renewed device cookie, or 202 with the second-factor ticket."""
    if isinstance(response, pb.LoginResponse) and response.HasField("second_factor"):
        challenge = SecondFactorChallenge.from_proto(response.second_factor)
        return JSONResponse(challenge.model_dump(mode="json"), status_code=202)
    answer = JSONResponse(TokenPair.from_proto(response.tokens).model_dump(mode="json"))
    if response.device_token:
        settings = request.app.state.settings
        answer.set_cookie(
            DEVICE_COOKIE,
            response.device_token,
            max_age=settings.device_cookie_max_age,
            path=DEVICE_COOKIE_PATH,
            secure=settings.device_cookie_secure,
            httponly=True,
            samesite="strict",
        )
    return answer


# Clients may cache the key set briefly; they refetch when a token names an unknown key.
JWKS_CACHE_CONTROL = "public, max-age=300"


@router.post(
    "/v1/auth/token",
    summary="Sign in with username and password",
    response_model=TokenPair,
    responses={**_SECOND_FACTOR_ANSWER, **errors(400, 401, 403, 429)},
)
async def issue_token(
    body: LoginBody, request: Request, link: Identity, guichet_device: DeviceCookie = None
) -> Response:
    """Unknown usernames and wrong passwords answer the same 401. After repeated failures,
    sign-ins to that username from devices that never completed one (and from an address whose
    attempts failed too often) answer **429 with Retry-After**, exactly as for a username that
    does not exist; each further failure makes the wait longer. A device whose `guichet_device`
    cookie says it signed in to the account before answers only to its own failures, so others'
    failures never lock its owner out. A complete sign-in sets that cookie (HttpOnly, Secure).
    An account with a second factor answers 202 with a ticket instead of tokens."""
    settings = request.app.state.settings
    response = await link.stub.Login(
        pb.LoginRequest(
            username=body.username,
            password=body.password,
            client_ip=client_ip(request, settings.trusted_proxy_count),
            device_token=guichet_device or "",
        ),
        metadata=public_metadata(request),
    )
    return _signed_in(request, response)


@router.post(
    "/v1/auth/second-factor",
    summary="Complete a sign-in with a second factor",
    response_model=TokenPair,
    responses=errors(400, 401, 403, 429),
)
async def complete_second_factor(
    body: SecondFactorBody, request: Request, link: Identity, guichet_device: DeviceCookie = None
) -> Response:
    """With the ticket of the 202 answer and exactly one of a TOTP `code`, a `recovery_code` or
    a `passkey` credential. A wrong one is a 401 (`second_factor_invalid`); repeated ones lock
    this step as failed passwords do (429 with Retry-After), and mail the account's owner."""
    settings = request.app.state.settings
    response = await link.stub.CompleteSecondFactor(
        pb.CompleteSecondFactorRequest(
            ticket=body.ticket,
            code=body.code or "",
            recovery_code=body.recovery_code or "",
            passkey_credential=credential_json(body.passkey, "passkey") if body.passkey else "",
            client_ip=client_ip(request, settings.trusted_proxy_count),
            device_token=guichet_device or "",
        ),
        metadata=public_metadata(request),
    )
    return _signed_in(request, response)


@router.post(
    "/v1/auth/passkey/options",
    summary="Start a passkey sign-in (or a passkey second factor)",
    responses=errors(400, 401, 409),
)
async def passkey_options(
    body: PasskeyOptionsBody, request: Request, link: Identity
) -> PasskeyOptions:
    """Options for `navigator.credentials.get()`: for the passkeys of the ticket's account, or
    without a ticket for any passkey of this site (a sign-in without password). The challenge
    inside serves once, for five minutes."""
    response = await link.stub.BeginPasskeySignIn(
        pb.BeginPasskeySignInRequest(ticket=body.ticket or ""), metadata=public_metadata(request)
    )
    return PasskeyOptions.from_json(response.options_json)


@router.post(
    "/v1/auth/passkey",
    summary="Sign in with a passkey alone",
    response_model=TokenPair,
    responses=errors(400, 401, 403),
)
async def passkey_sign_in(
    body: PasskeySignInBody, request: Request, link: Identity, guichet_device: DeviceCookie = None
) -> Response:
    """The credential answering options asked without a ticket; the passkey must have verified
    its user (PIN, biometrics), which makes it two factors at once."""
    settings = request.app.state.settings
    response = await link.stub.PasskeySignIn(
        pb.PasskeySignInRequest(
            credential=credential_json(body.credential),
            client_ip=client_ip(request, settings.trusted_proxy_count),
            device_token=guichet_device or "",
        ),
        metadata=public_metadata(request),
    )
    return _signed_in(request, response)


@router.post(
    "/v1/auth/refresh",
    summary="Exchange a refresh token for a new pair",
    responses=errors(400, 401),
)
async def refresh_token(body: RefreshBody, request: Request, link: Identity) -> TokenPair:
    """The refresh token is rotated: the one sent is revoked and must not be used again. The new
    access token carries the account's roles as they are now, under the second-factor rules."""
    response = await link.stub.Refresh(
        pb.RefreshRequest(refresh_token=body.refresh_token), metadata=public_metadata(request)
    )
    return TokenPair.from_proto(response.tokens)


@router.post(
    "/v1/auth/logout",
    summary="Revoke a refresh token",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=errors(400, 401),
)
async def logout(body: RefreshBody, request: Request, link: Identity) -> Response:
    await link.stub.Logout(
        pb.LogoutRequest(refresh_token=body.refresh_token), metadata=public_metadata(request)
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _jwks(request: Request, response: Response, link: Identity) -> Jwks:
    answer = await link.stub.GetJwks(pb.GetJwksRequest(), metadata=public_metadata(request))
    response.headers["Cache-Control"] = JWKS_CACHE_CONTROL
    return Jwks.from_json(answer.jwks_json)


router.add_api_route(
    "/v1/auth/jwks",
    _jwks,
    methods=["GET"],
    operation_id="getJwks",
    response_model=Jwks,
    summary="Public keys that verify access tokens",
    responses=errors(),
)
router.add_api_route(
    "/.well-known/jwks.json",
    _jwks,
    methods=["GET"],
    response_model=Jwks,
    summary="Public keys that verify access tokens (well-known location)",
    responses=errors(),
    operation_id="getWellKnownJwks",
)


@router.post(
    "/v1/password/forgot",
    summary="Mail a password reset link",
    status_code=status.HTTP_202_ACCEPTED,
    response_class=Response,
    dependencies=braked,
    responses=errors(400, 429),
)
async def forgot_password(body: ForgotPasswordBody, request: Request, link: Identity) -> Response:
    """Always 202, whether or not an account matches: the answer reveals nothing."""
    await link.stub.RequestPasswordReset(
        pb.RequestPasswordResetRequest(login=body.login), metadata=public_metadata(request)
    )
    return Response(status_code=status.HTTP_202_ACCEPTED)


@router.post(
    "/v1/password/reset",
    summary="Choose a new password with the mailed token",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    dependencies=braked,
    responses=errors(400, 404, 409, 429),
)
async def reset_password(body: ResetPasswordBody, request: Request, link: Identity) -> Response:
    await link.stub.ResetPassword(
        pb.ResetPasswordRequest(token=body.token, new_password=body.new_password),
        metadata=public_metadata(request),
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
