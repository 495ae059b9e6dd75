"""Self-registration: create a pending account, verify the e-mail, re-send the verification."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status
from guichet.identity.v1 import identity_pb2 as pb

from services.gateway.auth import Identity, public_metadata
from services.gateway.openapi import errors
from services.gateway.portals.identity.schemas import (
    Organisation,
    SelfRegistrationBody,
    TokenBody,
    User,
    UsernameBody,
)
from services.gateway.ratelimit import auth_rate_limit
from services.gateway.rpc import operation_id

router = APIRouter(tags=["registration"], generate_unique_id_function=operation_id)
braked = [Depends(auth_rate_limit)]


@router.post(
    "/v1/registrations",
    summary="Register a new member",
    status_code=status.HTTP_201_CREATED,
    dependencies=braked,
    responses=errors(400, 404, 409, 429),
)
async def register(body: SelfRegistrationBody, request: Request, link: Identity) -> User:
    """The account starts pending: verify the e-mail, complete the profile, wait for an admin."""
    response = await link.stub.Register(
        pb.RegisterRequest(
            organisation_id=str(body.organisation_id),
            username=body.username,
            email=body.email,
            password=body.password,
            first_name=body.first_name,
            last_name=body.last_name,
        ),
        metadata=public_metadata(request),
    )
    return User.from_proto(response.user)


@router.get(
    "/v1/registrations/organisations/{organisation_id}",
    summary="The organisation an invitation link names (public)",
    dependencies=braked,
    responses=errors(400, 404, 409, 429),
)
async def registration_organisation(
    organisation_id: Annotated[uuid.UUID, Path(description="From the invitation link.")],
    request: Request,
    link: Identity,
) -> Organisation:
    """What a registration page shows of an invitation link's organisation (its name), so that
    a person never types an id; 404 if there is none, 409 `self_registration_closed` if it does
    not accept sign-up."""
    response = await link.stub.GetRegistrationOrganisation(
        pb.GetRegistrationOrganisationRequest(organisation_id=str(organisation_id)),
        metadata=public_metadata(request),
    )
    return Organisation.from_proto(response.organisation)


@router.post(
    "/v1/registrations/verify-email",
    summary="Confirm the e-mail address with the mailed token",
    dependencies=braked,
    responses=errors(400, 404, 409, 429),
)
async def verify_email(body: TokenBody, request: Request, link: Identity) -> User:
    response = await link.stub.VerifyEmail(
        pb.VerifyEmailRequest(token=body.token), metadata=public_metadata(request)
    )
    return User.from_proto(response.user)


@router.post(
    "/v1/registrations/resend-verification",
    summary="Mail the verification link again",
    status_code=status.HTTP_202_ACCEPTED,
    response_class=Response,
    dependencies=braked,
    responses=errors(400, 429),
)
async def resend_verification(body: UsernameBody, request: Request, link: Identity) -> Response:
    await link.stub.ResendVerification(
        pb.ResendVerificationRequest(username=body.username), metadata=public_metadata(request)
    )
    return Response(status_code=status.HTTP_202_ACCEPTED)
