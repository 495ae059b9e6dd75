"""The admin's pages: organisations, members, the accounts to validate, account care, operators.

Every route forwards the caller's token; identity decides who may do what (an association admin
sees their association, an ops admin the platform) and answers 403 or 404 otherwise.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status
from guichet.common.v1 import common_pb2
from guichet.identity.v1 import identity_pb2 as pb

from services.gateway.auth import CurrentCaller, Identity
from services.gateway.openapi import errors
from services.gateway.schemas import (
    NAME_MAX,
    ROLE_DESCRIPTION,
    ROLE_PATTERN,
    AuditEvent,
    AuditEventPage,
    CreateUserBody,
    EmailBody,
    Organisation,
    OrganisationBody,
    OrganisationKind,
    OrganisationPage,
    RoleBody,
    SigningKey,
    User,
    UsernameRecoveryBody,
    UserPage,
)

router = APIRouter()

OrganisationId = Annotated[uuid.UUID, Path(description="The organisation's id (UUID).")]
UserId = Annotated[uuid.UUID, Path(description="The account's id (UUID).")]


def page_request(
    page_size: Annotated[
        int | None, Query(ge=1, le=500, description="Items per page (default 50).")
    ] = None,
    page_token: Annotated[
        str | None, Query(max_length=1024, description="next_page_token of the previous page.")
    ] = None,
) -> common_pb2.PageRequest:
    return common_pb2.PageRequest(page_size=page_size or 0, page_token=page_token or "")


Page = Annotated[common_pb2.PageRequest, Depends(page_request)]


def _next(page: common_pb2.PageResponse) -> str | None:
    return page.next_page_token or None


# --- organisations ---------------------------------------------------------------------------


@router.get(
    "/v1/organisations",
    tags=["organisations"],
    summary="List organisations",
    responses=errors(400, 401, 403),
)
async def list_organisations(
    caller: CurrentCaller,
    link: Identity,
    page: Page,
    kind: Annotated[OrganisationKind | None, Query(description="Only this kind.")] = None,
) -> OrganisationPage:
    response = await link.stub.ListOrganisations(
        pb.ListOrganisationsRequest(
            kind=kind.to_proto() if kind else pb.ORGANISATION_KIND_UNSPECIFIED, page=page
        ),
        metadata=caller.metadata,
    )
    return OrganisationPage(
        items=[Organisation.from_proto(o) for o in response.organisations],
        next_page_token=_next(response.page),
    )


@router.post(
    "/v1/organisations",
    tags=["organisations"],
    summary="Create an organisation (operators)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 409),
)
async def create_organisation(
    body: OrganisationBody, caller: CurrentCaller, link: Identity
) -> Organisation:
    response = await link.stub.CreateOrganisation(
        pb.CreateOrganisationRequest(
            kind=body.kind.to_proto(), name=body.name, code=body.code or ""
        ),
        metadata=caller.metadata,
    )
    return Organisation.from_proto(response.organisation)


@router.get(
    "/v1/organisations/{organisation_id}",
    tags=["organisations"],
    summary="One organisation",
    responses=errors(400, 401, 403, 404),
)
async def get_organisation(
    organisation_id: OrganisationId, caller: CurrentCaller, link: Identity
) -> Organisation:
    response = await link.stub.GetOrganisation(
        pb.GetOrganisationRequest(organisation_id=str(organisation_id)), metadata=caller.metadata
    )
    return Organisation.from_proto(response.organisation)


@router.get(
    "/v1/organisations/{organisation_id}/members",
    tags=["organisations"],
    summary="Members of an organisation, optionally by role",
    responses=errors(400, 401, 403, 404),
)
async def list_members(
    organisation_id: OrganisationId,
    caller: CurrentCaller,
    link: Identity,
    page: Page,
    role: Annotated[
        list[str] | None, Query(max_length=20, description="Repeatable. " + ROLE_DESCRIPTION)
    ] = None,
) -> UserPage:
    response = await link.stub.ListOrganisationMembers(
        pb.ListOrganisationMembersRequest(
            organisation_id=str(organisation_id), roles=role or [], page=page
        ),
        metadata=caller.metadata,
    )
    return UserPage(
        items=[User.from_proto(u) for u in response.users], next_page_token=_next(response.page)
    )


@router.get(
    "/v1/organisations/{organisation_id}/accounts",
    tags=["accounts"],
    summary="Find members by last and first name (pending ones flagged)",
    responses=errors(400, 401, 403, 404),
)
async def search_accounts(
    organisation_id: OrganisationId,
    caller: CurrentCaller,
    link: Identity,
    page: Page,
    last_name: Annotated[
        str | None, Query(max_length=NAME_MAX, description="Prefix; accents and case ignored.")
    ] = None,
    first_name: Annotated[
        str | None, Query(max_length=NAME_MAX, description="Prefix; accents and case ignored.")
    ] = None,
) -> UserPage:
    response = await link.stub.SearchUsers(
        pb.SearchUsersRequest(
            organisation_id=str(organisation_id),
            last_name=last_name or "",
            first_name=first_name or "",
            page=page,
        ),
        metadata=caller.metadata,
    )
    return UserPage(
        items=[User.from_proto(u) for u in response.users], next_page_token=_next(response.page)
    )


@router.get(
    "/v1/organisations/{organisation_id}/accounts/to-validate",
    tags=["accounts"],
    summary="Accounts waiting for validation whose information is complete",
    responses=errors(400, 401, 403, 404),
)
async def accounts_to_validate(
    organisation_id: OrganisationId, caller: CurrentCaller, link: Identity, page: Page
) -> UserPage:
    response = await link.stub.ListAccountsToValidate(
        pb.ListAccountsToValidateRequest(organisation_id=str(organisation_id), page=page),
        metadata=caller.metadata,
    )
    return UserPage(
        items=[User.from_proto(u) for u in response.users], next_page_token=_next(response.page)
    )


@router.post(
    "/v1/organisations/{organisation_id}/accounts",
    tags=["accounts"],
    summary="Create an active account; the person receives a link to choose a password",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 404, 409),
)
async def create_account(
    organisation_id: OrganisationId, body: CreateUserBody, caller: CurrentCaller, link: Identity
) -> User:
    response = await link.stub.CreateUser(
        pb.CreateUserRequest(
            organisation_id=str(organisation_id),
            username=body.username,
            email=body.email or "",
            first_name=body.first_name,
            last_name=body.last_name,
            roles=body.roles,
        ),
        metadata=caller.metadata,
    )
    return User.from_proto(response.user)


# --- accounts ----------------------------------------------------------------------------------


@router.get(
    "/v1/accounts/{user_id}",
    tags=["accounts"],
    summary="One account",
    responses=errors(400, 401, 403, 404),
)
async def get_account(user_id: UserId, caller: CurrentCaller, link: Identity) -> User:
    response = await link.stub.GetUser(
        pb.GetUserRequest(user_id=str(user_id)), metadata=caller.metadata
    )
    return User.from_proto(response.user)


@router.post(
    "/v1/accounts/{user_id}/validate",
    tags=["accounts"],
    summary="Validate a pending account",
    responses=errors(400, 401, 403, 404, 409),
)
async def validate_account(user_id: UserId, caller: CurrentCaller, link: Identity) -> User:
    response = await link.stub.ValidateAccount(
        pb.ValidateAccountRequest(user_id=str(user_id)), metadata=caller.metadata
    )
    return User.from_proto(response.user)


@router.put(
    "/v1/accounts/{user_id}/email",
    tags=["accounts"],
    summary="Complete or correct an account's e-mail address",
    responses=errors(400, 401, 403, 404, 409),
)
async def set_email(
    user_id: UserId, body: EmailBody, caller: CurrentCaller, link: Identity
) -> User:
    response = await link.stub.SetUserEmail(
        pb.SetUserEmailRequest(user_id=str(user_id), email=body.email), metadata=caller.metadata
    )
    return User.from_proto(response.user)


@router.post(
    "/v1/accounts/{user_id}/password-reset",
    tags=["accounts"],
    summary="Mail the account a password reset link (never a password)",
    status_code=status.HTTP_202_ACCEPTED,
    response_class=Response,
    responses=errors(400, 401, 403, 404, 409),
)
async def send_password_reset(user_id: UserId, caller: CurrentCaller, link: Identity) -> Response:
    await link.stub.SendPasswordReset(
        pb.SendPasswordResetRequest(user_id=str(user_id)), metadata=caller.metadata
    )
    return Response(status_code=status.HTTP_202_ACCEPTED)


@router.post(
    "/v1/accounts/{user_id}/roles",
    tags=["accounts"],
    summary="Grant a role in an organisation",
    responses=errors(400, 401, 403, 404, 409),
)
async def grant_role(
    user_id: UserId, body: RoleBody, caller: CurrentCaller, link: Identity
) -> User:
    response = await link.stub.GrantRole(
        pb.GrantRoleRequest(
            user_id=str(user_id), organisation_id=str(body.organisation_id), role=body.role
        ),
        metadata=caller.metadata,
    )
    return User.from_proto(response.user)


@router.delete(
    "/v1/accounts/{user_id}/roles/{organisation_id}/{role}",
    tags=["accounts"],
    summary="Revoke a role in an organisation",
    responses=errors(400, 401, 403, 404, 409),
)
async def revoke_role(
    user_id: UserId,
    organisation_id: OrganisationId,
    role: Annotated[str, Path(pattern=ROLE_PATTERN, description=ROLE_DESCRIPTION)],
    caller: CurrentCaller,
    link: Identity,
) -> User:
    response = await link.stub.RevokeRole(
        pb.RevokeRoleRequest(user_id=str(user_id), organisation_id=str(organisation_id), role=role),
        metadata=caller.metadata,
    )
    return User.from_proto(response.user)


@router.get(
    "/v1/accounts/{user_id}/audit",
    tags=["accounts"],
    summary="What happened to an account (registrations, resets sent and used, failed logins…)",
    responses=errors(400, 401, 403, 404),
)
async def list_audit(
    user_id: UserId, caller: CurrentCaller, link: Identity, page: Page
) -> AuditEventPage:
    response = await link.stub.ListAuditEvents(
        pb.ListAuditEventsRequest(user_id=str(user_id), page=page), metadata=caller.metadata
    )
    return AuditEventPage(
        items=[AuditEvent.from_proto(e) for e in response.events],
        next_page_token=_next(response.page),
    )


# --- operators -------------------------------------------------------------------------------


@router.post(
    "/v1/operator/username-recovery",
    tags=["operator"],
    summary="Mail a forgotten username after checking the person's identity",
    status_code=status.HTTP_202_ACCEPTED,
    response_class=Response,
    responses=errors(400, 401, 403, 404),
)
async def recover_username(
    body: UsernameRecoveryBody, caller: CurrentCaller, link: Identity
) -> Response:
    await link.stub.RecoverUsername(
        pb.RecoverUsernameRequest(
            email=body.email, verification_reference=body.verification_reference
        ),
        metadata=caller.metadata,
    )
    return Response(status_code=status.HTTP_202_ACCEPTED)


@router.post(
    "/v1/operator/signing-keys/rotate",
    tags=["operator"],
    summary="Start signing tokens with a fresh key",
    responses=errors(401, 403),
)
async def rotate_signing_key(caller: CurrentCaller, link: Identity) -> SigningKey:
    response = await link.stub.RotateSigningKey(
        pb.RotateSigningKeyRequest(), metadata=caller.metadata
    )
    return SigningKey(kid=response.kid)
