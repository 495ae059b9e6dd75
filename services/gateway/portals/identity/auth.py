"""Tokens and passwords: login, refresh, logout, JWKS, forgotten and reset passwords.

These routes take secrets or send mail, so the unauthenticated ones go through the per-address
brake (`ratelimit.auth_rate_limit`) before identity spends argon2 time on them.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response, status
from guichet.identity.v1 import identity_pb2 as pb

from services.gateway.auth import Identity, public_metadata
from services.gateway.openapi import errors
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

# Clients may cache the key set briefly; they refetch when a token names an unknown key.
JWKS_CACHE_CONTROL = "public, max-age=300"


@router.post(
    "/v1/auth/token",
    summary="Log in with username and password",
    dependencies=braked,
    responses=errors(400, 401, 429),
)
async def issue_token(body: LoginBody, request: Request, link: Identity) -> TokenPair:
    """Unknown users, wrong passwords and locked accounts all answer the same 401."""
    settings = request.app.state.settings
    response = await link.stub.Login(
        pb.LoginRequest(
            username=body.username,
            password=body.password,
            client_ip=client_ip(request, settings.trusted_proxy_count),
        ),
        metadata=public_metadata(request),
    )
    return TokenPair.from_proto(response.tokens)


@router.post(
    "/v1/auth/refresh",
    summary="Exchange a refresh token for a new pair",
    dependencies=braked,
    responses=errors(400, 401, 429),
)
async def refresh_token(body: RefreshBody, request: Request, link: Identity) -> TokenPair:
    """The refresh token is rotated: the one sent is revoked and must not be used again."""
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
