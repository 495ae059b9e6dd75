"""The admin's pages: organisations, members, the accounts to validate, account care, operators.

Every route forwards the caller's token; identity decides who may do what (an association admin
sees their association, an ops admin the platform) and answers 403 or 404 otherwise.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from guichet.identity.v1 import identity_pb2 as pb

from services.gateway.auth import CurrentCaller, Identity
from services.gateway.openapi import errors
from services.gateway.portals.identity.common import IDENTITY_SERVICE, IdentityStub
from services.gateway.portals.identity.schemas import (
    NAME_MAX,
    ROLE_DESCRIPTION,
    AccountEmailBody,
    AuditEvent,
    AuditEventPage,
    CreateUserBody,
    Organisation,
    OrganisationBody,
    OrganisationKind,
    OrganisationPage,
    RoleBody,
    RoleName,
    SigningKey,
    User,
    UsernameRecoveryBody,
    UserPage,
)
from services.gateway.rpc import Operations, Page, one, operation_id, page_of

router = APIRouter(generate_unique_id_function=operation_id)
ops = Operations(router, IDENTITY_SERVICE, IdentityStub)

OrganisationId = Annotated[uuid.UUID, Path(description="The organisation's id (UUID).")]
UserId = Annotated[uuid.UUID, Path(description="The account's id (UUID).")]


# --- organisations ---------------------------------------------------------------------------


@ops.get(
    "/v1/organisations",
    rpc="ListOrganisations",
    answer=page_of(OrganisationPage, Organisation, "organisations"),
    tags=["organisations"],
    summary="List organisations",
    responses=errors(400, 401, 403),
)
def list_organisations(
    page: Page,
    kind: Annotated[OrganisationKind | None, Query(description="Only this kind.")] = None,
) -> pb.ListOrganisationsRequest:
    return pb.ListOrganisationsRequest(
        kind=kind.to_proto() if kind else pb.ORGANISATION_KIND_UNSPECIFIED, page=page
    )


@ops.post(
    "/v1/organisations",
    rpc="CreateOrganisation",
    answer=one(Organisation, "organisation"),
    tags=["organisations"],
    summary="Create an organisation (operators)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 409),
)
def create_organisation(body: OrganisationBody) -> pb.CreateOrganisationRequest:
    return pb.CreateOrganisationRequest(
        kind=body.kind.to_proto(), name=body.name, code=body.code or ""
    )


@ops.get(
    "/v1/organisations/{organisation_id}",
    rpc="GetOrganisation",
    answer=one(Organisation, "organisation"),
    tags=["organisations"],
    summary="One organisation",
    responses=errors(400, 401, 403, 404),
)
def get_organisation(organisation_id: OrganisationId) -> pb.GetOrganisationRequest:
    return pb.GetOrganisationRequest(organisation_id=str(organisation_id))


@ops.get(
    "/v1/organisations/{organisation_id}/members",
    rpc="ListOrganisationMembers",
    answer=page_of(UserPage, User, "users"),
    tags=["organisations"],
    summary="Members of an organisation, optionally by role",
    responses=errors(400, 401, 403, 404),
)
def list_organisation_members(
    organisation_id: OrganisationId,
    page: Page,
    role: Annotated[
        list[RoleName] | None,
        Query(max_length=20, description="Repeatable. " + ROLE_DESCRIPTION),
    ] = None,
) -> pb.ListOrganisationMembersRequest:
    return pb.ListOrganisationMembersRequest(
        organisation_id=str(organisation_id), roles=[r.value for r in role or []], page=page
    )


@ops.get(
    "/v1/organisations/{organisation_id}/accounts",
    rpc="SearchUsers",
    answer=page_of(UserPage, User, "users"),
    tags=["accounts"],
    summary="Find members by name, username or e-mail address (pending ones flagged)",
    responses=errors(400, 401, 403, 404),
)
def search_accounts(
    organisation_id: OrganisationId,
    page: Page,
    last_name: Annotated[
        str | None, Query(max_length=NAME_MAX, description="Prefix; accents and case ignored.")
    ] = None,
    first_name: Annotated[
        str | None, Query(max_length=NAME_MAX, description="Prefix; accents and case ignored.")
    ] = None,
    login: Annotated[
        str | None,
        Query(max_length=320, description="A username or an e-mail address, whole; case ignored."),
    ] = None,
) -> pb.SearchUsersRequest:
    return pb.SearchUsersRequest(
        organisation_id=str(organisation_id),
        last_name=last_name or "",
        first_name=first_name or "",
        login=login or "",
        page=page,
    )


@ops.get(
    "/v1/organisations/{organisation_id}/accounts/to-validate",
    rpc="ListAccountsToValidate",
    answer=page_of(UserPage, User, "users"),
    tags=["accounts"],
    summary="Accounts waiting for validation: complete ones, or those still missing something",
    description=(
        "By default the pending accounts whose information is complete (an admin can validate "
        "them). With `incomplete=true`, the pending accounts still missing something: each "
        "account's `missing` says what."
    ),
    responses=errors(400, 401, 403, 404),
)
def accounts_to_validate(
    organisation_id: OrganisationId,
    page: Page,
    incomplete: Annotated[
        bool, Query(description="The pending accounts still missing something instead.")
    ] = False,
) -> pb.ListAccountsToValidateRequest:
    return pb.ListAccountsToValidateRequest(
        organisation_id=str(organisation_id), page=page, incomplete=incomplete
    )


@ops.post(
    "/v1/organisations/{organisation_id}/accounts",
    rpc="CreateUser",
    answer=one(User, "user"),
    tags=["accounts"],
    summary="Create an active account; the person receives a link to choose a password",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 404, 409),
)
def create_account(organisation_id: OrganisationId, body: CreateUserBody) -> pb.CreateUserRequest:
    return pb.CreateUserRequest(
        organisation_id=str(organisation_id),
        username=body.username,
        email=body.email or "",
        first_name=body.first_name,
        last_name=body.last_name,
        roles=[r.value for r in body.roles],
    )


# --- accounts ----------------------------------------------------------------------------------


@ops.get(
    "/v1/accounts/{user_id}",
    rpc="GetUser",
    answer=one(User, "user"),
    tags=["accounts"],
    summary="One account",
    responses=errors(400, 401, 403, 404),
)
def get_account(user_id: UserId) -> pb.GetUserRequest:
    return pb.GetUserRequest(user_id=str(user_id))


@ops.post(
    "/v1/accounts/{user_id}/validate",
    rpc="ValidateAccount",
    answer=one(User, "user"),
    tags=["accounts"],
    summary="Validate a pending account",
    responses=errors(400, 401, 403, 404, 409),
)
def validate_account(user_id: UserId) -> pb.ValidateAccountRequest:
    return pb.ValidateAccountRequest(user_id=str(user_id))


@ops.put(
    "/v1/accounts/{user_id}/email",
    rpc="SetUserEmail",
    answer=one(User, "user"),
    tags=["accounts"],
    summary="Complete or correct an account's e-mail address",
    responses=errors(400, 401, 403, 404, 409),
)
def set_email(user_id: UserId, body: AccountEmailBody) -> pb.SetUserEmailRequest:
    return pb.SetUserEmailRequest(user_id=str(user_id), email=body.email)


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


@ops.post(
    "/v1/accounts/{user_id}/roles",
    rpc="GrantRole",
    answer=one(User, "user"),
    tags=["accounts"],
    summary="Grant a role in an organisation",
    responses=errors(400, 401, 403, 404, 409),
)
def grant_role(user_id: UserId, body: RoleBody) -> pb.GrantRoleRequest:
    return pb.GrantRoleRequest(
        user_id=str(user_id), organisation_id=str(body.organisation_id), role=body.role.value
    )


@ops.delete(
    "/v1/accounts/{user_id}/roles/{organisation_id}/{role}",
    rpc="RevokeRole",
    answer=one(User, "user"),
    tags=["accounts"],
    summary="Revoke a role in an organisation",
    responses=errors(400, 401, 403, 404, 409),
)
def revoke_role(
    user_id: UserId,
    organisation_id: OrganisationId,
    role: Annotated[RoleName, Path(description=ROLE_DESCRIPTION)],
) -> pb.RevokeRoleRequest:
    return pb.RevokeRoleRequest(
        user_id=str(user_id), organisation_id=str(organisation_id), role=role.value
    )


@ops.get(
    "/v1/accounts/{user_id}/audit",
    rpc="ListAuditEvents",
    answer=page_of(AuditEventPage, AuditEvent, "events"),
    tags=["accounts"],
    summary="What happened to an account (registrations, resets sent and used, failed logins…)",
    responses=errors(400, 401, 403, 404),
)
def list_account_audit(user_id: UserId, page: Page) -> pb.ListAuditEventsRequest:
    return pb.ListAuditEventsRequest(user_id=str(user_id), page=page)


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
