"""Self sign-up: registration, e-mail verification (through real mail), profile, race."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta

import grpc
import pytest
from guichet.identity.v1 import identity_pb2
from sqlalchemy import update

from services.identity.models import EmailLink, UserStatus
from tests.identity.harness import (
    ASSOCIATION,
    CLIENT_BUSINESS,
    DELIVERY_PARTNER,
    ERP_CUSTOMER,
    OPERATOR,
    PASSWORD,
    SERVICE_PROVIDER,
    WORKSHOP,
    Identity,
    Kind,
    fails,
    fields,
    unique,
)


def registration(organisation_id: str, **overrides: str) -> identity_pb2.RegisterRequest:
    username = overrides.pop("username", unique("jean."))
    values = {
        "organisation_id": organisation_id,
        "username": username,
        "email": f"{username.lower()}@example.org",
        "password": PASSWORD,
        "first_name": "Jean",
        "last_name": "Dupont",
    }
    values.update(overrides)
    return identity_pb2.RegisterRequest(**values)


async def test_registration_creates_a_pending_account_and_mails_a_verification_link(
    identity: Identity,
) -> None:
    org = await identity.organisation(ASSOCIATION)
    request = registration(org)
    user = (await identity.stub.Register(request)).user
    assert user.username == request.username
    assert user.status == identity_pb2.USER_STATUS_PENDING and user.pending
    assert not user.memberships
    assert not user.email_verified and not user.profile_complete
    assert user.organisation_id == org
    token = await identity.link_token(
        request.email, path=f"{identity.settings.public_base_url}/verify-email?token="
    )
    verified = (await identity.stub.VerifyEmail(identity_pb2.VerifyEmailRequest(token=token))).user
    assert verified.email_verified
    assert verified.status == identity_pb2.USER_STATUS_PENDING  # still waits for an admin
    events = await identity.stub.ListAuditEvents(
        identity_pb2.ListAuditEventsRequest(user_id=user.id), metadata=identity.admin
    )
    assert [e.event for e in events.events][::-1] == [
        "user.registered",
        "email_verification.sent",
        "email.verified",
    ]


async def test_verification_link_is_one_time(identity: Identity) -> None:
    org = await identity.organisation(ASSOCIATION)
    request = registration(org)
    await identity.stub.Register(request)
    token = await identity.link_token(request.email)
    await identity.stub.VerifyEmail(identity_pb2.VerifyEmailRequest(token=token))
    again = await fails(identity.stub.VerifyEmail(identity_pb2.VerifyEmailRequest(token=token)))
    assert again.code == grpc.StatusCode.FAILED_PRECONDITION
    assert again.reason == "link_used"


async def test_unknown_and_expired_verification_links(identity: Identity) -> None:
    unknown = await fails(
        identity.stub.VerifyEmail(identity_pb2.VerifyEmailRequest(token="not-a-real-link"))
    )
    assert unknown.code == grpc.StatusCode.NOT_FOUND
    assert unknown.reason == "link_unknown"
    empty = await fails(identity.stub.VerifyEmail(identity_pb2.VerifyEmailRequest()))
    assert empty.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(empty) == {"token"}

    org = await identity.organisation(ASSOCIATION)
    request = registration(org)
    user = (await identity.stub.Register(request)).user
    token = await identity.link_token(request.email)
    async with identity.sessions.begin() as session:
        await session.execute(
            update(EmailLink)
            .where(EmailLink.user_id == uuid.UUID(user.id))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    expired = await fails(identity.stub.VerifyEmail(identity_pb2.VerifyEmailRequest(token=token)))
    assert expired.code == grpc.StatusCode.FAILED_PRECONDITION
    assert expired.reason == "link_expired"
    assert expired.message == "this link has expired"


async def test_resend_replaces_the_link_and_answers_the_same_for_unknown_users(
    identity: Identity,
) -> None:
    org = await identity.organisation(ASSOCIATION)
    request = registration(org)
    await identity.stub.Register(request)
    first = await identity.link_token(request.email)
    await identity.stub.ResendVerification(
        identity_pb2.ResendVerificationRequest(username=request.username.upper())
    )
    second = await identity.link_token(request.email, count=2)
    assert second != first
    replaced = await fails(identity.stub.VerifyEmail(identity_pb2.VerifyEmailRequest(token=first)))
    assert replaced.code == grpc.StatusCode.FAILED_PRECONDITION
    assert replaced.reason == "link_replaced"
    await identity.stub.VerifyEmail(identity_pb2.VerifyEmailRequest(token=second))
    # Verified accounts and unknown usernames get the same empty answer (and no mail).
    for username in (request.username, unique("nobody.")):
        answer = await identity.stub.ResendVerification(
            identity_pb2.ResendVerificationRequest(username=username)
        )
        assert answer == identity_pb2.ResendVerificationResponse()
    await asyncio.sleep(0.5)
    assert identity.mails_to(request.email) == 2


async def test_every_bad_field_is_reported_at_once(identity: Identity) -> None:
    problem = await fails(
        identity.stub.Register(
            identity_pb2.RegisterRequest(
                organisation_id="not-a-uuid",
                username="x!",
                email="not an address",
                password="short",
                first_name="",
                last_name=" ",
            )
        )
    )
    assert problem.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(problem) == {
        "organisation_id",
        "username",
        "email",
        "password",
        "first_name",
        "last_name",
    }


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("short", "must be at least 12 characters"),
        ("x" * 129, "must be at most 128 characters"),
        ("my-name-is-JEAN.POLICY-ok", "must not contain the username"),
    ],
)
async def test_password_policy(identity: Identity, password: str, expected: str) -> None:
    org = await identity.organisation(ASSOCIATION)
    problem = await fails(
        identity.stub.Register(registration(org, username="jean.policy", password=password))
    )
    assert ("password", expected) in problem.violations


async def test_registration_needs_an_existing_open_organisation(identity: Identity) -> None:
    missing = await fails(identity.stub.Register(registration(str(uuid.uuid4()))))
    assert missing.code == grpc.StatusCode.NOT_FOUND
    for kind in (OPERATOR, SERVICE_PROVIDER):
        org = await identity.organisation(kind)
        closed = await fails(identity.stub.Register(registration(org)))
        assert closed.code == grpc.StatusCode.FAILED_PRECONDITION
        assert closed.reason == "self_registration_closed"


@pytest.mark.parametrize(
    "kind", [ASSOCIATION, DELIVERY_PARTNER, WORKSHOP, ERP_CUSTOMER, CLIENT_BUSINESS]
)
async def test_open_kinds_accept_registration(identity: Identity, kind: Kind) -> None:
    org = await identity.organisation(kind)
    user = (await identity.stub.Register(registration(org), metadata=identity.service)).user
    assert user.pending


async def test_username_is_unique_whatever_its_case_and_keeps_its_case(
    identity: Identity,
) -> None:
    org = await identity.organisation(ASSOCIATION)
    name = unique("DUPONT.jean")
    first = (await identity.stub.Register(registration(org, username=name))).user
    assert first.username == name
    problem = await fails(identity.stub.Register(registration(org, username=name.lower())))
    assert problem.code == grpc.StatusCode.ALREADY_EXISTS
    assert fields(problem) == {"username"}


async def test_concurrent_registrations_of_one_username_let_exactly_one_win(
    identity: Identity,
) -> None:
    org = await identity.organisation(ASSOCIATION)
    for _ in range(3):
        name = unique("Race.")
        outcomes = await asyncio.gather(
            identity.stub.Register(registration(org, username=name.upper())),
            identity.stub.Register(registration(org, username=name.lower())),
            return_exceptions=True,
        )
        winners = [o for o in outcomes if isinstance(o, identity_pb2.RegisterResponse)]
        losers = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
        assert len(winners) == 1 and len(losers) == 1
        assert losers[0].code() == grpc.StatusCode.ALREADY_EXISTS


async def test_email_is_normalised(identity: Identity) -> None:
    org = await identity.organisation(ASSOCIATION)
    name = unique("mail.")
    user = (
        await identity.stub.Register(
            registration(org, username=name, email=f"  {name}@EXAMPLE.Org ")
        )
    ).user
    assert user.email == f"{name}@example.org"


# --- the signed-in user's own account ---------------------------------------------------------


def full_profile(**overrides: str) -> identity_pb2.Profile:
    values = {
        "first_name": "Élodie",
        "last_name": "Lefèvre",
        "phone": "+33 6 12 34 56 78",
        "address_line": "3 place du Marché",
        "postal_code": "83000",
        "city": "Toulon",
        "birth_date": "1988-02-29",
    }
    values.update(overrides)
    return identity_pb2.Profile(**values)


async def test_pending_user_completes_the_profile(identity: Identity) -> None:
    org = await identity.organisation(ASSOCIATION)
    account = await identity.account(
        org, status=UserStatus.PENDING, complete=False, email_verified=False
    )
    auth = await identity.token(account)
    me = (await identity.stub.GetMe(identity_pb2.GetMeRequest(), metadata=auth)).user
    assert me.pending and not me.profile_complete
    done = (
        await identity.stub.CompleteProfile(
            identity_pb2.CompleteProfileRequest(profile=full_profile()), metadata=auth
        )
    ).user
    assert done.profile == full_profile()
    assert not done.profile_complete  # the e-mail is not verified yet
    await identity.stub.ResendVerification(
        identity_pb2.ResendVerificationRequest(username=account.username)
    )
    assert account.email is not None
    token = await identity.link_token(account.email)
    verified = (await identity.stub.VerifyEmail(identity_pb2.VerifyEmailRequest(token=token))).user
    assert verified.profile_complete


async def test_missing_profile_fields_are_all_named(identity: Identity) -> None:
    org = await identity.organisation(ASSOCIATION)
    account = await identity.account(org, status=UserStatus.PENDING, complete=False)
    problem = await fails(
        identity.stub.CompleteProfile(
            identity_pb2.CompleteProfileRequest(
                profile=identity_pb2.Profile(first_name="Jean", last_name="Dupont")
            ),
            metadata=await identity.token(account),
        )
    )
    assert problem.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(problem) == {
        "profile.phone",
        "profile.address_line",
        "profile.postal_code",
        "profile.city",
        "profile.birth_date",
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("birth_date", (date.today() + timedelta(days=1)).isoformat()),
        ("birth_date", "17/05/1990"),
        ("birth_date", "1990-02-30"),
        ("phone", "call me"),
        ("postal_code", "83000!"),
        ("first_name", "x" * 101),
    ],
)
async def test_bad_profile_values(identity: Identity, field: str, value: str) -> None:
    org = await identity.organisation(ASSOCIATION)
    account = await identity.account(org, status=UserStatus.PENDING)
    problem = await fails(
        identity.stub.CompleteProfile(
            identity_pb2.CompleteProfileRequest(profile=full_profile(**{field: value})),
            metadata=await identity.token(account),
        )
    )
    assert fields(problem) == {f"profile.{field}"}
