"""The rules called directly on a session, with time under the test's control.

A database of its own (migrated with Alembic) so that signing keys, clocks and the last ops_admin
are this module's alone. Mails are read back from the outbox, sealed as they travel.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.identity.domain import (
    admin,
    credentials,
    organisations,
    registration,
    roles,
    service_tokens,
    signing_keys,
    startup,
    tokens,
    validation_queue,
)
from services.identity.domain.devices import Keyring
from services.identity.models import (
    Membership,
    Organisation,
    OrganisationKind,
    ServiceClient,
    SigningKey,
    User,
    UserStatus,
    outbox,
)
from services.identity.passwords import Passwords
from services.identity.servicer import SPEC
from services.identity.settings import IdentitySettings
from services.kit.auth import Principal
from services.kit.db import create_engine, create_session_factory
from services.kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from services.kit.mail import new_sealing_key, unseal
from services.kit.testing import DatabaseServer, wait_until
from tests.identity.harness import PASSWORD, unique

T0 = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
_TOKEN = re.compile(r"token=([A-Za-z0-9_-]+)")


@dataclass
class World:
    sessions: async_sessionmaker[AsyncSession]
    settings: IdentitySettings
    passwords: Passwords
    operator: Organisation
    association: Organisation
    keyring: Keyring

    def ops_admin(self) -> Principal:
        return Principal(
            subject=str(uuid.uuid4()),
            kind="user",
            token="",
            memberships={str(self.operator.id): frozenset({roles.OPS_ADMIN})},
        )

    async def register(self, username: str, now: datetime = T0) -> User:
        async with self.sessions.begin() as session:
            return await registration.register(
                session=session,
                settings=self.settings,
                passwords=self.passwords,
                now=now,
                organisation_id=str(self.association.id),
                username=username,
                email=f"{username.lower()}@example.org",
                password=PASSWORD,
                first_name="Jean",
                last_name="Dupont",
            )

    async def last_link(self, address: str) -> str:
        """The token of the newest mail recorded for `address`, unsealed."""
        async with self.sessions.begin() as session:
            rows = (
                await session.execute(select(outbox.c.argument).order_by(outbox.c.created_at))
            ).scalars()
            bodies = [
                unseal(row["sealed_body"], self.settings.mail_sealing_key)
                for row in rows
                if address in row["to"]
            ]
        match = _TOKEN.search(bodies[-1])
        assert match is not None
        return match.group(1)

    async def login(
        self,
        username: str,
        password: str,
        now: datetime,
        *,
        client_ip: str = "",
        device_token: str = "",
    ) -> object:
        async with self.sessions.begin() as session:
            return await tokens.login(
                session=session,
                settings=self.settings,
                passwords=self.passwords,
                keyring=self.keyring,
                now=now,
                username=username,
                password=password,
                client_ip=client_ip,
                device_token=device_token,
            )


@pytest.fixture(scope="module")
async def world(pg: DatabaseServer) -> AsyncIterator[World]:
    url = await pg.migrated_database(SPEC.migrations_dir, "identity_domain")
    engine = create_engine(url)
    sessions = create_session_factory(engine)
    settings = IdentitySettings(
        database_url=url,
        mail_sealing_key=new_sealing_key(),
        service_clients=f"alpha={'a' * 24},beta={'b' * 24}",
    )
    # Cheaper hashes: these tests are about rules, not about argon2's cost.
    passwords = Passwords(memory_cost_kib=1024, time_cost=1, parallelism=1)
    async with sessions.begin() as session:
        keyring = await startup.bootstrap(
            session=session, settings=settings, passwords=passwords, now=T0
        )
        operator = Organisation(
            id=uuid.uuid4(), kind="operator", name="Ops", code=None, created_at=T0
        )
        association = Organisation(
            id=uuid.uuid4(), kind="association", name="Asso", code="83", created_at=T0
        )
        session.add_all([operator, association])
    yield World(sessions, settings, passwords, operator, association, keyring)
    await engine.dispose()


# --- links --------------------------------------------------------------------------------------


async def test_verification_link_lives_exactly_its_ttl(world: World) -> None:
    for offset, ok in (
        (timedelta(hours=48) - timedelta(seconds=1), True),
        (timedelta(hours=48), False),
    ):
        name = unique("ttl.")
        await world.register(name)
        token = await world.last_link(f"{name}@example.org")
        async with world.sessions.begin() as session:
            if ok:
                user = await registration.verify_email(
                    session=session, now=T0 + offset, token=token
                )
                assert user.email_verified
            else:
                with pytest.raises(FailedPrecondition, match="expired"):
                    await registration.verify_email(session=session, now=T0 + offset, token=token)


async def test_reset_link_lives_one_hour(world: World) -> None:
    name = unique("reset.")
    await world.register(name)
    async with world.sessions.begin() as session:
        await credentials.request_password_reset(
            session=session, settings=world.settings, now=T0, login=name
        )
    token = await world.last_link(f"{name}@example.org")
    async with world.sessions.begin() as session:
        with pytest.raises(FailedPrecondition, match="expired"):
            await credentials.reset_password(
                session=session,
                settings=world.settings,
                passwords=world.passwords,
                now=T0 + timedelta(hours=1),
                token=token,
                new_password="another long passphrase",
            )


async def test_public_link_requests_respect_the_cooldown(world: World) -> None:
    name = unique("cool.")
    await world.register(name)  # sends the first verification link at T0
    address = f"{name}@example.org"
    first = await world.last_link(address)
    async with world.sessions.begin() as session:
        await registration.resend_verification(
            session=session, settings=world.settings, now=T0 + timedelta(seconds=30), username=name
        )
    assert await world.last_link(address) == first
    async with world.sessions.begin() as session:
        await registration.resend_verification(
            session=session, settings=world.settings, now=T0 + timedelta(seconds=61), username=name
        )
    assert await world.last_link(address) != first


# --- lockout --------------------------------------------------------------------------------------


async def test_a_quiet_window_after_the_last_failure_forgives(world: World) -> None:
    name = unique("win.")
    await world.register(name)
    threshold = world.settings.lockout_threshold
    for n in range(threshold - 1):
        result = await world.login(name, "wrong password here", T0 + timedelta(seconds=n))
        assert isinstance(result, tokens.Refusal) and isinstance(result.error, Unauthenticated)
    last = T0 + timedelta(seconds=threshold - 2)
    almost = last + timedelta(seconds=world.settings.lockout_window_seconds - 1)
    result = await world.login(name, "wrong password here", almost)  # still counts: locks
    assert isinstance(result, tokens.Refusal) and isinstance(result.error, Unauthenticated)
    assert isinstance(
        (await world.login(name, PASSWORD, almost)), tokens.Refusal
    )  # the threshold was reached
    name = unique("win.")
    await world.register(name)
    for n in range(threshold - 1):
        await world.login(name, "wrong password here", T0 + timedelta(seconds=n))
    later = last + timedelta(seconds=world.settings.lockout_window_seconds)
    result = await world.login(name, "wrong password here", later)  # forgiven: count is 1
    assert isinstance(result, tokens.Refusal) and isinstance(result.error, Unauthenticated)
    assert isinstance(await world.login(name, PASSWORD, later), tokens.IssuedTokens)


async def test_lock_lasts_lockout_seconds(world: World) -> None:
    name = unique("lock.")
    await world.register(name)
    for _ in range(world.settings.lockout_threshold):
        await world.login(name, "wrong password here", T0)
    almost = T0 + timedelta(seconds=world.settings.lockout_seconds - 1)
    locked = await world.login(name, PASSWORD, almost)
    assert isinstance(locked, tokens.Refusal) and isinstance(locked.error, ResourceExhausted)
    assert locked.error.retry_after_seconds == 1
    unlocked = T0 + timedelta(seconds=world.settings.lockout_seconds)
    assert isinstance(await world.login(name, PASSWORD, unlocked), tokens.IssuedTokens)


# --- signing keys and refresh tokens ------------------------------------------------------------


async def test_keys_rotate_by_age_and_stay_published_while_their_tokens_live(
    world: World,
) -> None:
    async def published(now: datetime) -> set[str]:
        async with world.sessions.begin() as session:
            return {
                k.kid
                for k in await signing_keys.published_keys(
                    session=session, settings=world.settings, now=now
                )
            }

    async def signing(now: datetime) -> str:
        async with world.sessions.begin() as session:
            key = await signing_keys.current_signing_key(
                session=session, settings=world.settings, now=now
            )
            return key.kid

    start = T0 + timedelta(days=100)  # far from the other tests' keys
    async with world.sessions.begin() as session:
        await session.execute(update(SigningKey).values(created_at=start - timedelta(days=365)))
    first = await signing(start)  # every key is too old: a new one
    assert await signing(start + timedelta(hours=23)) == first
    rotated_at = start + timedelta(hours=24, seconds=1)
    second = await signing(rotated_at)
    assert second != first
    grace = world.settings.longest_token_ttl_seconds + signing_keys.JWKS_GRACE_SECONDS
    assert {first, second} <= await published(rotated_at + timedelta(seconds=grace - 1))
    assert await published(rotated_at + timedelta(seconds=grace + 1)) == {second}


async def test_concurrent_first_issues_create_one_key(world: World) -> None:
    moment = T0 + timedelta(days=1000)

    async def sign() -> str:
        async with world.sessions.begin() as session:
            key = await signing_keys.current_signing_key(
                session=session, settings=world.settings, now=moment
            )
            return key.kid

    kids = await asyncio.gather(*(sign() for _ in range(4)))
    assert len(set(kids)) == 1


async def test_refresh_token_lives_its_ttl(world: World) -> None:
    name = unique("refresh.")
    await world.register(name)
    issued = await world.login(name, PASSWORD, T0)
    assert isinstance(issued, tokens.IssuedTokens)
    ttl = timedelta(seconds=world.settings.refresh_token_ttl_seconds)
    async with world.sessions.begin() as session:
        expired = await tokens.refresh(
            session=session,
            settings=world.settings,
            now=T0 + ttl,
            refresh_token=issued.refresh_token,
        )
    assert isinstance(expired, tokens.Refusal) and expired.error.reason == "refresh_token_expired"
    async with world.sessions.begin() as session:
        fresh = await tokens.refresh(
            session=session,
            settings=world.settings,
            now=T0 + ttl - timedelta(seconds=1),
            refresh_token=issued.refresh_token,
        )
    assert isinstance(fresh, tokens.IssuedTokens)


# --- concurrency, bootstrap, last admin ---------------------------------------------------------


async def test_a_registration_that_loses_the_race_gets_already_exists(world: World) -> None:
    """The second insert waits on the first's uncommitted unique entry, then fails: mapped."""
    name = unique("Race.")
    first = world.sessions()
    await first.begin()
    await registration.register(
        session=first,
        settings=world.settings,
        passwords=world.passwords,
        now=T0,
        organisation_id=str(world.association.id),
        username=name,
        email=f"{name}@example.org",
        password=PASSWORD,
        first_name="A",
        last_name="B",
    )
    second = asyncio.create_task(world.register(name.upper()))

    async def second_waits_on_the_index() -> bool:
        async with world.sessions() as probe:
            waiting = await probe.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'"
                )
            )
        return bool(waiting)

    await wait_until(
        second_waits_on_the_index,
        what="the second registration to pass the pre-check and wait on the unique index",
        within=5,
    )
    assert not second.done()
    await first.commit()
    await first.close()
    with pytest.raises(AlreadyExists) as raised:
        await second
    assert raised.value.violations == [("username", "this username is already taken")]


