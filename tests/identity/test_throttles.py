"""Sign-in throttles and device cookies (docs/identity.md, "Sign-in throttles"), called on a
session with time under the test's control: the lock-out attack of issue #26 replayed, growing
waits, the per-address brake, failures-only counting, the lockout mail, the shared GCRA brake,
the purge, and the statements a sign-in costs.

A database of its own, with the real defaults (5 failures, 60 s doubling to an hour, 20 per
address): unlike the package's gRPC identity, nothing here raises the thresholds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.identity.domain import login_reads, startup, throttles, tokens
from services.identity.domain.common import sha256_hex
from services.identity.domain.devices import Keyring, issue_device_token
from services.identity.driver import Driver
from services.identity.models import (
    AuditEvent,
    LoginFailures,
    Membership,
    Organisation,
    RateLimit,
    RefreshToken,
    User,
    UserStatus,
    WebauthnChallenge,
    outbox,
)
from services.identity.passwords import Passwords
from services.identity.servicer import SPEC
from services.identity.settings import IdentitySettings
from services.kit.db import create_engine, create_session_factory
from services.kit.errors import PermissionDenied, ResourceExhausted, Unauthenticated
from services.kit.grpcserver import is_unavailable
from services.kit.mail import new_sealing_key, unseal
from services.kit.testing import DatabaseServer, wait_until
from tests.identity.harness import PASSWORD, unique

T0 = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
WRONG = "wrong password here"
HOME = "203.0.113.10"  # the account owner's address


@dataclass
class World:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    settings: IdentitySettings
    passwords: Passwords
    keyring: Keyring
    organisation: Organisation

    async def account(self, *roles: str, email: bool = True) -> User:
        username = unique("dev.")
        user = User(
            id=uuid.uuid4(),
            organisation_id=self.organisation.id,
            username=username,
            email=f"{username}@example.org" if email else None,
            email_verified=email,
            password_hash=await self.passwords.hash(PASSWORD),
            status=UserStatus.ACTIVE,
            first_name="Anne",
            last_name="Martin",
            created_at=T0,
            updated_at=T0,
            memberships=[
                Membership(organisation_id=self.organisation.id, role=role, created_at=T0)
                for role in roles
            ],
        )
        async with self.sessions.begin() as session:
            session.add(user)
        return user

    async def login(
        self,
        username: str,
        password: str = PASSWORD,
        *,
        now: datetime = T0,
        client_ip: str = HOME,
        device: str = "",
    ) -> Any:
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
                device_token=device,
            )

    async def mails_to(self, address: str) -> list[str]:
        async with self.sessions.begin() as session:
            rows = (await session.execute(select(outbox.c.argument))).scalars().all()
        return [
            unseal(row["sealed_body"], self.settings.mail_sealing_key)
            for row in rows
            if address in row["to"]
        ]


@pytest.fixture(scope="module")
async def world(pg: DatabaseServer) -> AsyncIterator[World]:
    url = await pg.migrated_database(SPEC.migrations_dir, "identity_throttles")
    engine = create_engine(url)
    sessions = create_session_factory(engine)
    settings = IdentitySettings(database_url=url, mail_sealing_key=new_sealing_key())
    passwords = Passwords(memory_cost_kib=1024, time_cost=1, parallelism=1)
    async with sessions.begin() as session:
        keyring = await startup.bootstrap(
            session=session, settings=settings, passwords=passwords, now=T0
        )
        organisation = Organisation(
            id=uuid.uuid4(), kind="association", name="Asso", code=None, created_at=T0
        )
        session.add(organisation)
    yield World(engine, sessions, settings, passwords, keyring, organisation)
    await engine.dispose()


def attacker(n: int) -> str:
    """A different address for each attempt, as a botnet sends them."""
    return f"198.51.100.{n % 250 + 1}"


def is_locked(result: object) -> int:
    """The wait of a lock refusal, 0 for anything else."""
    if isinstance(result, tokens.Refusal) and isinstance(result.error, ResourceExhausted):
        return result.error.retry_after_seconds or 0
    return 0


def is_wrong(result: object) -> bool:
    return isinstance(result, tokens.Refusal) and isinstance(result.error, Unauthenticated)


# --- the attack of issue #26, replayed -----------------------------------------------------------


async def test_failures_from_elsewhere_never_lock_the_owners_known_device(world: World) -> None:
    owner = await world.account("member")
    signed_in = await world.login(owner.username)
    assert isinstance(signed_in, tokens.IssuedTokens) and signed_in.device_token
    device = signed_in.device_token
    # Five failures from other addresses lock the username for unknown devices...
    for n in range(world.settings.lockout_threshold):
        assert is_wrong(await world.login(owner.username, WRONG, client_ip=attacker(n)))
    assert is_locked(await world.login(owner.username, client_ip=attacker(99)))
    assert is_locked(await world.login(owner.username))  # the owner on a new device, too
    # ... never the owner's known device, with the right password, at once.
    again = await world.login(owner.username, device=device)
    assert isinstance(again, tokens.IssuedTokens)
    assert again.device_token.split(".")[3] == device.split(".")[3]  # the same device, renewed
    # And "five more every 15 minutes" (here: many more, over hours) still do not keep it out.
    now = T0
    for round_ in range(8):
        now += timedelta(minutes=15)
        for n in range(5):
            await world.login(owner.username, WRONG, now=now, client_ip=attacker(round_ * 5 + n))
        assert isinstance(
            await world.login(owner.username, now=now, device=again.device_token),
            tokens.IssuedTokens,
        )


async def test_a_known_devices_own_failures_lock_only_that_device(world: World) -> None:
    owner = await world.account("member")
    laptop = (await world.login(owner.username)).device_token
    phone = (await world.login(owner.username)).device_token
    for _ in range(world.settings.lockout_threshold):
        assert is_wrong(await world.login(owner.username, WRONG, device=laptop))
    assert is_locked(await world.login(owner.username, device=laptop))
    assert isinstance(await world.login(owner.username, device=phone), tokens.IssuedTokens)
    # Nor did the laptop's failures count against unknown devices.
    assert isinstance(await world.login(owner.username), tokens.IssuedTokens)


async def test_a_device_cookie_of_another_account_or_forged_counts_as_unknown(
    world: World,
) -> None:
    owner, other = await world.account("member"), await world.account("member")
    others_device = (await world.login(other.username)).device_token
    forged = issue_device_token(
        Keyring(signing_kid=world.keyring.signing_kid, secrets={world.keyring.signing_kid: b"x"}),
        user_id=owner.id,
        now=T0,
    )
    for n in range(world.settings.lockout_threshold):
        await world.login(owner.username, WRONG, client_ip=attacker(n))
    for token in (others_device, forged, "d1.garbage", ""):
        assert is_locked(await world.login(owner.username, device=token)), token
    # An expired cookie is unknown as well.
    old = issue_device_token(world.keyring, user_id=owner.id, now=T0 - timedelta(days=400))
    assert is_locked(await world.login(owner.username, device=old))


async def test_a_lock_answers_the_same_for_an_unknown_username(world: World) -> None:
    owner = await world.account("member")
    ghost = unique("ghost.")
    for username in (owner.username, ghost):
        for n in range(world.settings.lockout_threshold):
            assert is_wrong(await world.login(username, WRONG, client_ip=attacker(n)))
    known = await world.login(owner.username)
    unknown = await world.login(ghost)
    assert isinstance(known, tokens.Refusal) and isinstance(unknown, tokens.Refusal)
    assert type(known.error) is type(unknown.error) is ResourceExhausted
    assert known.error.message == unknown.error.message
    assert known.error.reason == unknown.error.reason
    assert is_locked(known) == is_locked(unknown) == world.settings.lockout_seconds


async def test_waits_grow_with_each_failure_up_to_the_ceiling(world: World) -> None:
    owner = await world.account("member")
    settings = world.settings
    now = T0
    for n in range(settings.lockout_threshold):
        await world.login(owner.username, WRONG, now=now, client_ip=attacker(n))
    waits = []
    for _ in range(8):
        wait = is_locked(await world.login(owner.username, now=now))
        waits.append(wait)
        now += timedelta(seconds=wait)  # the lock is over: one more failure
        assert is_wrong(await world.login(owner.username, WRONG, now=now, client_ip=attacker(9)))
    assert waits == [
        min(settings.lockout_seconds * 2**k, settings.lockout_max_seconds) for k in range(8)
    ]
    # A quiet window after the last lock ends forgives the series.
    now += timedelta(seconds=settings.lockout_max_seconds + settings.lockout_window_seconds)
    assert isinstance(await world.login(owner.username, now=now), tokens.IssuedTokens)


async def test_an_address_that_fails_across_usernames_waits_but_known_devices_do_not(
    world: World,
) -> None:
    owner = await world.account("member")
    device = (await world.login(owner.username, client_ip="192.0.2.77")).device_token
    stuffing = "192.0.2.66"
    for n in range(world.settings.address_lockout_threshold):
        assert is_wrong(await world.login(unique("victim."), WRONG, client_ip=stuffing)), n
    assert is_locked(await world.login(owner.username, client_ip=stuffing))
    # A known device behind that address (the same office) still signs in; others elsewhere too.
    assert isinstance(
        await world.login(owner.username, client_ip=stuffing, device=device), tokens.IssuedTokens
    )
    assert isinstance(
        await world.login(owner.username, client_ip="192.0.2.78"), tokens.IssuedTokens
    )


async def test_successes_are_never_counted(world: World) -> None:
    """Ten (here: fifty) colleagues behind one office address signing in at 9:00."""
    office = "192.0.2.200"
    colleagues = [await world.account("member") for _ in range(5)]
    for _ in range(10):
        for colleague in colleagues:
            result = await world.login(colleague.username, client_ip=office)
            assert isinstance(result, tokens.IssuedTokens)
    async with world.sessions.begin() as session:
        assert await session.get(LoginFailures, throttles.ADDRESS + office) is None


async def test_ipv6_failures_count_per_64(world: World) -> None:
    assert throttles.address_key("2001:db8:1:2:aaaa::1") == throttles.address_key(
        "2001:db8:1:2:bbbb::2"
    )
    assert throttles.address_key("2001:db8:1:3::1") != throttles.address_key("2001:db8:1:2::1")
    assert throttles.address_key("::ffff:198.51.100.9") == "address:198.51.100.9"
    assert throttles.address_key("") is None


async def test_the_first_lock_mails_the_owner_once(world: World) -> None:
    owner = await world.account("member")
    assert owner.email is not None
    for n in range(world.settings.lockout_threshold + 3):
        await world.login(
            owner.username, WRONG, client_ip=attacker(n), now=T0 + timedelta(minutes=10 * n)
        )
    [mail] = await world.mails_to(owner.email)
    assert f"« {owner.username} »" in mail and "5 fois" in mail
    assert "ne sont pas bloqués" in mail and "/forgot-password" in mail
    async with world.sessions.begin() as session:
        events = (
            (await session.execute(select(AuditEvent.event).where(AuditEvent.user_id == owner.id)))
            .scalars()
            .all()
        )
    assert events.count("login.locked") == 1
    assert events.count("login.failed") == world.settings.lockout_threshold + 3


async def test_a_disabled_account_with_the_right_password_is_told_so(world: World) -> None:
    owner = await world.account("member")
    async with world.sessions.begin() as session:
        user = await session.get(User, owner.id)
        assert user is not None
        user.status = UserStatus.DISABLED
    refused = await world.login(owner.username)
    assert isinstance(refused, tokens.Refusal) and isinstance(refused.error, PermissionDenied)


# --- the shared per-address brake (GCRA) ---------------------------------------------------------


async def test_the_route_brake_allows_its_burst_then_its_rate(world: World) -> None:
    settings = world.settings.model_copy(
        update={"auth_rate_limit_per_minute": 6, "auth_rate_limit_burst": 3}
    )

    async def take(now: datetime, address: str = "198.18.0.1", scope: str = "POST /x") -> int:
        async with world.sessions.begin() as session:
            return await throttles.take_attempt(
                session, settings=settings, now=now, scope=scope, client_ip=address
            )

    assert [await take(T0) for _ in range(3)] == [0, 0, 0]
    assert await take(T0) == 10  # one request every 10 s once the burst is spent
    assert await take(T0 + timedelta(seconds=9)) == 1
    assert await take(T0 + timedelta(seconds=10)) == 0
    # Another address or another route has its own budget.
    assert await take(T0, address="198.18.0.2") == 0
    assert await take(T0, scope="POST /y") == 0
    off = settings.model_copy(update={"auth_rate_limit_per_minute": 0})
    async with world.sessions.begin() as session:
        for _ in range(10):
            assert (
                await throttles.take_attempt(
                    session, settings=off, now=T0, scope="POST /x", client_ip="198.18.0.1"
                )
                == 0
            )


async def test_expired_rows_are_purged(world: World) -> None:
    owner = await world.account("member")
    await world.login(owner.username, WRONG, client_ip="198.18.5.5")
    async with world.sessions.begin() as session:
        await throttles.take_attempt(
            session, settings=world.settings, now=T0, scope="POST /p", client_ip="198.18.5.5"
        )
        session.add(
            WebauthnChallenge(
                challenge_hash=uuid.uuid4().hex, purpose="sign_in", user_id=None, expires_at=T0
            )
        )
    later = T0 + timedelta(days=2)
    async with world.sessions.begin() as session:
        assert await throttles.purge(session, now=later) >= 3
        for table in (LoginFailures, RateLimit, WebauthnChallenge):
            assert await session.scalar(select(func.count()).select_from(table)) == 0


# --- what a sign-in costs ------------------------------------------------------------------------


async def test_a_sign_in_is_one_read_and_one_write(world: World) -> None:
    """The throttle and device checks add no round trip: the read before the hash and the write
    after it are one statement each, on asyncpg itself (services/identity/driver.py) with no
    BEGIN or COMMIT, and the write records what a success must: the refresh token, the audit
    row and the forgiven counter."""
    owner = await world.account("member")
    device = (await world.login(owner.username)).device_token
    await world.login(owner.username, WRONG, device=device)  # a failure the success forgives
    driver = Driver(world.engine)
    statements: list[str] = []

    def seen(query: Any) -> None:
        # asyncpg's own type introspection, once per connection and type (a fresh pool's first
        # sign-in, when this test runs alone): not a round trip of the sign-in's.
        if "typeinfo_tree" in query.query or "'jit'" in query.query:
            return
        statements.append(query.query.split(None, 1)[0])

    async with driver.rows() as rows:
        rows.connection.add_query_logger(seen)
        try:
            state = await tokens.start_login(
                rows=rows,
                settings=world.settings,
                keyring=world.keyring,
                now=T0,
                username=owner.username,
                password=PASSWORD,
                client_ip=HOME,
                device_token=device,
            )
        finally:
            rows.connection.remove_query_logger(seen)
    assert isinstance(state, login_reads.LoginState) and state.trusted and state.to_forgive
    checked = await tokens.check_password(passwords=world.passwords, state=state, password=PASSWORD)
    assert tokens.signs_in_directly(settings=world.settings, now=T0, state=state, checked=checked)
    async with driver.rows() as rows:
        rows.connection.add_query_logger(seen)
        try:
            result = await tokens.sign_in_directly(
                rows=rows,
                settings=world.settings,
                keyring=world.keyring,
                now=T0,
                state=state,
                checked=checked,
            )
        finally:
            rows.connection.remove_query_logger(seen)
    assert isinstance(result, tokens.IssuedTokens)
    await asyncio.sleep(0)  # asyncpg calls its query loggers soon after each statement
    assert statements == ["SELECT", "WITH"]
    async with world.sessions.begin() as session:
        issued = await session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == sha256_hex(result.refresh_token))
        )
        assert issued is not None and issued.user_id == owner.id and issued.amr == "pwd"
        audited = (
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.user_id == owner.id, AuditEvent.event == "login.succeeded")
                .order_by(AuditEvent.time.desc())
            )
        ).first()
        assert audited is not None
        assert audited.detail == {"client_ip": HOME, "amr": "pwd", "device": "known"}
        assert await session.get(LoginFailures, state.to_forgive[0]) is None


async def test_only_a_plain_success_skips_the_session(world: World) -> None:
    """A wrong password, a disabled account, an account with a second factor and a signing key
    past its rotation all go through `finish_login` (a transaction, or no tokens at all); the
    direct write refuses them."""
    owner = await world.account("member")

    async def decided(
        *,
        password: str = PASSWORD,
        status: str = UserStatus.ACTIVE,
        totp: bool = False,
        now: datetime = T0,
    ) -> tuple[bool, tokens.Checked, login_reads.LoginState, datetime]:
        async with world.sessions.begin() as session:
            user = await session.get(User, owner.id)
            assert user is not None
            user.status = status
        async with Driver(world.engine).rows() as rows:
            state = await tokens.start_login(
                rows=rows,
                settings=world.settings,
                keyring=world.keyring,
                now=now,
                username=owner.username,
                password=password,
                client_ip=HOME,
            )
        assert isinstance(state, login_reads.LoginState) and state.account is not None
        if totp:
            state = dataclasses.replace(
                state, account=dataclasses.replace(state.account, has_totp=True)
            )
        checked = await tokens.check_password(
            passwords=world.passwords, state=state, password=password
        )
        direct = tokens.signs_in_directly(
            settings=world.settings, now=now, state=state, checked=checked
        )
        return direct, checked, state, now

    assert (await decided())[0]
    assert (await decided(status=UserStatus.PENDING))[0]
    stale = T0 + timedelta(seconds=world.settings.signing_key_rotation_seconds + 1)
    for refused in (
        await decided(password=WRONG),
        await decided(status=UserStatus.DISABLED),
        await decided(totp=True),
        await decided(now=stale),
    ):
        direct, checked, state, now = refused
        assert not direct
        async with Driver(world.engine).rows() as rows:
            with pytest.raises(ValueError, match="finish_login"):
                await tokens.sign_in_directly(
                    rows=rows,
                    settings=world.settings,
                    keyring=world.keyring,
                    now=now,
                    state=state,
                    checked=checked,
                )
    async with world.sessions.begin() as session:
        user = await session.get(User, owner.id)
        assert user is not None
        user.status = UserStatus.ACTIVE


async def test_the_sign_in_read_is_planned_once(world: World) -> None:
    """PostgreSQL plans the read once and reuses that plan (a generic plan), instead of planning
    it again at every sign-in: with `LIMIT $n` its generic plan looked 17 times dearer and was
    never chosen, and planning cost more CPU than running it."""
    owner = await world.account("member")
    async with Driver(world.engine).rows() as rows:
        for _ in range(12):
            state = await tokens.start_login(
                rows=rows,
                settings=world.settings,
                keyring=world.keyring,
                now=T0,
                username=owner.username,
                password=PASSWORD,
                client_ip=HOME,
            )
            assert isinstance(state, login_reads.LoginState) and state.account is not None
        plans = await rows.connection.fetchrow(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE 'SELECT users.id AS user_id,%login_failures AS f2%'"
        )
    assert plans is not None
    # PostgreSQL tries five custom plans before it compares them with the generic one.
    assert plans["generic_plans"] >= 6 and plans["custom_plans"] <= 5


async def test_a_statement_cancelled_midway_never_returns_its_connection(world: World) -> None:
    """A sign-in cancelled while its statement runs (the caller gave up) leaves the connection
    in an unknown state: it is closed, not handed to the next sign-in."""
    driver = Driver(world.engine)
    held: list[Any] = []

    async def sleeping() -> None:
        async with driver.rows() as rows:
            held.append(rows.connection)
            await rows.one(select(func.pg_sleep(30)), {})

    task = asyncio.create_task(sleeping())

    async def sleeping_in_postgres() -> bool:
        async with world.sessions() as session:
            found = await session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE state = 'active' AND query LIKE 'SELECT pg_sleep%'"
                )
            )
        return bool(found)

    await wait_until(sleeping_in_postgres, what="the statement running in PostgreSQL")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert held[0].is_closed()
    async with driver.rows() as rows:
        assert rows.connection is not held[0]
        assert await rows.connection.fetchval("SELECT 1") == 1


async def test_a_connection_the_server_ended_answers_unavailable_and_is_dropped(
    world: World,
) -> None:
    """The server ending a connection while a sign-in holds it (a restart, a terminated
    backend) is an error the service answers UNAVAILABLE with (not INTERNAL), and the next
    sign-in gets a working connection."""
    driver = Driver(world.engine)
    with pytest.raises(Exception) as raised:
        async with driver.rows() as rows:
            victim = rows.connection
            backend = await victim.fetchval("SELECT pg_backend_pid()")
            async with world.sessions() as session:
                await session.execute(select(func.pg_terminate_backend(backend)))
            await rows.one(select(literal_column("1").label("one")), {})
    assert is_unavailable(raised.value)
    assert victim.is_closed()
    async with driver.rows() as rows:
        assert rows.connection is not victim
        assert (await rows.one(select(literal_column("1").label("one")), {}))["one"] == 1
