"""Forgot password and reset links: same answer for everyone, one-time, audited."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import grpc
from guichet.identity.v1 import identity_pb2
from sqlalchemy import update

from services.identity.models import EmailLink, LinkPurpose
from tests.identity.harness import ASSOCIATION, Account, Identity, fails, fields, unique

NEW_PASSWORD = "a completely new passphrase"


async def forgot(identity: Identity, login: str) -> identity_pb2.RequestPasswordResetResponse:
    answer: identity_pb2.RequestPasswordResetResponse = await identity.stub.RequestPasswordReset(
        identity_pb2.RequestPasswordResetRequest(login=login), metadata=identity.service
    )
    return answer


async def reset(identity: Identity, token: str, password: str = NEW_PASSWORD) -> None:
    await identity.stub.ResetPassword(
        identity_pb2.ResetPasswordRequest(token=token, new_password=password)
    )


async def member(
    identity: Identity, *, email: str | None = "", email_verified: bool = True
) -> Account:
    organisation = await identity.organisation(ASSOCIATION)
    return await identity.account(
        organisation, "member", email=email, email_verified=email_verified
    )


async def test_forgot_password_by_username_or_email(identity: Identity) -> None:
    account = await member(identity)
    assert account.email is not None
    await forgot(identity, account.username.upper())
    first = await identity.link_token(account.email, path="/reset-password?token=")
    await forgot(identity, account.email.upper())
    second = await identity.link_token(account.email, count=2)
    assert first != second
    # The newer link replaced the older one.
    old = await fails(reset(identity, first))
    assert old.code == grpc.StatusCode.FAILED_PRECONDITION and old.reason == "link_replaced"
    await reset(identity, second)
    await identity.login(account.username, NEW_PASSWORD)
    assert (await fails(identity.login(account.username, account.password))).code == (
        grpc.StatusCode.UNAUTHENTICATED
    )


async def test_forgot_password_answers_the_same_whether_or_not_the_account_exists(
    identity: Identity,
) -> None:
    without_email = await member(identity, email=None)
    answers = [
        await forgot(identity, unique("nobody.")),
        await forgot(identity, f"{unique('nobody.')}@example.org"),
        await forgot(identity, without_email.username),
        await forgot(identity, "not an @ address"),
    ]
    assert all(a == identity_pb2.RequestPasswordResetResponse() for a in answers)
    empty = await fails(forgot(identity, ""))
    assert fields(empty) == {"login"}


async def test_reset_is_one_time_revokes_sessions_and_is_audited(identity: Identity) -> None:
    account = await member(identity)
    assert account.email is not None
    session = await identity.login(account.username)
    await forgot(identity, account.username)
    token = await identity.link_token(account.email)
    await reset(identity, token)
    used = await fails(reset(identity, token, "yet another passphrase"))
    assert used.code == grpc.StatusCode.FAILED_PRECONDITION and used.reason == "link_used"
    revoked = await fails(
        identity.stub.Refresh(identity_pb2.RefreshRequest(refresh_token=session.refresh_token))
    )
    assert revoked.code == grpc.StatusCode.UNAUTHENTICATED
    events = await identity.stub.ListAuditEvents(
        identity_pb2.ListAuditEventsRequest(user_id=account.id), metadata=identity.admin
    )
    names = [e.event for e in events.events]
    assert names[0] == "password_reset.used"
    assert "password_reset.sent" in names


async def test_a_refused_new_password_leaves_the_link_usable(identity: Identity) -> None:
    account = await member(identity)
    assert account.email is not None
    await forgot(identity, account.username)
    token = await identity.link_token(account.email)
    problem = await fails(reset(identity, token, f"x{account.username.upper()}x"))
    assert problem.code == grpc.StatusCode.INVALID_ARGUMENT
    assert problem.violations == [("new_password", "must not contain the username")]
    await reset(identity, token)  # nothing was half-written: the link still works
    await identity.login(account.username, NEW_PASSWORD)


async def test_expired_and_unknown_reset_links(identity: Identity) -> None:
    account = await member(identity)
    assert account.email is not None
    await forgot(identity, account.username)
    token = await identity.link_token(account.email)
    async with identity.sessions.begin() as session:
        await session.execute(
            update(EmailLink)
            .where(
                EmailLink.user_id == uuid.UUID(account.id),
                EmailLink.purpose == LinkPurpose.PASSWORD_RESET.value,
            )
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    expired = await fails(reset(identity, token))
    assert expired.code == grpc.StatusCode.FAILED_PRECONDITION and expired.reason == "link_expired"
    unknown = await fails(reset(identity, "never-sent"))
    assert unknown.code == grpc.StatusCode.NOT_FOUND and unknown.reason == "link_unknown"
    empty = await fails(identity.stub.ResetPassword(identity_pb2.ResetPasswordRequest()))
    assert fields(empty) == {"token", "new_password"}


async def test_reset_clears_the_lockout(identity: Identity) -> None:
    account = await member(identity)
    assert account.email is not None
    for _ in range(identity.settings.lockout_threshold):
        await fails(identity.login(account.username, "wrong password here"))
    assert (await fails(identity.login(account.username))).code == (
        grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    # The lock mailed the owner first (docs/identity.md), then comes the reset link.
    [lockout] = await identity.smtp.wait_for(account.email)
    assert "5 fois" in lockout.body and "/forgot-password" in lockout.body
    await forgot(identity, account.username)
    await reset(identity, await identity.link_token(account.email, count=2))
    await identity.login(account.username, NEW_PASSWORD)


async def test_a_verification_link_is_not_a_reset_link(identity: Identity) -> None:
    account = await member(identity, email_verified=False)
    assert account.email is not None
    await identity.stub.ResendVerification(
        identity_pb2.ResendVerificationRequest(username=account.username)
    )
    token = await identity.link_token(account.email, path="/verify-email?token=")
    problem = await fails(reset(identity, token))
    assert problem.code == grpc.StatusCode.NOT_FOUND