async def test_bootstrap_is_idempotent_and_syncs_service_clients(world: World) -> None:
    settings = world.settings.model_copy(
        update={
            "service_clients": f"beta={'c' * 24},gamma={'g' * 24}",
            "bootstrap_admin_username": "First.Admin",
            "bootstrap_admin_password": "first admin passphrase",
        }
    )
    for _ in range(2):
        async with world.sessions.begin() as session:
            await startup.bootstrap(
                session=session, settings=settings, passwords=world.passwords, now=T0
            )
    async with world.sessions.begin() as session:
        clients = set((await session.execute(select(ServiceClient.client_id))).scalars())
        assert clients == {"beta", "gamma"}
        admins = (
            (await session.execute(select(User).where(func.lower(User.username) == "first.admin")))
            .scalars()
            .all()
        )
        assert len(admins) == 1 and admins[0].status == UserStatus.ACTIVE
        assert {m.role for m in admins[0].memberships} == {"ops_admin", "support_agent"}
        operators = await session.scalar(
            select(func.count()).select_from(Organisation).where(Organisation.code == "ops")
        )
        assert operators == 1
        token, _ = await service_tokens.issue_service_token(
            session=session, settings=settings, now=T0, client_id="beta", client_secret="c" * 24
        )
        assert token
        with pytest.raises(Unauthenticated):
            await service_tokens.issue_service_token(
                session=session,
                settings=settings,
                now=T0,
                client_id="alpha",
                client_secret="a" * 24,
            )


