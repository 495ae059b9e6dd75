"""What identity tests share: the running service, a stub, factories and mail helpers.

One identity process (real PostgreSQL, real gRPC on port 0, outbox relay to the real Temporal dev
server, a mail worker, the SMTP sink) serves the whole package, with a real membership service
beside it for the association fee check; tests stay independent by using fresh names. Factories
write accounts straight to the database when a test is not about how they were made, which keeps
argon2 and mail round-trips for the tests that are.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeAlias

import grpc
from guichet.identity.v1 import identity_pb2, identity_pb2_grpc
from guichet.membership.v1 import membership_pb2, membership_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.identity.domain import accounts
from services.identity.models import Membership, User, UserStatus
from services.identity.passwords import Passwords
from services.identity.settings import IdentitySettings
from services.kit.errors import RemoteProblem
from services.kit.smtpsink import SmtpSink

Kind: TypeAlias = identity_pb2.OrganisationKind.ValueType
ASSOCIATION = identity_pb2.ORGANISATION_KIND_ASSOCIATION
SERVICE_PROVIDER = identity_pb2.ORGANISATION_KIND_SERVICE_PROVIDER
CLIENT_BUSINESS = identity_pb2.ORGANISATION_KIND_CLIENT_BUSINESS
DELIVERY_PARTNER = identity_pb2.ORGANISATION_KIND_DELIVERY_PARTNER
WORKSHOP = identity_pb2.ORGANISATION_KIND_WORKSHOP
ERP_CUSTOMER = identity_pb2.ORGANISATION_KIND_ERP_CUSTOMER
OPERATOR = identity_pb2.ORGANISATION_KIND_OPERATOR

PASSWORD = "correct horse battery staple"
ADMIN_USERNAME = "Root.Admin"
ADMIN_PASSWORD = "bootstrap-secret-for-tests"
# The bootstrap admin's TOTP (ops_admin needs a second factor): 160 bits of base32.
ADMIN_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
SERVICE_CLIENT_ID = "gateway"
SERVICE_CLIENT_SECRET = "gateway-secret-0123456789abcdef"
MEMBERSHIP_CLIENT_ID = "membership"
MEMBERSHIP_CLIENT_SECRET = "membership-secret-0123456789abc"

_TOKEN_IN_LINK = re.compile(r"token=([A-Za-z0-9_-]+)")


def unique(prefix: str = "u") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def fails(call: Awaitable[Any]) -> RemoteProblem:
    """Awaits a call that must fail and returns what the caller sees."""
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return RemoteProblem.from_rpc_error(error)
    raise AssertionError("the call succeeded")


def fields(problem: RemoteProblem) -> set[str]:
    return {field for field, _ in problem.violations}


@dataclass(frozen=True)
class Account:
    id: str
    username: str
    password: str
    email: str | None
    organisation_id: str


@dataclass
class Identity:
    settings: IdentitySettings
    stub: identity_pb2_grpc.IdentityServiceAsyncStub
    sessions: async_sessionmaker[AsyncSession]
    passwords: Passwords
    smtp: SmtpSink
    admin_token: str
    service_token: str
    # The membership service beside identity (tests/identity only): where fees are recorded.
    membership: membership_pb2_grpc.MembershipServiceAsyncStub | None = None

    @property
    def admin(self) -> tuple[tuple[str, str], ...]:
        return bearer(self.admin_token)

    @property
    def service(self) -> tuple[tuple[str, str], ...]:
        return bearer(self.service_token)

    async def login(
        self,
        username: str,
        password: str = PASSWORD,
        *,
        client_ip: str = "192.0.2.1",
        device_token: str = "",
    ) -> identity_pb2.TokenPair:
        response = await self.sign_in(
            username, password, client_ip=client_ip, device_token=device_token
        )
        assert response.HasField("tokens"), "this account needs a second factor"
        return response.tokens

    async def sign_in(
        self,
        username: str,
        password: str = PASSWORD,
        *,
        client_ip: str = "192.0.2.1",
        device_token: str = "",
    ) -> identity_pb2.LoginResponse:
        """The whole Login answer: tokens and device cookie, or a second-factor ticket."""
        response: identity_pb2.LoginResponse = await self.stub.Login(
            identity_pb2.LoginRequest(
                username=username,
                password=password,
                client_ip=client_ip,
                device_token=device_token,
            )
        )
        return response

    async def token(self, account: Account) -> tuple[tuple[str, str], ...]:
        return bearer((await self.login(account.username, account.password)).access_token)

    async def organisation(self, kind: Kind = ASSOCIATION, name: str | None = None) -> str:
        response: identity_pb2.CreateOrganisationResponse = await self.stub.CreateOrganisation(
            identity_pb2.CreateOrganisationRequest(kind=kind, name=name or unique("Org ")),
            metadata=self.admin,
        )
        return response.organisation.id

    async def account(
        self,
        organisation_id: str,
        *roles: str,
        status: UserStatus = UserStatus.ACTIVE,
        username: str | None = None,
        email: str | None = "",
        email_verified: bool = True,
        first_name: str = "Jeanne",
        last_name: str = "Martin",
        complete: bool = True,
        password: str | None = PASSWORD,
    ) -> Account:
        """An account written straight to the database (not the rule under test)."""
        username = username or unique("user.")
        if email == "":
            email = f"{username.lower()}@example.org"
        user_id = uuid.uuid4()
        now = datetime.now(UTC)
        org_id = uuid.UUID(organisation_id)
        user = User(
            id=user_id,
            organisation_id=org_id,
            username=username,
            email=email,
            email_verified=email_verified and email is not None,
            password_hash=await self.passwords.hash(password) if password else None,
            status=status.value,
            first_name=first_name,
            last_name=last_name,
            search_first_name=accounts.fold(first_name),
            search_last_name=accounts.fold(last_name),
            created_at=now,
            updated_at=now,
            memberships=[
                Membership(user_id=user_id, organisation_id=org_id, role=role, created_at=now)
                for role in roles
            ],
        )
        if complete:
            user.phone = "+33 6 12 34 56 78"
            user.address_line = "1 rue de la Paix"
            user.postal_code = "75002"
            user.city = "Paris"
            user.birth_date = date(1990, 5, 17)
        async with self.sessions.begin() as session:
            session.add(user)
        return Account(str(user_id), username, password or "", email, organisation_id)

    async def pay_fee(self, account: Account, *, year: int | None = None) -> str:
        """Records `account` as a member of its association and its fee for `year` (default:
        this year) in the membership service, as the association's admin would; the member id."""
        assert self.membership is not None, "this identity runs without membership"
        added: membership_pb2.AddMemberResponse = await self.membership.AddMember(
            membership_pb2.AddMemberRequest(
                association_id=account.organisation_id,
                user_id=account.id,
                first_name="Jeanne",
                last_name="Martin",
            ),
            metadata=self.admin,
        )
        await self.membership.RecordFeePayment(
            membership_pb2.RecordFeePaymentRequest(
                association_id=account.organisation_id,
                member_id=added.member.id,
                year=year or datetime.now(UTC).year,
                amount_cents=3500,
            ),
            metadata=self.admin,
        )
        return added.member.id

    async def link_token(self, address: str, *, count: int = 1, path: str = "") -> str:
        """The token of the `count`-th mail to `address` (the one a person would click)."""
        mails = await self.smtp.wait_for(address, count=count)
        body = mails[count - 1].body
        assert path in body, body
        match = _TOKEN_IN_LINK.search(body)
        assert match is not None, body
        return match.group(1)

    def mails_to(self, address: str) -> int:
        return len(self.smtp.to(address))
