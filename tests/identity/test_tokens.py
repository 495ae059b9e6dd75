"""Login, lockout, refresh rotation, logout, service tokens, JWKS and signing-key rotation."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import jwt
from argon2 import PasswordHasher
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from guichet.identity.v1 import identity_pb2
from jwt import PyJWK
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from services.identity.models import LoginThrottle, RefreshToken, SigningKey, User, UserStatus
from services.kit.auth import ALGORITHM, AUDIENCE, ISSUER
from tests.identity.harness import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    ASSOCIATION,
    PASSWORD,
    SERVICE_CLIENT_ID,
    SERVICE_CLIENT_SECRET,
    Identity,
    bearer,
    fails,
    unique,
)


async def jwks(identity: Identity) -> dict[str, PyJWK]:
    document = json.loads((await identity.stub.GetJwks(identity_pb2.GetJwksRequest())).jwks_json)
    return {key["kid"]: PyJWK.from_dict(key) for key in document["keys"]}


async def claims(identity: Identity, token: str) -> dict[str, Any]:
    """Verifies a token the way every other service does: against the published JWKS."""
    kid = jwt.get_unverified_header(token)["kid"]
    key = (await jwks(identity))[kid]
    decoded: dict[str, Any] = jwt.decode(
        token, key=key, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=ISSUER
    )
    return decoded


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


# --- login ----------------------------------------------------------------------------------------


async def test_login_is_case_insensitive_and_token_carries_the_house_claims(
    identity: Identity,
) -> None:
    org = await identity.organisation(ASSOCIATION)
    username = f"DUPONT.{unique('jean')}"
    account = await identity.account(org, "association_admin", "member", username=username)
    tokens = await identity.login(username.lower())
    assert tokens.token_type == "Bearer"
    assert tokens.expires_in == 300
    assert tokens.refresh_expires_in == 30 * 24 * 3600
    decoded = await claims(identity, tokens.access_token)
    assert decoded["sub"] == account.id
    assert decoded["typ"] == "user"
    assert decoded["st"] == "active"
    assert decoded["name"] == username  # shown as typed at registration
    assert decoded["orgs"] == {org: ["association_admin", "member"]}
    assert decoded["exp"] - decoded["iat"] == 300
    assert decoded["jti"]
    me = await identity.stub.GetMe(
        identity_pb2.GetMeRequest(), metadata=bearer(tokens.access_token)
    )
    assert me.user.username == username


async def test_wrong_password_and_unknown_user_look_the_same(identity: Identity) -> None:
    org = await identity.organisation()
    account = await identity.account(org, "member")
    wrong = await fails(identity.login(account.username, "not the password at all"))
    unknown = await fails(identity.login(unique("nobody."), "not the password at all"))
    assert wrong.code == unknown.code == grpc.StatusCode.UNAUTHENTICATED
    assert wrong.message == unknown.message == "invalid username or password"
    assert wrong.reason == unknown.reason


async def test_login_without_fields_names_them(identity: Identity) -> None:
    problem = await fails(identity.stub.Login(identity_pb2.LoginRequest()))
    assert problem.code == grpc.StatusCode.INVALID_ARGUMENT
    assert {f for f, _ in problem.violations} == {"username", "password"}


async def test_pending_user_logs_in_without_roles_in_the_token(identity: Identity) -> None:
    org = await identity.organisation()
    account = await identity.account(org, "member", status=UserStatus.PENDING)
    decoded = await claims(identity, (await identity.login(account.username)).access_token)
    assert decoded["st"] == "pending"
    assert decoded["orgs"] == {}


async def test_disabled_user_cannot_log_in(identity: Identity) -> None:
    org = await identity.organisation()
    account = await identity.account(org, "member", status=UserStatus.DISABLED)
    problem = await fails(identity.login(account.username))
    assert problem.code == grpc.StatusCode.PERMISSION_DENIED
    assert problem.reason == "account_disabled"
    # Without the password nothing tells the account apart from any other.
    guess = await fails(identity.login(account.username, "wrong password here"))
    assert guess.code == grpc.StatusCode.UNAUTHENTICATED


async def test_lockout_looks_the_same_for_known_and_unknown_usernames(identity: Identity) -> None:
    org = await identity.organisation()
    account = await identity.account(org, "member")
    ghost = unique("ghost.")
    for username in (account.username, ghost):
        for _ in range(identity.settings.lockout_threshold):
            problem = await fails(identity.login(username, "wrong password here"))
            assert problem.code == grpc.StatusCode.UNAUTHENTICATED
    throttled_before = _throttled()
    known = await fails(identity.login(account.username))  # even the right password
    unknown = await fails(identity.login(ghost))
    assert known.code == unknown.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert known.message == unknown.message
    assert known.retry_after_seconds is not None and unknown.retry_after_seconds is not None
    assert 890 <= known.retry_after_seconds <= 900
    assert 890 <= unknown.retry_after_seconds <= 900
    # The lock is per username, in any case.
    assert (await fails(identity.login(account.username.upper()))).code == (
        grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    # Each refusal by the throttle is counted for the LoginLockoutsSpiking alert.
    assert _throttled() - throttled_before == 3


def _throttled() -> float:
    value = REGISTRY.get_sample_value(
        "guichet_identity_login_throttled_total", {"scope": "account"}
    )
    return value or 0.0


async def test_concurrent_failures_are_all_counted(identity: Identity) -> None:
    org = await identity.organisation()
    account = await identity.account(org, "member")
    threshold = identity.settings.lockout_threshold
    results = await asyncio.gather(
        *(fails(identity.login(account.username, f"wrong password {n}")) for n in range(threshold))
    )
    assert all(r.code == grpc.StatusCode.UNAUTHENTICATED for r in results)
    async with identity.sessions.begin() as session:
        row = await session.get(LoginThrottle, account.username.lower())
        assert row is not None and row.failures == threshold and row.locked_until is not None
    assert (await fails(identity.login(account.username))).code == (
        grpc.StatusCode.RESOURCE_EXHAUSTED
    )


async def test_success_clears_the_failure_count(identity: Identity) -> None:
    org = await identity.organisation()
    account = await identity.account(org, "member")
    for _ in range(2):
        for _ in range(identity.settings.lockout_threshold - 1):
            await fails(identity.login(account.username, "wrong password here"))
        await identity.login(account.username)


async def test_login_records_audit_events(identity: Identity) -> None:
    org = await identity.organisation()
    account = await identity.account(org, "member")
    await fails(identity.login(account.username, "wrong password here"))
    await identity.login(account.username)
    events = await identity.stub.ListAuditEvents(
        identity_pb2.ListAuditEventsRequest(user_id=account.id), metadata=identity.admin
    )
    assert [e.event for e in events.events] == ["login.succeeded", "login.failed"]
    assert events.events[0].detail["client_ip"] == "192.0.2.1"
    assert events.events[1].detail["reason"] == "wrong_password"


async def test_hash_made_with_older_parameters_is_upgraded_at_login(identity: Identity) -> None:
    org = await identity.organisation()
    account = await identity.account(org, "member")
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    async with identity.sessions.begin() as session:
        await session.execute(
            update(User).where(User.id == uuid.UUID(account.id)).values(password_hash=weak)
        )
    await identity.login(account.username)
    async with identity.sessions.begin() as session:
        stored = await session.scalar(
            select(User.password_hash).where(User.id == uuid.UUID(account.id))
        )
    assert stored is not None and stored != weak
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    await identity.login(account.username)  # and the new hash still verifies


# --- refresh tokens -----------------------------------------------------------------------------


async def refresh(identity: Identity, token: str) -> identity_pb2.TokenPair:
    response: identity_pb2.RefreshResponse = await identity.stub.Refresh(
        identity_pb2.RefreshRequest(refresh_token=token)
    )
    return response.tokens


async def test_refresh_rotates_and_reuse_revokes_the_family(identity: Identity) -> None:
    org = await identity.organisation()
    account = await identity.account(org, "member")
    first = await identity.login(account.username)
    second = await refresh(identity, first.refresh_token)
    assert second.refresh_token != first.refresh_token
    decoded = await claims(identity, second.access_token)
    assert decoded["sub"] == account.id
    # The first refresh token was rotated: presenting it again means it was stolen.
    reuse = await fails(refresh(identity, first.refresh_token))
    assert reuse.code == grpc.StatusCode.UNAUTHENTICATED
    assert reuse.reason == "refresh_token_reused"
    # ... so the legitimate holder's newest token is dead too.
    revoked = await fails(refresh(identity, second.refresh_token))
    assert revoked.code == grpc.StatusCode.UNAUTHENTICATED
    # Another login (another family) is untouched.
    other = await identity.login(account.username)
    await refresh(identity, other.refresh_token)


async def test_logout_revokes_the_family(identity: Identity) -> None:
    org = await identity.organisation()
    account = await identity.account(org, "member")
    first = await identity.login(account.username)
    second = await refresh(identity, first.refresh_token)
    await identity.stub.Logout(identity_pb2.LogoutRequest(refresh_token=first.refresh_token))
    assert (await fails(refresh(identity, second.refresh_token))).code == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    # Logging out again, or with an unknown token, is harmless.
    await identity.stub.Logout(identity_pb2.LogoutRequest(refresh_token=second.refresh_token))
    await identity.stub.Logout(identity_pb2.LogoutRequest(refresh_token="unknown-token"))


async def test_expired_or_unknown_refresh_token_is_refused(identity: Identity) -> None:
    org = await identity.organisation()
    account = await identity.account(org, "member")
    tokens = await identity.login(account.username)
    async with identity.sessions.begin() as session:
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == uuid.UUID(account.id))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    expired = await fails(refresh(identity, tokens.refresh_token))
    assert expired.code == grpc.StatusCode.UNAUTHENTICATED
    assert expired.reason == "refresh_token_expired"
    unknown = await fails(refresh(identity, "no-such-refresh-token"))
    assert unknown.code == grpc.StatusCode.UNAUTHENTICATED
    empty = await fails(refresh(identity, ""))
    assert empty.code == grpc.StatusCode.INVALID_ARGUMENT
    assert empty.violations[0][0] == "refresh_token"


async def test_refresh_carries_current_roles_and_refuses_disabled_users(
    identity: Identity,
) -> None:
    org = await identity.organisation()
    account = await identity.account(org, "member")
    tokens = await identity.login(account.username)
    await identity.stub.GrantRole(
        identity_pb2.GrantRoleRequest(user_id=account.id, role="association_admin"),
        metadata=identity.admin,
    )
    renewed = await refresh(identity, tokens.refresh_token)
    assert (await claims(identity, renewed.access_token))["orgs"] == {
        org: ["association_admin", "member"]
    }
    async with identity.sessions.begin() as session:
        await session.execute(
            update(User).where(User.id == uuid.UUID(account.id)).values(status="disabled")
        )
    assert (await fails(refresh(identity, renewed.refresh_token))).code == (
        grpc.StatusCode.UNAUTHENTICATED
    )


# --- service tokens ---------------------------------------------------------------------------


async def test_service_token_for_a_configured_client(identity: Identity) -> None:
    response = await identity.stub.IssueServiceToken(
        identity_pb2.IssueServiceTokenRequest(
            client_id=SERVICE_CLIENT_ID, client_secret=SERVICE_CLIENT_SECRET
        )
    )
    assert response.expires_in == 600
    decoded = await claims(identity, response.access_token)
    assert decoded["typ"] == "service"
    assert decoded["sub"] == f"svc:{SERVICE_CLIENT_ID}"
    assert decoded["orgs"] == {}
    assert decoded["exp"] - decoded["iat"] == 600


async def test_service_token_refused_for_wrong_or_unknown_credentials(identity: Identity) -> None:
    wrong = await fails(
        identity.stub.IssueServiceToken(
            identity_pb2.IssueServiceTokenRequest(
                client_id=SERVICE_CLIENT_ID, client_secret="not-the-secret-of-the-gateway"
            )
        )
    )
    unknown = await fails(
        identity.stub.IssueServiceToken(
            identity_pb2.IssueServiceTokenRequest(
                client_id="nobody", client_secret=SERVICE_CLIENT_SECRET
            )
        )
    )
    assert wrong.code == unknown.code == grpc.StatusCode.UNAUTHENTICATED
    assert wrong.message == unknown.message
    empty = await fails(identity.stub.IssueServiceToken(identity_pb2.IssueServiceTokenRequest()))
    assert {f for f, _ in empty.violations} == {"client_id", "client_secret"}


# --- who may call what --------------------------------------------------------------------------


async def test_public_calls_need_no_token_and_ignore_a_bad_one(identity: Identity) -> None:
    await identity.stub.GetJwks(identity_pb2.GetJwksRequest())
    await identity.stub.GetJwks(identity_pb2.GetJwksRequest(), metadata=bearer("garbage"))
    tokens = await identity.stub.Login(
        identity_pb2.LoginRequest(username=ADMIN_USERNAME, password=ADMIN_PASSWORD),
        metadata=bearer("not.a.jwt"),
    )
    assert tokens.tokens.access_token
    # With the gateway's service token, too.
    await identity.stub.ResendVerification(
        identity_pb2.ResendVerificationRequest(username=unique("nobody.")),
        metadata=identity.service,
    )


async def test_private_calls_need_a_valid_token(identity: Identity) -> None:
    missing = await fails(identity.stub.GetMe(identity_pb2.GetMeRequest()))
    assert missing.code == grpc.StatusCode.UNAUTHENTICATED
    garbage = await fails(identity.stub.GetMe(identity_pb2.GetMeRequest(), metadata=bearer("x")))
    assert garbage.code == grpc.StatusCode.UNAUTHENTICATED
    # A well-formed token signed by a key identity never published.
    forged = jwt.encode(
        {"sub": str(uuid.uuid4()), "iss": ISSUER, "aud": AUDIENCE, "iat": 0, "exp": 2**31},
        Ed25519PrivateKey.generate(),
        algorithm=ALGORITHM,
        headers={"kid": "forged"},
    )
    problem = await fails(identity.stub.GetMe(identity_pb2.GetMeRequest(), metadata=bearer(forged)))
    assert problem.code == grpc.StatusCode.UNAUTHENTICATED


async def test_services_cannot_use_user_only_calls(identity: Identity) -> None:
    me = await fails(identity.stub.GetMe(identity_pb2.GetMeRequest(), metadata=identity.service))
    assert me.code == grpc.StatusCode.PERMISSION_DENIED
    profile = await fails(
        identity.stub.CompleteProfile(
            identity_pb2.CompleteProfileRequest(), metadata=identity.service
        )
    )
    assert profile.code == grpc.StatusCode.PERMISSION_DENIED


# --- signing keys -----------------------------------------------------------------------------


async def test_jwks_publishes_ed25519_public_keys(identity: Identity) -> None:
    document = json.loads((await identity.stub.GetJwks(identity_pb2.GetJwksRequest())).jwks_json)
    assert document["keys"]
    for key in document["keys"]:
        assert key["kty"] == "OKP" and key["crv"] == "Ed25519"
        assert key["use"] == "sig" and key["alg"] == "EdDSA"
        assert key["kid"] and key["x"]
        assert "d" not in key  # never the private part


async def test_rotation_keeps_old_tokens_valid_and_signs_new_ones_with_the_new_key(
    identity: Identity,
) -> None:
    org = await identity.organisation()
    account = await identity.account(org, "member")
    before = (await identity.login(account.username)).access_token
    rotated = await identity.stub.RotateSigningKey(
        identity_pb2.RotateSigningKeyRequest(), metadata=identity.admin
    )
    assert rotated.kid != kid_of(before)
    after = (await identity.login(account.username)).access_token
    assert kid_of(after) == rotated.kid
    published = await jwks(identity)
    assert {kid_of(before), rotated.kid} <= set(published)
    # Both verify, through the JWKS and through the service itself.
    assert (await claims(identity, before))["sub"] == account.id
    for token in (before, after):
        me = await identity.stub.GetMe(identity_pb2.GetMeRequest(), metadata=bearer(token))
        assert me.user.id == account.id


async def test_only_ops_admin_rotates_keys(identity: Identity) -> None:
    org = await identity.organisation()
    account = await identity.account(org, "association_admin")
    problem = await fails(
        identity.stub.RotateSigningKey(
            identity_pb2.RotateSigningKeyRequest(), metadata=await identity.token(account)
        )
    )
    assert problem.code == grpc.StatusCode.PERMISSION_DENIED
    service = await fails(
        identity.stub.RotateSigningKey(
            identity_pb2.RotateSigningKeyRequest(), metadata=identity.service
        )
    )
    assert service.code == grpc.StatusCode.PERMISSION_DENIED


async def test_a_key_older_than_the_rotation_period_is_replaced_on_next_issue(
    identity: Identity,
) -> None:
    org = await identity.organisation()
    account = await identity.account(org, "member")
    before = (await identity.login(account.username)).access_token
    async with identity.sessions.begin() as session:
        await session.execute(
            update(SigningKey)
            .where(SigningKey.kid == kid_of(before))
            .values(created_at=datetime.now(UTC) - timedelta(days=2))
        )
    after = (await identity.login(account.username)).access_token
    assert kid_of(after) != kid_of(before)
    assert {kid_of(before), kid_of(after)} <= set(await jwks(identity))
    me = await identity.stub.GetMe(identity_pb2.GetMeRequest(), metadata=bearer(before))
    assert me.user.id == account.id