async def test_the_last_ops_admin_keeps_the_role(world: World) -> None:
    async with world.sessions.begin() as session:
        holders = (
            (await session.execute(select(Membership).where(Membership.role == roles.OPS_ADMIN)))
            .scalars()
            .all()
        )
        ids = sorted({m.user_id for m in holders})
    actor = world.ops_admin()
    for user_id in ids[:-1]:
        async with world.sessions.begin() as session:
            await organisations.revoke_role(
                session=session,
                actor=actor,
                now=T0,
                user_id=str(user_id),
                organisation_id="",
                role="ops_admin",
            )
    async with world.sessions.begin() as session:
        with pytest.raises(FailedPrecondition, match="last ops_admin"):
            await organisations.revoke_role(
                session=session,
                actor=actor,
                now=T0,
                user_id=str(ids[-1]),
                organisation_id="",
                role="ops_admin",
            )


class _NotAsked:
    """A fee ledger for refusals decided before the fee matters: asking it is the bug."""

    async def prepare(self) -> None:
        return None

    async def is_fee_paid(
        self, organisation_id: uuid.UUID, user_id: uuid.UUID
    ) -> validation_queue.FeeStatus:
        raise AssertionError("the fee was asked although the request was already refused")


NOT_ASKED = _NotAsked()


