"""The identity servicer's second-factor RPCs (enrolment, removal, the admin's reset, an
organisation's policy): thin like the rest of the servicer, kept apart so that each module stays
one a reader can hold. `IdentityServicer` inherits them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeAlias

from guichet.identity.v1 import identity_pb2
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.identity.domain import passkeys, second_factor
from services.identity.domain.common import uuid_or_raise
from services.identity.mapping import organisation_to_proto, passkey_to_proto
from services.identity.settings import IdentitySettings
from services.kit.auth import current_principal

Context: TypeAlias = Any  # grpc.aio.ServicerContext (grpc ships no type stubs)


class SecondFactorRpcs:
    """Needs the servicer's sessions, settings, clock and mail wake-up."""

    _sessions: async_sessionmaker[AsyncSession]
    _settings: IdentitySettings
    _clock: Callable[[], datetime]

    def _mail_sent(self) -> None:
        raise NotImplementedError

    async def GetSecondFactors(
        self, request: identity_pb2.GetSecondFactorsRequest, context: Context
    ) -> identity_pb2.GetSecondFactorsResponse:
        async with self._sessions.begin() as session:
            found = await second_factor.status(session=session, actor=current_principal())
        return identity_pb2.GetSecondFactorsResponse(
            totp=found.totp,
            passkeys=[passkey_to_proto(p) for p in found.passkeys],
            recovery_codes_left=found.recovery_codes_left,
            required=found.required,
            withheld_roles=sorted(found.withheld),
        )

    async def BeginTotpEnrolment(
        self, request: identity_pb2.BeginTotpEnrolmentRequest, context: Context
    ) -> identity_pb2.BeginTotpEnrolmentResponse:
        async with self._sessions.begin() as session:
            enrolment = await second_factor.begin_totp(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
            )
        return identity_pb2.BeginTotpEnrolmentResponse(
            secret=enrolment.secret, otpauth_uri=enrolment.uri
        )

    async def ConfirmTotpEnrolment(
        self, request: identity_pb2.ConfirmTotpEnrolmentRequest, context: Context
    ) -> identity_pb2.ConfirmTotpEnrolmentResponse:
        async with self._sessions.begin() as session:
            codes = await second_factor.confirm_totp(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                code=request.code,
            )
        return identity_pb2.ConfirmTotpEnrolmentResponse(recovery_codes=codes)

    async def RemoveTotp(
        self, request: identity_pb2.RemoveTotpRequest, context: Context
    ) -> identity_pb2.RemoveTotpResponse:
        async with self._sessions.begin() as session:
            await second_factor.remove_totp(
                session=session, actor=current_principal(), now=self._clock()
            )
        return identity_pb2.RemoveTotpResponse()

    async def RegenerateRecoveryCodes(
        self, request: identity_pb2.RegenerateRecoveryCodesRequest, context: Context
    ) -> identity_pb2.RegenerateRecoveryCodesResponse:
        async with self._sessions.begin() as session:
            codes = await second_factor.regenerate_recovery_codes(
                session=session, actor=current_principal(), now=self._clock()
            )
        return identity_pb2.RegenerateRecoveryCodesResponse(recovery_codes=codes)

    async def BeginPasskeyRegistration(
        self, request: identity_pb2.BeginPasskeyRegistrationRequest, context: Context
    ) -> identity_pb2.BeginPasskeyRegistrationResponse:
        async with self._sessions.begin() as session:
            options = await passkeys.registration_options(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
            )
        return identity_pb2.BeginPasskeyRegistrationResponse(options_json=options)

    async def FinishPasskeyRegistration(
        self, request: identity_pb2.FinishPasskeyRegistrationRequest, context: Context
    ) -> identity_pb2.FinishPasskeyRegistrationResponse:
        async with self._sessions.begin() as session:
            registered = await passkeys.register(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                credential_json=request.credential,
                name=request.name,
            )
        return identity_pb2.FinishPasskeyRegistrationResponse(
            passkey=passkey_to_proto(registered.passkey),
            recovery_codes=registered.recovery_codes,
        )

    async def RemovePasskey(
        self, request: identity_pb2.RemovePasskeyRequest, context: Context
    ) -> identity_pb2.RemovePasskeyResponse:
        passkey_id = uuid_or_raise("passkey_id", request.passkey_id)
        async with self._sessions.begin() as session:
            await passkeys.remove(
                session=session, actor=current_principal(), now=self._clock(), passkey_id=passkey_id
            )
        return identity_pb2.RemovePasskeyResponse()

    async def ResetSecondFactors(
        self, request: identity_pb2.ResetSecondFactorsRequest, context: Context
    ) -> identity_pb2.ResetSecondFactorsResponse:
        user_id = uuid_or_raise("user_id", request.user_id)
        async with self._sessions.begin() as session:
            await second_factor.admin_reset(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                user_id=user_id,
            )
        self._mail_sent()
        return identity_pb2.ResetSecondFactorsResponse()

    async def SetSecondFactorPolicy(
        self, request: identity_pb2.SetSecondFactorPolicyRequest, context: Context
    ) -> identity_pb2.SetSecondFactorPolicyResponse:
        organisation_id = uuid_or_raise("organisation_id", request.organisation_id)
        async with self._sessions.begin() as session:
            organisation = await second_factor.set_policy(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                organisation_id=organisation_id,
                required=request.required,
            )
        return identity_pb2.SetSecondFactorPolicyResponse(
            organisation=organisation_to_proto(organisation)
        )
