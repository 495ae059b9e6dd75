"""Second factors through identity's gRPC API: TOTP with replay refused, recovery codes, passkeys
(a software authenticator), the organisation's requirement for its roles that act for others,
ops_admin's, changing factors only with a session that used one, and the admin's reset.
"""

from __future__ import annotations

import json
from typing import Any

import grpc
import jwt
from guichet.identity.v1 import identity_pb2

from services.devstack.signin import fresh_code
from tests.identity.authenticator import SoftAuthenticator, b64url
from tests.identity.harness import (
    ASSOCIATION,
    OPERATOR,
    SERVICE_PROVIDER,
    Account,
    Identity,
    bearer,
    fails,
)

Metadata = tuple[tuple[str, str], ...]


def claims_of(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


async def enrol_totp(identity: Identity, account: Account, auth: Metadata) -> tuple[str, list[str]]:
    """Sets up an authenticator app for `account`: its secret and its recovery codes."""
    begun: identity_pb2.BeginTotpEnrolmentResponse = await identity.stub.BeginTotpEnrolment(
        identity_pb2.BeginTotpEnrolmentRequest(), metadata=auth
    )
    assert begun.otpauth_uri.startswith("otpauth://totp/")
    assert account.username in begun.otpauth_uri
    confirmed = await identity.stub.ConfirmTotpEnrolment(
        identity_pb2.ConfirmTotpEnrolmentRequest(
            code=await fresh_code(begun.secret, account.username)
        ),
        metadata=auth,
    )
    return begun.secret, list(confirmed.recovery_codes)


async def ticket_for(identity: Identity, account: Account) -> identity_pb2.SecondFactorChallenge:
    response = await identity.sign_in(account.username)
    assert not response.HasField("tokens") and response.second_factor.ticket
    return response.second_factor


async def complete(
    identity: Identity, ticket: str, **answer: str
) -> identity_pb2.CompleteSecondFactorResponse:
    response: identity_pb2.CompleteSecondFactorResponse = await identity.stub.CompleteSecondFactor(
        identity_pb2.CompleteSecondFactorRequest(ticket=ticket, client_ip="192.0.2.1", **answer)
    )
    return response


async def with_code(identity: Identity, account: Account, secret: str) -> identity_pb2.TokenPair:
    challenge = await ticket_for(identity, account)
    code = await fresh_code(secret, account.username)
    return (await complete(identity, challenge.ticket, code=code)).tokens


# --- TOTP and recovery codes ---------------------------------------------------------------------


async def test_totp_then_every_sign_in_asks_a_code_and_refuses_its_replay(
    identity: Identity,
) -> None:
    account = await identity.account(await identity.organisation(ASSOCIATION), "member")
    auth = bearer((await identity.login(account.username)).access_token)
    wrong = await fails(
        identity.stub.ConfirmTotpEnrolment(
            identity_pb2.ConfirmTotpEnrolmentRequest(code="000000"), metadata=auth
        )
    )
    assert wrong.code == grpc.StatusCode.FAILED_PRECONDITION
    assert wrong.reason == "totp_code_invalid"
    secret, codes = await enrol_totp(identity, account, auth)
    assert len(codes) == 10 and len(set(codes)) == 10
    challenge = await ticket_for(identity, account)
    assert list(challenge.methods) == ["totp", "recovery_code"]
    code = await fresh_code(secret, account.username)
    done = await complete(identity, challenge.ticket, code=code)
    assert done.tokens.access_token and done.device_token
    assert {"pwd", "otp", "mfa"} <= set(claims_of(done.tokens.access_token)["amr"])
    # The same code again, with a fresh ticket: refused (RFC 6238 section 5.2).
    again = await ticket_for(identity, account)
    replay = await fails(complete(identity, again.ticket, code=code))
    assert replay.code == grpc.StatusCode.UNAUTHENTICATED
    assert replay.reason == "second_factor_invalid"
    # Nor does an answer work without a ticket from a right password.
    forged = await fails(complete(identity, "t1.x.y.z.w.v", code=code))
    assert forged.reason == "ticket_invalid"


async def test_a_recovery_code_signs_in_once(identity: Identity) -> None:
    account = await identity.account(await identity.organisation(ASSOCIATION), "member")
    auth = bearer((await identity.login(account.username)).access_token)
    _, codes = await enrol_totp(identity, account, auth)
    challenge = await ticket_for(identity, account)
    done = await complete(identity, challenge.ticket, recovery_code=codes[0].lower())
    assert done.tokens.access_token
    status = await identity.stub.GetSecondFactors(
        identity_pb2.GetSecondFactorsRequest(), metadata=bearer(done.tokens.access_token)
    )
    assert status.recovery_codes_left == 9
    second = await ticket_for(identity, account)
    used = await fails(complete(identity, second.ticket, recovery_code=codes[0]))
    assert used.reason == "second_factor_invalid"


async def test_wrong_second_factors_lock_that_step_and_mail_the_owner(identity: Identity) -> None:
    account = await identity.account(await identity.organisation(ASSOCIATION), "member")
    assert account.email is not None
    auth = bearer((await identity.login(account.username)).access_token)
    secret, _ = await enrol_totp(identity, account, auth)
    challenge = await ticket_for(identity, account)
    for _ in range(identity.settings.lockout_threshold):
        wrong = await fails(complete(identity, challenge.ticket, code="000000"))
        assert wrong.reason == "second_factor_invalid"
    locked = await fails(
        complete(identity, challenge.ticket, code=await fresh_code(secret, account.username))
    )
    assert locked.code == grpc.StatusCode.RESOURCE_EXHAUSTED and locked.retry_after_seconds
    [mail] = await identity.smtp.wait_for(account.email)
    assert "mauvais second facteur" in mail.body and "changez-le" in mail.body


async def test_exactly_one_answer_is_taken(identity: Identity) -> None:
    account = await identity.account(await identity.organisation(ASSOCIATION), "member")
    auth = bearer((await identity.login(account.username)).access_token)
    await enrol_totp(identity, account, auth)
    challenge = await ticket_for(identity, account)
    both = await fails(complete(identity, challenge.ticket, code="123456", recovery_code="X"))
    assert both.code == grpc.StatusCode.INVALID_ARGUMENT
    none = await fails(complete(identity, challenge.ticket))
    assert none.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_changing_factors_needs_a_session_that_used_one(identity: Identity) -> None:
    account = await identity.account(await identity.organisation(ASSOCIATION), "member")
    older = bearer((await identity.login(account.username)).access_token)  # password only
    enrolling = bearer((await identity.login(account.username)).access_token)
    secret, _ = await enrol_totp(identity, account, enrolling)
    for call in (
        identity.stub.RemoveTotp(identity_pb2.RemoveTotpRequest(), metadata=older),
        identity.stub.RegenerateRecoveryCodes(
            identity_pb2.RegenerateRecoveryCodesRequest(), metadata=older
        ),
        identity.stub.BeginPasskeyRegistration(
            identity_pb2.BeginPasskeyRegistrationRequest(), metadata=older
        ),
    ):
        refused = await fails(call)
        assert refused.code == grpc.StatusCode.PERMISSION_DENIED
        assert refused.reason == "second_factor_needed"
    # The session that enrolled proved the factor: it may, before its token is even renewed.
    renewed = await identity.stub.RegenerateRecoveryCodes(
        identity_pb2.RegenerateRecoveryCodesRequest(), metadata=enrolling
    )
    assert len(renewed.recovery_codes) == 10
    # A session that used the code may; a second app needs the first one removed.
    strong = bearer((await with_code(identity, account, secret)).access_token)
    present = await fails(
        identity.stub.BeginTotpEnrolment(identity_pb2.BeginTotpEnrolmentRequest(), metadata=strong)
    )
    assert present.reason == "totp_present"
    await identity.stub.RemoveTotp(identity_pb2.RemoveTotpRequest(), metadata=strong)
    status = await identity.stub.GetSecondFactors(
        identity_pb2.GetSecondFactorsRequest(), metadata=strong
    )
    assert not status.totp and status.recovery_codes_left == 0  # codes go with the last factor
    assert (await identity.sign_in(account.username)).HasField("tokens")


# --- who must have one ---------------------------------------------------------------------------


async def _provider_with_manager(identity: Identity) -> tuple[str, Account]:
    organisation = await identity.organisation(SERVICE_PROVIDER)
    return organisation, await identity.account(organisation, "business_account_manager")


async def test_an_organisation_requires_a_second_factor_for_its_managers(
    identity: Identity,
) -> None:
    organisation, manager = await _provider_with_manager(identity)
    editor = await identity.account(organisation, "editor")
    # Only its admins (or ops_admin) may set the rule; a mere editor may not.
    refused = await fails(
        identity.stub.SetSecondFactorPolicy(
            identity_pb2.SetSecondFactorPolicyRequest(organisation_id=organisation, required=True),
            metadata=await identity.token(editor),
        )
    )
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    answer = await identity.stub.SetSecondFactorPolicy(
        identity_pb2.SetSecondFactorPolicyRequest(organisation_id=organisation, required=True),
        metadata=identity.admin,
    )
    assert answer.organisation.second_factor_required
    # A password alone now carries every role but the manager's, and says which it lacks.
    pair = await identity.login(manager.username)
    decoded = claims_of(pair.access_token)
    assert decoded["orgs"] == {} and decoded["withheld"] == ["business_account_manager"]
    assert claims_of((await identity.login(editor.username)).access_token)["orgs"] == {
        organisation: ["editor"]
    }
    # The session says what it lacks.
    status = await identity.stub.GetSecondFactors(
        identity_pb2.GetSecondFactorsRequest(), metadata=bearer(pair.access_token)
    )
    assert status.required and list(status.withheld_roles) == ["business_account_manager"]
    # Enrolling proves the factor: this session's next refresh carries the role again...
    secret, _ = await enrol_totp(identity, manager, bearer(pair.access_token))
    refreshed = await identity.stub.Refresh(
        identity_pb2.RefreshRequest(refresh_token=pair.refresh_token)
    )
    assert claims_of(refreshed.tokens.access_token)["orgs"] == {
        organisation: ["business_account_manager"]
    }
    # ... and every sign-in from now on asks for the code.
    assert (await identity.sign_in(manager.username)).HasField("second_factor")
    full = await with_code(identity, manager, secret)
    assert claims_of(full.access_token)["orgs"] == {organisation: ["business_account_manager"]}


async def test_ops_admin_always_needs_a_second_factor(identity: Identity) -> None:
    operators = await identity.organisation(OPERATOR)
    staff = await identity.account(operators, "ops_admin", "support_agent")
    decoded = claims_of((await identity.login(staff.username)).access_token)
    # The platform's rule, whatever the organisation says: support_agent stays (not required).
    assert decoded["orgs"] == {operators: ["support_agent"]}
    assert decoded["withheld"] == ["ops_admin"]


# --- passkeys ------------------------------------------------------------------------------------


async def register_passkey(
    identity: Identity, auth: Metadata, authenticator: SoftAuthenticator, name: str = "Phone"
) -> identity_pb2.FinishPasskeyRegistrationResponse:
    options = await identity.stub.BeginPasskeyRegistration(
        identity_pb2.BeginPasskeyRegistrationRequest(), metadata=auth
    )
    answer: identity_pb2.FinishPasskeyRegistrationResponse = (
        await identity.stub.FinishPasskeyRegistration(
            identity_pb2.FinishPasskeyRegistrationRequest(
                credential=json.dumps(authenticator.create(json.loads(options.options_json))),
                name=name,
            ),
            metadata=auth,
        )
    )
    return answer


async def test_a_passkey_is_a_second_factor_and_a_sign_in_of_its_own(identity: Identity) -> None:
    account = await identity.account(await identity.organisation(ASSOCIATION), "member")
    auth = bearer((await identity.login(account.username)).access_token)
    passkey = SoftAuthenticator()
    registered = await register_passkey(identity, auth, passkey)
    assert registered.passkey.name == "Phone" and len(registered.recovery_codes) == 10
    # Second factor after the password.
    challenge = await ticket_for(identity, account)
    assert list(challenge.methods) == ["passkey", "recovery_code"]
    options = await identity.stub.BeginPasskeySignIn(
        identity_pb2.BeginPasskeySignInRequest(ticket=challenge.ticket)
    )
    allowed = json.loads(options.options_json)["allowCredentials"]
    assert [c["id"] for c in allowed] == [b64url(passkey.credential_id)]
    answer = passkey.get(json.loads(options.options_json))
    done = await complete(identity, challenge.ticket, passkey_credential=json.dumps(answer))
    assert {"hwk", "mfa"} <= set(claims_of(done.tokens.access_token)["amr"])
    # The same answer again finds its challenge spent.
    replayed = await fails(
        complete(
            identity,
            (await ticket_for(identity, account)).ticket,
            passkey_credential=json.dumps(answer),
        )
    )
    assert replayed.reason == "second_factor_invalid"
    # Without a password: the passkey verified its user, two factors in one.
    first = await identity.stub.BeginPasskeySignIn(identity_pb2.BeginPasskeySignInRequest())
    assert json.loads(first.options_json)["userVerification"] == "required"
    signed_in: identity_pb2.PasskeySignInResponse = await identity.stub.PasskeySignIn(
        identity_pb2.PasskeySignInRequest(
            credential=json.dumps(passkey.get(json.loads(first.options_json))),
            client_ip="192.0.2.1",
        )
    )
    assert claims_of(signed_in.tokens.access_token)["sub"] == account.id
    assert set(claims_of(signed_in.tokens.access_token)["amr"]) == {"hwk", "user", "mfa"}
    assert signed_in.device_token


async def test_a_passkey_is_refused_from_another_origin_or_without_user_verification(
    identity: Identity,
) -> None:
    account = await identity.account(await identity.organisation(ASSOCIATION), "member")
    auth = bearer((await identity.login(account.username)).access_token)
    passkey = SoftAuthenticator()
    await register_passkey(identity, auth, passkey)
    for fake in (
        SoftAuthenticator(
            origin="https://evil.example",
            key=passkey.key,
            credential_id=passkey.credential_id,
            user_handle=passkey.user_handle,
            sign_count=100,
        ),
        SoftAuthenticator(
            user_verification=False,
            key=passkey.key,
            credential_id=passkey.credential_id,
            user_handle=passkey.user_handle,
            sign_count=200,
        ),
    ):
        options = await identity.stub.BeginPasskeySignIn(identity_pb2.BeginPasskeySignInRequest())
        refused = await fails(
            identity.stub.PasskeySignIn(
                identity_pb2.PasskeySignInRequest(
                    credential=json.dumps(fake.get(json.loads(options.options_json)))
                )
            )
        )
        assert refused.code == grpc.StatusCode.UNAUTHENTICATED
        assert refused.reason == "passkey_invalid"


# --- losing every factor -------------------------------------------------------------------------


async def test_an_admin_resets_a_members_factors_with_an_audit_and_a_mail(
    identity: Identity,
) -> None:
    organisation, manager = await _provider_with_manager(identity)
    member = await identity.account(organisation, "editor")
    assert member.email is not None
    member_auth = bearer((await identity.login(member.username)).access_token)
    await enrol_totp(identity, member, member_auth)
    # The manager must have used a second factor to reset someone else's.
    weak = bearer((await identity.login(manager.username)).access_token)
    request = identity_pb2.ResetSecondFactorsRequest(user_id=member.id)
    refused = await fails(identity.stub.ResetSecondFactors(request, metadata=weak))
    assert refused.reason == "second_factor_needed"
    secret, _ = await enrol_totp(identity, manager, weak)
    strong = bearer((await with_code(identity, manager, secret)).access_token)
    own = await fails(
        identity.stub.ResetSecondFactors(
            identity_pb2.ResetSecondFactorsRequest(user_id=manager.id), metadata=strong
        )
    )
    assert own.reason == "own_second_factor"
    # An admin of another organisation does not even see the account.
    _, stranger = await _provider_with_manager(identity)
    stranger_secret, _ = await enrol_totp(
        identity, stranger, bearer((await identity.login(stranger.username)).access_token)
    )
    stranger_auth = bearer((await with_code(identity, stranger, stranger_secret)).access_token)
    hidden = await fails(identity.stub.ResetSecondFactors(request, metadata=stranger_auth))
    assert hidden.code == grpc.StatusCode.NOT_FOUND
    await identity.stub.ResetSecondFactors(request, metadata=strong)
    assert (await identity.sign_in(member.username)).HasField("tokens")
    events = await identity.stub.ListAuditEvents(
        identity_pb2.ListAuditEventsRequest(user_id=member.id), metadata=identity.admin
    )
    reset = next(e for e in events.events if e.event == "second_factor.reset")
    assert reset.actor_id == manager.id and reset.detail["totp"] == "True"
    mails = await identity.smtp.wait_for(member.email)
    assert "réinitialisés" in mails[-1].subject


async def test_garbage_webauthn_answers_are_refused_precisely(identity: Identity) -> None:
    account = await identity.account(await identity.organisation(ASSOCIATION), "member")
    auth = bearer((await identity.login(account.username)).access_token)
    options = await identity.stub.BeginPasskeyRegistration(
        identity_pb2.BeginPasskeyRegistrationRequest(), metadata=auth
    )
    challenge = json.loads(options.options_json)["challenge"]
    client_data = b64url(json.dumps({"type": "webauthn.create", "challenge": challenge}).encode())
    for garbage in (
        "not json",
        json.dumps([1, 2]),
        json.dumps({"response": {"clientDataJSON": 5}}),
        json.dumps(
            {"id": 3, "response": {"clientDataJSON": client_data, "attestationObject": "x"}}
        ),
    ):
        refused = await fails(
            identity.stub.FinishPasskeyRegistration(
                identity_pb2.FinishPasskeyRegistrationRequest(credential=garbage), metadata=auth
            )
        )
        assert refused.code in (
            grpc.StatusCode.INVALID_ARGUMENT,
            grpc.StatusCode.FAILED_PRECONDITION,
        ), (garbage, refused)
        signed = await fails(
            identity.stub.PasskeySignIn(identity_pb2.PasskeySignInRequest(credential=garbage))
        )
        assert signed.code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAUTHENTICATED)