async def test_domain_authorisation_without_grpc(world: World) -> None:
    user = await world.register(unique("authz."))
    stranger = Principal(
        subject=str(uuid.uuid4()),
        kind="user",
        token="",
        memberships={str(uuid.uuid4()): frozenset({"association_admin"})},
    )
    colleague = Principal(
        subject=str(uuid.uuid4()),
        kind="user",
        token="",
        memberships={str(world.association.id): frozenset({"member"})},
    )
    service = Principal(subject="svc:gateway", kind="service", token="")
    async with world.sessions.begin() as session:
        with pytest.raises(NotFound):
            await validation_queue.validate_account(
                session=session,
                settings=world.settings,
                actor=stranger,
                now=T0,
                user_id=str(user.id),
                fees=NOT_ASKED,
            )
        with pytest.raises(PermissionDenied):
            await validation_queue.validate_account(
                session=session,
                settings=world.settings,
                actor=colleague,
                now=T0,
                user_id=str(user.id),
                fees=NOT_ASKED,
            )
        with pytest.raises(PermissionDenied):
            await validation_queue.validate_account(
                session=session,
                settings=world.settings,
                actor=service,
                now=T0,
                user_id=str(user.id),
                fees=NOT_ASKED,
            )
        assert (
            await admin.get_user(session=session, actor=service, user_id=str(user.id))
        ).id == user.id
        with pytest.raises(Unauthenticated):
            await admin.get_user(session=session, actor=None, user_id=str(user.id))


async def test_association_kind_list_is_complete() -> None:
    assert set(roles.ROLES_BY_KIND) == set(OrganisationKind)
    assert set(roles.ADMIN_ROLES_BY_KIND) == set(OrganisationKind)
    assert {
        "business_account_manager",
        "program_account_manager",
        "editor",
        "read_only",
        "association_admin",
        "member",
        "partner_manager",
        "workshop_owner",
        "customer_user",
        "support_agent",
        "ops_admin",
    } == roles.ALL_ROLES
