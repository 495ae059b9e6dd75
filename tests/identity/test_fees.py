"""Validating an association's account asks membership whether this year's fee is paid.

Identity and membership both run for real (tests/identity/conftest.py); fees are recorded in
membership as an admin would. "Membership down" is a second identity process on the same
database whose membership address answers nothing, as a replica would see an outage.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import cast

import grpc
import pytest
from guichet.identity.v1 import identity_pb2, identity_pb2_grpc
from sqlalchemy import select

from services.identity.models import AuditEvent, User, UserStatus
from services.identity.servicer import SPEC
from services.kit.ports import free_port
from services.kit.runtime import start_service
from tests.identity.harness import (
    ASSOCIATION,
    ERP_CUSTOMER,
    WORKSHOP,
    Account,
    Identity,
    Kind,
    fails,
)


async def _validate(
    stub: identity_pb2_grpc.IdentityServiceAsyncStub,
    account: Account,
    auth: tuple[tuple[str, str], ...],
) -> identity_pb2.User:
    response: identity_pb2.ValidateAccountResponse = await stub.ValidateAccount(
        identity_pb2.ValidateAccountRequest(user_id=account.id), metadata=auth
    )
    return response.user


async def _unchanged(identity: Identity, account: Account) -> None:
    """Still pending, no role, no validation audited: a refusal leaves nothing behind."""
    async with identity.sessions.begin() as session:
        user = await session.get(User, uuid.UUID(account.id))
        assert user is not None
        assert user.status == UserStatus.PENDING
        assert user.memberships == []
        validated = await session.scalar(
            select(AuditEvent.id).where(
                AuditEvent.user_id == user.id, AuditEvent.event == "user.validated"
            )
        )
        assert validated is None


async def test_a_member_whose_fee_is_paid_is_validated(identity: Identity) -> None:
    org = await identity.organisation(ASSOCIATION)
    admin = await identity.account(org, "association_admin")
    account = await identity.account(org, status=UserStatus.PENDING)
    await identity.pay_fee(account)
    user = await _validate(identity.stub, account, await identity.token(admin))
    assert user.status == identity_pb2.USER_STATUS_ACTIVE
    assert [m.role for m in user.memberships] == ["member"]
    events = await identity.stub.ListAuditEvents(
        identity_pb2.ListAuditEventsRequest(user_id=account.id), metadata=identity.admin
    )
    assert events.events[0].event == "user.validated"
    assert events.events[0].detail["fee_year"] == str(datetime.now(UTC).year)


async def test_an_unpaid_fee_refuses_the_validation_and_changes_nothing(
    identity: Identity,
) -> None:
    org = await identity.organisation(ASSOCIATION)
    admin = await identity.token(await identity.account(org, "association_admin"))
    # Not a recorded member at all; then a member whose only fee is last year's.
    stranger = await identity.account(org, status=UserStatus.PENDING)
    late = await identity.account(org, status=UserStatus.PENDING)
    await identity.pay_fee(late, year=datetime.now(UTC).year - 1)
    for account in (stranger, late):
        problem = await fails(_validate(identity.stub, account, admin))
        assert problem.code == grpc.StatusCode.FAILED_PRECONDITION
        assert problem.reason == "fee_unpaid"
        assert str(datetime.now(UTC).year) in problem.message
        await _unchanged(identity, account)
    # Once the payment is recorded, the same request goes through.
    await identity.pay_fee(stranger)
    assert (await _validate(identity.stub, stranger, admin)).status == (
        identity_pb2.USER_STATUS_ACTIVE
    )


async def test_local_refusals_come_before_the_fee_question(identity: Identity) -> None:
    """An incomplete or already active account is refused for that, whatever the fee."""
    org = await identity.organisation(ASSOCIATION)
    incomplete = await identity.account(org, status=UserStatus.PENDING, complete=False)
    problem = await fails(_validate(identity.stub, incomplete, identity.admin))
    assert problem.reason == "profile_incomplete"
    active = await identity.account(org, "member")
    problem = await fails(_validate(identity.stub, active, identity.admin))
    assert problem.reason == "not_pending"


@pytest.fixture
async def cut_off(identity: Identity) -> AsyncIterator[identity_pb2_grpc.IdentityServiceAsyncStub]:
    """A second identity process on the same database, whose membership answers nothing."""
    settings = identity.settings.model_copy(
        update={"grpc_port": 0, "membership_addr": f"127.0.0.1:{free_port()}"}
    )
    context, server = await start_service(SPEC, settings)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield cast(
            "identity_pb2_grpc.IdentityServiceAsyncStub",
            identity_pb2_grpc.IdentityServiceStub(channel),
        )
    finally:
        await channel.close()
        await server.stop()
        await context.exit_stack.aclose()


async def test_membership_down_refuses_as_unavailable_and_validates_nothing(
    identity: Identity, cut_off: identity_pb2_grpc.IdentityServiceAsyncStub
) -> None:
    org = await identity.organisation(ASSOCIATION)
    account = await identity.account(org, status=UserStatus.PENDING)
    await identity.pay_fee(account)  # paid, but nobody can tell identity so
    problem = await fails(_validate(cut_off, account, identity.admin))
    assert problem.code == grpc.StatusCode.UNAVAILABLE
    assert problem.reason == "membership_unavailable"
    await _unchanged(identity, account)
    # The very same request succeeds where membership answers (a retry after the outage).
    user = await _validate(identity.stub, account, identity.admin)
    assert user.status == identity_pb2.USER_STATUS_ACTIVE


@pytest.mark.parametrize("kind", [WORKSHOP, ERP_CUSTOMER])
async def test_other_kinds_validate_without_asking_membership(
    identity: Identity, cut_off: identity_pb2_grpc.IdentityServiceAsyncStub, kind: Kind
) -> None:
    """No fee outside associations: validation works even while membership is unreachable."""
    org = await identity.organisation(kind)
    account = await identity.account(org, status=UserStatus.PENDING)
    user = await _validate(cut_off, account, identity.admin)
    assert user.status == identity_pb2.USER_STATUS_ACTIVE
