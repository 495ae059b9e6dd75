"""Second factors: the signed-in account's own (TOTP, recovery codes, passkeys), an admin's reset
of someone else's, and an organisation's requirement of one for its roles that act for others.

Adding, removing or replacing a factor needs a session that used one, once the account has any
(403 `second_factor_needed` otherwise): a password alone never changes what guards the account.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Response, status
from guichet.identity.v1 import identity_pb2 as pb

from services.gateway.auth import CurrentCaller, Identity
from services.gateway.openapi import errors
from services.gateway.portals.identity.factor_schemas import (
    Passkey,
    PasskeyOptions,
    PasskeyRegistrationBody,
    RecoveryCodes,
    RegisteredPasskey,
    SecondFactorPolicyBody,
    SecondFactors,
    TotpCodeBody,
    TotpEnrolment,
    credential_json,
)
from services.gateway.portals.identity.schemas import Organisation
from services.gateway.rpc import operation_id

router = APIRouter(tags=["second factors"], generate_unique_id_function=operation_id)

# Ids are UUIDs in the path (`:uuid`, so that /v1/me/passkeys/options is not a passkey's path).
PasskeyId = Annotated[uuid.UUID, Path(examples=["8c1d6a52-3f1e-4e0b-9a7c-2d4f6b8e0a1c"])]
UserId = Annotated[uuid.UUID, Path(examples=["6f1c2a4e-8b3d-4c5e-9f70-1a2b3c4d5e6f"])]
OrganisationId = Annotated[uuid.UUID, Path(examples=["0d9e8f7a-6b5c-4d3e-8f1a-2b3c4d5e6f70"])]


@router.get(
    "/v1/me/second-factors",
    summary="The signed-in account's second factors",
    responses=errors(401, 403),
)
async def get_second_factors(caller: CurrentCaller, link: Identity) -> SecondFactors:
    """Also says whether the account's roles need one, and which this session lacks for want of
    one (`withheld_roles`)."""
    response = await link.stub.GetSecondFactors(
        pb.GetSecondFactorsRequest(), metadata=caller.metadata
    )
    return SecondFactors.from_proto(response)


@router.post(
    "/v1/me/second-factors/totp",
    summary="Start setting up an authenticator app",
    status_code=status.HTTP_201_CREATED,
    responses=errors(401, 403, 409),
)
async def begin_totp(caller: CurrentCaller, link: Identity) -> TotpEnrolment:
    """A new secret; it counts once POST …/totp/confirm received a code from the app. 409
    `totp_present` while an app is already set up (remove it first)."""
    response = await link.stub.BeginTotpEnrolment(
        pb.BeginTotpEnrolmentRequest(), metadata=caller.metadata
    )
    return TotpEnrolment.from_proto(response)


@router.post(
    "/v1/me/second-factors/totp/confirm",
    summary="Confirm the authenticator app with its first code",
    responses=errors(400, 401, 403, 409),
)
async def confirm_totp(body: TotpCodeBody, caller: CurrentCaller, link: Identity) -> RecoveryCodes:
    """From now on the app's codes are asked at sign-in. The first factor of an account comes
    with ten recovery codes, shown this once."""
    response = await link.stub.ConfirmTotpEnrolment(
        pb.ConfirmTotpEnrolmentRequest(code=body.code), metadata=caller.metadata
    )
    return RecoveryCodes(recovery_codes=list(response.recovery_codes))


@router.delete(
    "/v1/me/second-factors/totp",
    summary="Remove the authenticator app",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=errors(401, 403),
)
async def remove_totp(caller: CurrentCaller, link: Identity) -> Response:
    await link.stub.RemoveTotp(pb.RemoveTotpRequest(), metadata=caller.metadata)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/v1/me/second-factors/recovery-codes",
    summary="Replace the recovery codes",
    responses=errors(401, 403, 409),
)
async def regenerate_recovery_codes(caller: CurrentCaller, link: Identity) -> RecoveryCodes:
    """Ten new codes, shown this once; the earlier ones stop working."""
    response = await link.stub.RegenerateRecoveryCodes(
        pb.RegenerateRecoveryCodesRequest(), metadata=caller.metadata
    )
    return RecoveryCodes(recovery_codes=list(response.recovery_codes))


@router.post(
    "/v1/me/passkeys/options",
    summary="Start registering a passkey",
    responses=errors(401, 403),
)
async def passkey_registration_options(caller: CurrentCaller, link: Identity) -> PasskeyOptions:
    """Options for the browser's `navigator.credentials.create()` (five minutes, once)."""
    response = await link.stub.BeginPasskeyRegistration(
        pb.BeginPasskeyRegistrationRequest(), metadata=caller.metadata
    )
    return PasskeyOptions.from_json(response.options_json)


@router.post(
    "/v1/me/passkeys",
    summary="Register a passkey",
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 401, 403, 409),
)
async def register_passkey(
    body: PasskeyRegistrationBody, caller: CurrentCaller, link: Identity
) -> RegisteredPasskey:
    """The credential `navigator.credentials.create()` answered to the options."""
    response = await link.stub.FinishPasskeyRegistration(
        pb.FinishPasskeyRegistrationRequest(
            credential=credential_json(body.credential), name=body.name
        ),
        metadata=caller.metadata,
    )
    return RegisteredPasskey(
        passkey=Passkey.from_proto(response.passkey),
        recovery_codes=list(response.recovery_codes),
    )


@router.delete(
    "/v1/me/passkeys/{passkey_id:uuid}",
    summary="Remove a passkey",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=errors(400, 401, 403, 404),
)
async def remove_passkey(passkey_id: PasskeyId, caller: CurrentCaller, link: Identity) -> Response:
    await link.stub.RemovePasskey(
        pb.RemovePasskeyRequest(passkey_id=str(passkey_id)), metadata=caller.metadata
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/v1/accounts/{user_id}/second-factors/reset",
    summary="Reset a user's second factors (admin)",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=errors(400, 401, 403, 404),
)
async def reset_second_factors(user_id: UserId, caller: CurrentCaller, link: Identity) -> Response:
    """For a user who lost every factor and recovery code: removes them all, audited
    (`second_factor.reset`) and mailed to the user. An admin of the user's organisation or
    ops_admin, signed in with a second factor; never one's own (403)."""
    await link.stub.ResetSecondFactors(
        pb.ResetSecondFactorsRequest(user_id=str(user_id)), metadata=caller.metadata
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put(
    "/v1/organisations/{organisation_id}/second-factor-policy",
    summary="Require a second factor for the roles that act for others (admin)",
    responses=errors(400, 401, 403, 404),
)
async def set_second_factor_policy(
    organisation_id: OrganisationId,
    body: SecondFactorPolicyBody,
    caller: CurrentCaller,
    link: Identity,
) -> Organisation:
    """The organisation's admins and support agents then need a second factor: sessions without
    one lose those roles at their next refresh. ops_admin always needs one."""
    response = await link.stub.SetSecondFactorPolicy(
        pb.SetSecondFactorPolicyRequest(
            organisation_id=str(organisation_id), required=body.required
        ),
        metadata=caller.metadata,
    )
    return Organisation.from_proto(response.organisation)
