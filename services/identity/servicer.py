"""The identity gRPC servicer (thin: request → transaction → domain → proto) and its SPEC.

Each method opens one transaction, calls one domain function and maps the result (`mapping`).
Mails are recorded in the outbox inside that transaction; after the commit the relay is woken so
that they leave at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeAlias

import grpc
from guichet.identity.v1 import identity_pb2, identity_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.identity.domain import (
    accounts,
    admin,
    credentials,
    organisations,
    passkeys,
    registration,
    second_factor,
    service_tokens,
    signing_keys,
    startup,
    throttles,
    tokens,
    validation_queue,
)
from services.identity.domain.devices import Keyring
from services.identity.driver import Driver
from services.identity.fees import MembershipFees
from services.identity.mapping import (
    audit_to_proto,
    kind_name,
    login_response,
    organisation_to_proto,
    page_response,
    signed_in,
    token_pair,
    user_to_proto,
)
from services.identity.models import outbox as outbox_table
from services.identity.passwords import Passwords
from services.identity.second_factor_rpcs import SecondFactorRpcs
from services.identity.settings import IdentitySettings
from services.kit.auth import TokenVerifier, current_principal
from services.kit.errors import PermissionDenied, ResourceExhausted, Validator
from services.kit.metrics import login_throttled
from services.kit.outbox import OutboxRelay
from services.kit.runtime import ServiceContext, ServiceSpec, Wiring

log = logging.getLogger(__name__)

Context: TypeAlias = Any  # grpc.aio.ServicerContext (grpc ships no type stubs)
Clock = Callable[[], datetime]

SERVICE_NAME = identity_pb2.DESCRIPTOR.services_by_name["IdentityService"].full_name

# Called by the gateway for anonymous visitors (with its service token) or with no token at all.
PUBLIC_METHODS = frozenset(
    f"/{SERVICE_NAME}/{method}"
    for method in (
        "GetJwks",
        "IssueServiceToken",
        "Login",
        "CompleteSecondFactor",
        "BeginPasskeySignIn",
        "PasskeySignIn",
        "TakeAttempt",
        "Refresh",
        "Logout",
        "Register",
        "GetRegistrationOrganisation",
        "VerifyEmail",
        "ResendVerification",
        "RequestPasswordReset",
        "ResetPassword",
    )
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _counted(refusal: tokens.Refusal) -> tokens.Refusal:
    """Counts a refusal by a brake for the alert LoginLockoutsSpiking (docs/runbook.md)."""
    if refusal.throttled:
        login_throttled().labels(refusal.throttled).inc()
    return refusal


class IdentityServicer(SecondFactorRpcs, identity_pb2_grpc.IdentityServiceServicer):
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        settings: IdentitySettings,
        passwords: Passwords,
        relay: OutboxRelay | None,
        fees: validation_queue.FeeLedger,
        keyring: Keyring,
        driver: Driver,
        reads: async_sessionmaker[AsyncSession] | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self._sessions = sessions
        # Sessions without a transaction (autocommit), for requests of one statement (the
        # shared brake's upsert): no BEGIN/COMMIT around it.
        self._reads = reads or sessions
        # A password sign-in's two statements, on asyncpg itself (its CPU: issue 29).
        self._driver = driver
        self._settings = settings
        self._passwords = passwords
        self._relay = relay
        self._fees = fees
        self._keyring = keyring
        self._clock = clock

    def _mail_sent(self) -> None:
        """After a commit that may have recorded mail: let the relay start it now."""
        if self._relay is not None:
            self._relay.wake()

    async def load_jwks(self) -> str:
        """Identity verifies its own tokens from its own database, not over gRPC."""
        async with self._sessions.begin() as session:
            return await signing_keys.jwks(
                session=session, settings=self._settings, now=self._clock()
            )

    # --- tokens ---------------------------------------------------------------------------------

    async def Login(
        self, request: identity_pb2.LoginRequest, context: Context
    ) -> identity_pb2.LoginResponse:
        now = self._clock()
        # The read before the hash and a success's write after it run on asyncpg itself
        # (services/identity/driver.py): each is one statement, atomic by itself.
        async with self._driver.rows() as rows:
            state = await tokens.start_login(
                rows=rows,
                settings=self._settings,
                keyring=self._keyring,
                now=now,
                username=request.username,
                password=request.password,
                client_ip=request.client_ip,
                device_token=request.device_token,
            )
        if isinstance(state, tokens.Refusal):
            raise _counted(state).error
        checked = await tokens.check_password(
            passwords=self._passwords, state=state, password=request.password
        )
        result: tokens.IssuedTokens | tokens.SecondFactorRequired | tokens.Refusal
        if tokens.signs_in_directly(settings=self._settings, now=now, state=state, checked=checked):
            async with self._driver.rows() as rows:
                result = await tokens.sign_in_directly(
                    rows=rows,
                    settings=self._settings,
                    keyring=self._keyring,
                    now=now,
                    state=state,
                    checked=checked,
                )
        else:
            async with self._sessions.begin() as session:
                result = await tokens.finish_login(
                    session=session,
                    settings=self._settings,
                    keyring=self._keyring,
                    now=now,
                    state=state,
                    checked=checked,
                )
        if isinstance(result, tokens.Refusal):
            self._mail_sent()  # a lockout may have mailed the account's owner
        return login_response(result)

    async def CompleteSecondFactor(
        self, request: identity_pb2.CompleteSecondFactorRequest, context: Context
    ) -> identity_pb2.CompleteSecondFactorResponse:
        async with self._sessions.begin() as session:
            result = await tokens.complete_second_factor(
                session=session,
                settings=self._settings,
                keyring=self._keyring,
                now=self._clock(),
                ticket=request.ticket,
                code=request.code,
                recovery_code=request.recovery_code,
                passkey_credential=request.passkey_credential,
                client_ip=request.client_ip,
                device_token=request.device_token,
            )
        if isinstance(result, tokens.Refusal):
            _counted(result)
            self._mail_sent()
        pair, device = signed_in(result)
        return identity_pb2.CompleteSecondFactorResponse(tokens=pair, device_token=device)

    async def BeginPasskeySignIn(
        self, request: identity_pb2.BeginPasskeySignInRequest, context: Context
    ) -> identity_pb2.BeginPasskeySignInResponse:
        now = self._clock()
        user_id = None
        if request.ticket:
            user_id = second_factor.read_ticket(
                self._keyring, request.ticket, settings=self._settings, now=now
            ).user_id
        async with self._sessions.begin() as session:
            options = await passkeys.assertion_options(
                session=session, settings=self._settings, now=now, user_id=user_id
            )
        return identity_pb2.BeginPasskeySignInResponse(options_json=options)

    async def PasskeySignIn(
        self, request: identity_pb2.PasskeySignInRequest, context: Context
    ) -> identity_pb2.PasskeySignInResponse:
        async with self._sessions.begin() as session:
            result = await tokens.passkey_login(
                session=session,
                settings=self._settings,
                keyring=self._keyring,
                now=self._clock(),
                credential_json=request.credential,
                client_ip=request.client_ip,
                device_token=request.device_token,
            )
        pair, device = signed_in(result)
        return identity_pb2.PasskeySignInResponse(tokens=pair, device_token=device)

    async def TakeAttempt(
        self, request: identity_pb2.TakeAttemptRequest, context: Context
    ) -> identity_pb2.TakeAttemptResponse:
        principal = current_principal()
        if not principal.is_service:
            raise PermissionDenied("only services ask for the shared brake")
        v = Validator()
        v.require("scope", request.scope)
        v.check(len(request.scope) <= 120, "scope", "must be at most 120 characters")
        v.check(len(request.client_ip) <= 64, "client_ip", "must be at most 64 characters")
        v.raise_if_any()
        async with self._reads() as session:
            wait = await throttles.take_attempt(
                session,
                settings=self._settings,
                now=self._clock(),
                scope=request.scope,
                client_ip=request.client_ip,
            )
        if wait:
            raise ResourceExhausted(
                "too many requests from this address: try again later", retry_after_seconds=wait
            )
        return identity_pb2.TakeAttemptResponse()

    async def Refresh(
        self, request: identity_pb2.RefreshRequest, context: Context
    ) -> identity_pb2.RefreshResponse:
        async with self._sessions.begin() as session:
            result = await tokens.refresh(
                session=session,
                settings=self._settings,
                now=self._clock(),
                refresh_token=request.refresh_token,
            )
        return identity_pb2.RefreshResponse(tokens=token_pair(result))

    async def Logout(
        self, request: identity_pb2.LogoutRequest, context: Context
    ) -> identity_pb2.LogoutResponse:
        async with self._sessions.begin() as session:
            await tokens.logout(
                session=session, now=self._clock(), refresh_token=request.refresh_token
            )
        return identity_pb2.LogoutResponse()

    async def IssueServiceToken(
        self, request: identity_pb2.IssueServiceTokenRequest, context: Context
    ) -> identity_pb2.IssueServiceTokenResponse:
        async with self._sessions.begin() as session:
            token, expires_in = await service_tokens.issue_service_token(
                session=session,
                settings=self._settings,
                now=self._clock(),
                client_id=request.client_id,
                client_secret=request.client_secret,
            )
        return identity_pb2.IssueServiceTokenResponse(access_token=token, expires_in=expires_in)

    async def GetJwks(
        self, request: identity_pb2.GetJwksRequest, context: Context
    ) -> identity_pb2.GetJwksResponse:
        return identity_pb2.GetJwksResponse(jwks_json=await self.load_jwks())

    async def RotateSigningKey(
        self, request: identity_pb2.RotateSigningKeyRequest, context: Context
    ) -> identity_pb2.RotateSigningKeyResponse:
        async with self._sessions.begin() as session:
            kid = await signing_keys.rotate_signing_key(
                session=session, actor=current_principal(), now=self._clock()
            )
        return identity_pb2.RotateSigningKeyResponse(kid=kid)

    # --- registration and self service ----------------------------------------------------------

    async def Register(
        self, request: identity_pb2.RegisterRequest, context: Context
    ) -> identity_pb2.RegisterResponse:
        async with self._sessions.begin() as session:
            user = await registration.register(
                session=session,
                settings=self._settings,
                passwords=self._passwords,
                now=self._clock(),
                organisation_id=request.organisation_id,
                username=request.username,
                email=request.email,
                password=request.password,
                first_name=request.first_name,
                last_name=request.last_name,
            )
        self._mail_sent()
        return identity_pb2.RegisterResponse(user=user_to_proto(user))

    async def GetRegistrationOrganisation(
        self, request: identity_pb2.GetRegistrationOrganisationRequest, context: Context
    ) -> identity_pb2.GetRegistrationOrganisationResponse:
        async with self._sessions.begin() as session:
            organisation = await registration.registration_organisation(
                session=session, organisation_id=request.organisation_id
            )
        return identity_pb2.GetRegistrationOrganisationResponse(
            organisation=organisation_to_proto(organisation)
        )

    async def VerifyEmail(
        self, request: identity_pb2.VerifyEmailRequest, context: Context
    ) -> identity_pb2.VerifyEmailResponse:
        async with self._sessions.begin() as session:
            user = await registration.verify_email(
                session=session, now=self._clock(), token=request.token
            )
        return identity_pb2.VerifyEmailResponse(user=user_to_proto(user))

    async def ResendVerification(
        self, request: identity_pb2.ResendVerificationRequest, context: Context
    ) -> identity_pb2.ResendVerificationResponse:
        async with self._sessions.begin() as session:
            await registration.resend_verification(
                session=session,
                settings=self._settings,
                now=self._clock(),
                username=request.username,
            )
        self._mail_sent()
        return identity_pb2.ResendVerificationResponse()

    async def GetMe(
        self, request: identity_pb2.GetMeRequest, context: Context
    ) -> identity_pb2.GetMeResponse:
        async with self._sessions.begin() as session:
            user = await accounts.get_me(session=session, actor=current_principal())
        return identity_pb2.GetMeResponse(user=user_to_proto(user))

    async def CompleteProfile(
        self, request: identity_pb2.CompleteProfileRequest, context: Context
    ) -> identity_pb2.CompleteProfileResponse:
        profile = request.profile
        async with self._sessions.begin() as session:
            user = await accounts.complete_profile(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                profile=accounts.ProfileInput(
                    first_name=profile.first_name,
                    last_name=profile.last_name,
                    phone=profile.phone,
                    address_line=profile.address_line,
                    postal_code=profile.postal_code,
                    city=profile.city,
                    birth_date=profile.birth_date,
                ),
            )
        return identity_pb2.CompleteProfileResponse(user=user_to_proto(user))

    async def RequestPasswordReset(
        self, request: identity_pb2.RequestPasswordResetRequest, context: Context
    ) -> identity_pb2.RequestPasswordResetResponse:
        async with self._sessions.begin() as session:
            await credentials.request_password_reset(
                session=session, settings=self._settings, now=self._clock(), login=request.login
            )
        self._mail_sent()
        return identity_pb2.RequestPasswordResetResponse()

    async def ResetPassword(
        self, request: identity_pb2.ResetPasswordRequest, context: Context
    ) -> identity_pb2.ResetPasswordResponse:
        async with self._sessions.begin() as session:
            await credentials.reset_password(
                session=session,
                settings=self._settings,
                passwords=self._passwords,
                now=self._clock(),
                token=request.token,
                new_password=request.new_password,
            )
        return identity_pb2.ResetPasswordResponse()

    # --- organisations and roles ------------------------------------------------------------------

    async def CreateOrganisation(
        self, request: identity_pb2.CreateOrganisationRequest, context: Context
    ) -> identity_pb2.CreateOrganisationResponse:
        async with self._sessions.begin() as session:
            organisation = await organisations.create_organisation(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                kind=kind_name(request.kind),
                name=request.name,
                code=request.code,
            )
        return identity_pb2.CreateOrganisationResponse(
            organisation=organisation_to_proto(organisation)
        )

    async def GetOrganisation(
        self, request: identity_pb2.GetOrganisationRequest, context: Context
    ) -> identity_pb2.GetOrganisationResponse:
        async with self._sessions.begin() as session:
            organisation = await organisations.get_organisation(
                session=session, actor=current_principal(), organisation_id=request.organisation_id
            )
        return identity_pb2.GetOrganisationResponse(
            organisation=organisation_to_proto(organisation)
        )

    async def ListOrganisations(
        self, request: identity_pb2.ListOrganisationsRequest, context: Context
    ) -> identity_pb2.ListOrganisationsResponse:
        async with self._sessions.begin() as session:
            page = await organisations.list_organisations(
                session=session,
                actor=current_principal(),
                kind=kind_name(request.kind),
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return identity_pb2.ListOrganisationsResponse(
            organisations=[organisation_to_proto(o) for o in page.items],
            page=page_response(page.next_page_token),
        )

    async def ListOrganisationMembers(
        self, request: identity_pb2.ListOrganisationMembersRequest, context: Context
    ) -> identity_pb2.ListOrganisationMembersResponse:
        async with self._sessions.begin() as session:
            page = await organisations.list_organisation_members(
                session=session,
                actor=current_principal(),
                organisation_id=request.organisation_id,
                roles=list(request.roles),
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return identity_pb2.ListOrganisationMembersResponse(
            users=[user_to_proto(u) for u in page.items], page=page_response(page.next_page_token)
        )

    async def GrantRole(
        self, request: identity_pb2.GrantRoleRequest, context: Context
    ) -> identity_pb2.GrantRoleResponse:
        async with self._sessions.begin() as session:
            user = await organisations.grant_role(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                user_id=request.user_id,
                organisation_id=request.organisation_id,
                role=request.role,
            )
        return identity_pb2.GrantRoleResponse(user=user_to_proto(user))

    async def RevokeRole(
        self, request: identity_pb2.RevokeRoleRequest, context: Context
    ) -> identity_pb2.RevokeRoleResponse:
        async with self._sessions.begin() as session:
            user = await organisations.revoke_role(
                session=session,
                actor=current_principal(),
                now=self._clock(),
                user_id=request.user_id,
                organisation_id=request.organisation_id,
                role=request.role,
            )
        return identity_pb2.RevokeRoleResponse(user=user_to_proto(user))

    # --- the admin's account pages ----------------------------------------------------------------

    async def CreateUser(
        self, request: identity_pb2.CreateUserRequest, context: Context
    ) -> identity_pb2.CreateUserResponse:
        async with self._sessions.begin() as session:
            user = await admin.create_user(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                organisation_id=request.organisation_id,
                username=request.username,
                email=request.email,
                first_name=request.first_name,
                last_name=request.last_name,
                roles=list(request.roles),
            )
        self._mail_sent()
        return identity_pb2.CreateUserResponse(user=user_to_proto(user))

    async def GetUser(
        self, request: identity_pb2.GetUserRequest, context: Context
    ) -> identity_pb2.GetUserResponse:
        async with self._sessions.begin() as session:
            user = await admin.get_user(
                session=session, actor=current_principal(), user_id=request.user_id
            )
        return identity_pb2.GetUserResponse(user=user_to_proto(user))

    async def SearchUsers(
        self, request: identity_pb2.SearchUsersRequest, context: Context
    ) -> identity_pb2.SearchUsersResponse:
        async with self._sessions.begin() as session:
            page = await admin.search_users(
                session=session,
                actor=current_principal(),
                organisation_id=request.organisation_id,
                last_name=request.last_name,
                first_name=request.first_name,
                login=request.login,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return identity_pb2.SearchUsersResponse(
            users=[user_to_proto(u) for u in page.items], page=page_response(page.next_page_token)
        )

    async def ListAccountsToValidate(
        self, request: identity_pb2.ListAccountsToValidateRequest, context: Context
    ) -> identity_pb2.ListAccountsToValidateResponse:
        async with self._sessions.begin() as session:
            page = await validation_queue.list_accounts_to_validate(
                session=session,
                actor=current_principal(),
                organisation_id=request.organisation_id,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
                incomplete=request.incomplete,
            )
        return identity_pb2.ListAccountsToValidateResponse(
            users=[user_to_proto(u) for u in page.items], page=page_response(page.next_page_token)
        )

    async def ValidateAccount(
        self, request: identity_pb2.ValidateAccountRequest, context: Context
    ) -> identity_pb2.ValidateAccountResponse:
        await self._fees.prepare()
        async with self._sessions.begin() as session:
            user = await validation_queue.validate_account(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                user_id=request.user_id,
                fees=self._fees,
            )
        self._mail_sent()
        return identity_pb2.ValidateAccountResponse(user=user_to_proto(user))

    async def SetUserEmail(
        self, request: identity_pb2.SetUserEmailRequest, context: Context
    ) -> identity_pb2.SetUserEmailResponse:
        async with self._sessions.begin() as session:
            user = await admin.set_user_email(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                user_id=request.user_id,
                email=request.email,
            )
        self._mail_sent()
        return identity_pb2.SetUserEmailResponse(user=user_to_proto(user))

    async def SendPasswordReset(
        self, request: identity_pb2.SendPasswordResetRequest, context: Context
    ) -> identity_pb2.SendPasswordResetResponse:
        async with self._sessions.begin() as session:
            await credentials.send_password_reset(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                user_id=request.user_id,
            )
        self._mail_sent()
        return identity_pb2.SendPasswordResetResponse()

    async def RecoverUsername(
        self, request: identity_pb2.RecoverUsernameRequest, context: Context
    ) -> identity_pb2.RecoverUsernameResponse:
        async with self._sessions.begin() as session:
            await credentials.recover_username(
                session=session,
                settings=self._settings,
                actor=current_principal(),
                now=self._clock(),
                email=request.email,
                verification_reference=request.verification_reference,
            )
        self._mail_sent()
        return identity_pb2.RecoverUsernameResponse()

    async def ListAuditEvents(
        self, request: identity_pb2.ListAuditEventsRequest, context: Context
    ) -> identity_pb2.ListAuditEventsResponse:
        async with self._sessions.begin() as session:
            page = await admin.list_audit_events(
                session=session,
                actor=current_principal(),
                user_id=request.user_id,
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        return identity_pb2.ListAuditEventsResponse(
            events=[audit_to_proto(e) for e in page.items], page=page_response(page.next_page_token)
        )

    async def purge_forever(self) -> None:
        """Deletes expired throttle rows and challenges every THROTTLE_PURGE_SECONDS (every
        replica does; deleting what another already deleted costs nothing)."""
        while True:
            await asyncio.sleep(self._settings.throttle_purge_seconds)
            try:
                async with self._sessions.begin() as session:
                    await throttles.purge(session, now=self._clock())
            except Exception:  # the database is away: retried at the next period
                log.warning("purging expired throttles failed", exc_info=True)


async def build(context: ServiceContext, *, clock: Clock | None = None) -> Wiring:
    """Bootstraps the database (clients, first key, first admin) and wires the servicer."""
    clock = clock or context.clock
    settings = context.settings
    if not isinstance(settings, IdentitySettings):
        raise TypeError("identity needs IdentitySettings")
    login_throttled()  # declared at start: the alert's rate is 0, not absent, before a lockout
    passwords = Passwords.from_settings(settings)
    context.exit_stack.callback(passwords.close)
    await passwords.warm_up()
    async with context.sessions.begin() as session:
        keyring = await startup.bootstrap(
            session=session, settings=settings, passwords=passwords, now=clock()
        )

    # Membership answers the association fee check; its channel connects on the first call, so
    # identity starts whether or not membership is up (membership itself needs identity's JWKS).
    async def own_token() -> tuple[str, int]:
        async with context.sessions.begin() as session:
            return await service_tokens.own_service_token(
                session=session, settings=settings, now=clock()
            )

    fees = MembershipFees(
        settings.membership_addr,
        own_token=own_token,
        default_timeout=settings.grpc_default_timeout,
    )
    context.exit_stack.push_async_callback(fees.close)
    servicer = IdentityServicer(
        sessions=context.sessions,
        settings=settings,
        passwords=passwords,
        relay=context.relay,
        fees=fees,
        keyring=keyring,
        driver=Driver(context.engine),
        reads=async_sessionmaker(
            context.engine.execution_options(isolation_level="AUTOCOMMIT"),
            expire_on_commit=False,
        ),
        clock=clock,
    )
    purge = asyncio.create_task(servicer.purge_forever(), name="identity-purge")

    async def stop_purge() -> None:
        purge.cancel()
        await asyncio.gather(purge, return_exceptions=True)

    context.exit_stack.push_async_callback(stop_purge)
    # Its own keys come from its own table: a re-read on an unknown kid costs one small query,
    # so no minimum interval (a key rotated by this process verifies at once).
    verifier = TokenVerifier(servicer.load_jwks, min_refresh_interval=0.0)

    def register(server: grpc.aio.Server) -> None:
        identity_pb2_grpc.add_IdentityServiceServicer_to_server(servicer, server)

    return Wiring(
        register=register,
        service_names=[SERVICE_NAME],
        verifier=verifier,
        public_methods=PUBLIC_METHODS,
    )


SPEC = ServiceSpec(
    name="identity",
    settings_class=IdentitySettings,
    migrations_dir=Path(__file__).parent / "migrations",
    build=build,
    outbox=outbox_table,
)
