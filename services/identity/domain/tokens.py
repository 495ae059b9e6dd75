"""Tokens: sign-in (password, second factor, passkey) under the shared throttles, refresh
rotation, logout, service tokens.

A password sign-in is two steps around argon2id, so that no database connection waits on the
hash: `start_login` reads everything the decision needs in **one** statement (the account, its
roles and second factors, its organisation's policy, the failure counters that apply, the newest
signing key) and refuses a locked attempt before any hashing; after `check_password`, a plain
success (`signs_in_directly`) is recorded by `sign_in_directly` in **one** statement (refresh
token, audit row, and only when there is something to forgive, the counters), and anything else
by `finish_login` in a session: on failure the counters, the audit and, the first time a
username locks, a mail to its owner. The two statements go through `Rows`: on asyncpg itself on
the password path (`services/identity/driver.py`), in the caller's session elsewhere.

Which counters apply (`domain/throttles.py`): a device whose cookie says it signed in to this
account answers only to its own counter, so failures from elsewhere never lock it; any other
device answers to the username's counter and to its address's. Every lock answers the same
RESOURCE_EXHAUSTED with a wait, whether the username exists or not.

Refusals that must keep a record (a failed sign-in, a reused refresh token) are *returned* as a
`Refusal` for the servicer to raise after the commit, instead of raising inside the transaction.
"""

from __future__ import annotations

import functools
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Insert,
    String,
    any_,
    bindparam,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.domain import passkeys, second_factor, signing_keys, throttles
from services.identity.domain.common import (
    audit,
    check_token_field,
    sha256_hex,
)
from services.identity.domain.devices import Device, Keyring, issue_device_token, read_device_token
from services.identity.domain.lockout_mail import mail_lockout
from services.identity.domain.login_reads import (
    BY_ID,
    BY_USERNAME,
    Account,
    LoginState,
    SigningKeyRow,
    account_of,
    read_login_state,
    signing_of,
)
from services.identity.driver import Rows, SessionRows
from services.identity.models import (
    AuditEvent,
    Base,
    LoginFailures,
    RefreshToken,
    User,
    UserStatus,
)
from services.identity.passwords import Passwords
from services.identity.settings import IdentitySettings
from services.kit.errors import (
    DomainError,
    PermissionDenied,
    Unauthenticated,
    Validator,
)

# The tables a sign-in writes, as Core tables (statements built once; login_reads reads them).
_tables = Base.metadata.tables
_users = _tables[User.__tablename__]
_failures = _tables[LoginFailures.__tablename__]
_refresh = _tables[RefreshToken.__tablename__]
_audit = _tables[AuditEvent.__tablename__]


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_in: int
    # The device cookie to set (renewed at each sign-in); empty for a refresh.
    device_token: str = ""


@dataclass(frozen=True)
class SecondFactorRequired:
    """The password was right; the sign-in completes with a second factor and this ticket."""

    ticket: str
    methods: list[str]
    expires_in: int


@dataclass(frozen=True)
class Refusal:
    """A refused request whose bookkeeping must be committed before `error` is raised.

    `throttled`: the brake that refused it (`account`, `device`, `address`, `factor`), counted in
    `guichet_identity_login_throttled_total{scope}`; empty for every other refusal."""

    error: DomainError
    throttled: str = ""


INVALID_CREDENTIALS = "invalid username or password"
INVALID_REFRESH = "invalid refresh token"
SECOND_FACTOR_INVALID = "this second factor was not accepted"


def _check_login_fields(username: str, password: str, client_ip: str) -> None:
    v = Validator()
    v.require("username", username)
    v.check(
        len(username) <= 64, "username", "must be at most 64 characters", code="string_too_long"
    )
    v.require("password", password)
    v.check(len(password) <= 1024, "password", "is too long")
    v.check(len(client_ip) <= 64, "client_ip", "must be at most 64 characters")
    v.raise_if_any()


async def start_login(
    *,
    rows: Rows,
    settings: IdentitySettings,
    keyring: Keyring,
    now: datetime,
    username: str,
    password: str,
    client_ip: str,
    device_token: str = "",
) -> LoginState | Refusal:
    """Reads what the decision needs (one statement) and refuses a locked attempt at once."""
    _check_login_fields(username, password, client_ip)
    user_key = throttles.USER + username.strip().lower()
    claimed = read_device_token(keyring, device_token, settings=settings, now=now)
    address = throttles.address_key(client_ip)
    counters = [user_key, claimed.throttle_key if claimed else "", address or ""]
    row, found = await read_login_state(rows, BY_USERNAME, username.strip().lower(), counters)
    (user_lock, user_failures), (device_lock, device_failures), (address_lock, _) = found
    account = account_of(row)
    device = claimed if claimed and account and claimed.user_id == account.id else None
    if device is not None:
        wait, scope = throttles.wait_seconds(device_lock, now), "device"
        to_forgive = (device.throttle_key,) if device_failures else ()
    else:
        user_wait = throttles.wait_seconds(user_lock, now)
        address_wait = throttles.wait_seconds(address_lock, now)
        wait = max(user_wait, address_wait)
        scope = "account" if user_wait >= address_wait else "address"
        to_forgive = (user_key,) if user_failures else ()
    if wait:
        return Refusal(throttles.locked(wait), throttled=scope)
    return LoginState(
        user_key=user_key,
        address_key=address,
        device=device,
        account=account,
        client_ip=client_ip,
        to_forgive=to_forgive,
        signing=signing_of(row),
    )


@dataclass(frozen=True)
class Checked:
    """The password's verdict, and a new hash when the stored one used older parameters."""

    ok: bool
    rehash: str | None = None


async def check_password(*, passwords: Passwords, state: LoginState, password: str) -> Checked:
    """argon2id, outside any session (unknown usernames verify against a decoy: same cost)."""
    account = state.account
    hashed = account.password_hash if account is not None else None
    ok = await passwords.verify(hashed, password)
    if not ok or account is None or hashed is None:
        return Checked(ok=False)
    rehash = await passwords.hash(password) if passwords.needs_rehash(hashed) else None
    return Checked(ok=True, rehash=rehash)


def signs_in_directly(
    *, settings: IdentitySettings, now: datetime, state: LoginState, checked: Checked
) -> bool:
    """Whether the checked password completes the sign-in with tokens and one statement, and
    nothing else: the right password of an account that is not disabled and has no second
    factor, and the signing key read with it still current. Then `sign_in_directly` records it
    in that one statement, atomic by itself, on the caller's connection and without BEGIN and
    COMMIT (two round trips of a login's four). Anything else goes through `finish_login` in a
    session: a failure writes counters, an audit row and maybe a mail in one transaction."""
    account = state.account
    return (
        checked.ok
        and account is not None
        and account.status != UserStatus.DISABLED
        and not account.has_second_factor
        and state.signing is not None
        and _current(settings, now, state.signing)
    )


async def sign_in_directly(
    *,
    rows: Rows,
    settings: IdentitySettings,
    keyring: Keyring,
    now: datetime,
    state: LoginState,
    checked: Checked,
) -> IssuedTokens:
    """Records a sign-in `signs_in_directly` accepted, in one statement."""
    account, key = state.account, state.signing
    if not signs_in_directly(settings=settings, now=now, state=state, checked=checked):
        raise ValueError("this sign-in needs finish_login")
    assert account is not None and key is not None  # what signs_in_directly checked
    return await _sign_in(
        rows,
        settings=settings,
        keyring=keyring,
        now=now,
        account=account,
        amr=(second_factor.PASSWORD_AMR,),
        device=state.device,
        client_ip=state.client_ip,
        forgive=state.to_forgive,
        key=key,
        rehash=checked.rehash,
    )


async def finish_login(
    *,
    session: AsyncSession,
    settings: IdentitySettings,
    keyring: Keyring,
    now: datetime,
    state: LoginState,
    checked: Checked,
) -> IssuedTokens | SecondFactorRequired | Refusal:
    """Records the outcome of a checked password."""
    account = state.account
    if not checked.ok or account is None:
        await _count_failure(
            session,
            settings=settings,
            now=now,
            keys=_failure_keys(state),
            account=account,
            client_ip=state.client_ip,
            reason="wrong_password",
        )
        return Refusal(Unauthenticated(INVALID_CREDENTIALS, reason="invalid_credentials"))
    if account.status == UserStatus.DISABLED:
        # Said only to whoever knows the password: it reveals nothing to a guesser.
        audit(
            session=session,
            now=now,
            event="login.failed",
            actor=None,
            user_id=account.id,
            client_ip=state.client_ip or None,
            reason="disabled",
        )
        return Refusal(PermissionDenied("this account is disabled", reason="account_disabled"))
    if account.has_second_factor:
        return SecondFactorRequired(
            ticket=second_factor.issue_ticket(keyring, user_id=account.id, now=now),
            methods=second_factor.methods_of(
                account.has_totp, account.has_passkey, account.has_recovery
            ),
            expires_in=settings.second_factor_ticket_ttl_seconds,
        )
    return await _sign_in(
        SessionRows(session),
        settings=settings,
        keyring=keyring,
        now=now,
        account=account,
        amr=(second_factor.PASSWORD_AMR,),
        device=state.device,
        client_ip=state.client_ip,
        forgive=state.to_forgive,
        key=await _signing_key(session, settings, now, state.signing),
        rehash=checked.rehash,
    )


async def login(
    *,
    session: AsyncSession,
    settings: IdentitySettings,
    passwords: Passwords,
    keyring: Keyring,
    now: datetime,
    username: str,
    password: str,
    client_ip: str,
    device_token: str = "",
) -> IssuedTokens | SecondFactorRequired | Refusal:
    """Both steps in one session (the servicer uses two: see the module's docstring)."""
    state = await start_login(
        rows=SessionRows(session),
        settings=settings,
        keyring=keyring,
        now=now,
        username=username,
        password=password,
        client_ip=client_ip,
        device_token=device_token,
    )
    if isinstance(state, Refusal):
        return state
    checked = await check_password(passwords=passwords, state=state, password=password)
    return await finish_login(
        session=session, settings=settings, keyring=keyring, now=now, state=state, checked=checked
    )


def _failure_keys(state: LoginState) -> list[str]:
    if state.device is not None:
        return [state.device.throttle_key]
    return [state.user_key, *([state.address_key] if state.address_key else [])]


async def _count_failure(
    session: AsyncSession,
    *,
    settings: IdentitySettings,
    now: datetime,
    keys: Iterable[str],
    account: Account | None,
    client_ip: str,
    reason: str,
) -> None:
    """Counts a failure under each key, audits it for an existing account, and mails the owner
    when it locked the account for unknown devices (the first lock of a series, not each one)."""
    locked_now = None
    for key in keys:
        counted = await throttles.record_failure(session, settings=settings, now=now, key=key)
        if not key.startswith(throttles.ADDRESS) and counted.just_locked(settings):
            locked_now = counted
    if account is None:
        return
    audit(
        session=session,
        now=now,
        event="login.failed",
        actor=None,
        user_id=account.id,
        client_ip=client_ip or None,
        reason=reason,
    )
    if locked_now is not None:
        audit(
            session=session,
            now=now,
            event="login.locked",
            actor=None,
            user_id=account.id,
            key=locked_now.key.split(":", 1)[0],
            until=locked_now.locked_until.isoformat() if locked_now.locked_until else None,
        )
        if account.email:
            await mail_lockout(session, settings, account, locked_now, now)


# --- issuing tokens ------------------------------------------------------------------------------


def _claims(account: Account, amr: Sequence[str], session_id: uuid.UUID) -> dict[str, Any]:
    """What an access token says about a user; roles only once an admin validated the account,
    and only those whose second-factor requirement this session met."""
    withheld = second_factor.withheld_roles(
        account.roles, organisation_requires=account.organisation_requires, amr=amr
    )
    memberships = account.memberships if account.status == UserStatus.ACTIVE else []
    claims: dict[str, Any] = {
        "sub": str(account.id),
        "typ": "user",
        "st": account.status,
        "name": account.username,
        "orgs": second_factor.claims_roles(memberships, withheld),
        "amr": list(amr),
        "sid": str(session_id),
    }
    if withheld and account.status == UserStatus.ACTIVE:
        claims["withheld"] = sorted(withheld)
    return claims


def _current(settings: IdentitySettings, now: datetime, key: SigningKeyRow | None) -> bool:
    oldest = now - timedelta(seconds=settings.signing_key_rotation_seconds)
    return key is not None and key.created_at > oldest


async def _signing_key(
    session: AsyncSession,
    settings: IdentitySettings,
    now: datetime,
    read: SigningKeyRow | None,
) -> SigningKeyRow:
    """The key read with the account when it is still current, else the domain's current one."""
    if read is not None and _current(settings, now, read):
        return read
    key = await signing_keys.current_signing_key(session=session, settings=settings, now=now)
    return SigningKeyRow(kid=key.kid, pem=key.private_key_pem, created_at=key.created_at)


@functools.cache
def _sign_in_statement(forgive: bool, rehash: bool) -> Insert:
    """A success in one statement: the refresh token and the audit row, and the counters to
    forgive and the re-hashed password when there are (data-modifying CTEs of one INSERT)."""
    changes: list[Any] = [
        insert(_refresh)
        .values(
            id=bindparam("refresh_id"),
            user_id=bindparam("user_id"),
            family_id=bindparam("family_id"),
            token_hash=bindparam("token_hash"),
            created_at=bindparam("now"),
            expires_at=bindparam("expires_at"),
            amr=bindparam("amr"),
        )
        .cte("issued")
    ]
    if forgive:
        keys = bindparam("forgive", type_=ARRAY(String))
        changes.append(delete(_failures).where(_failures.c.key == any_(keys)).cte("forgiven"))
    if rehash:
        changes.append(
            update(_users)
            .where(_users.c.id == bindparam("user_id"))
            .values(password_hash=bindparam("password_hash"), updated_at=bindparam("now"))
            .cte("rehashed")
        )
    record = insert(_audit).values(
        id=bindparam("audit_id"),
        time=bindparam("now"),
        event="login.succeeded",
        actor_id=None,
        user_id=bindparam("user_id"),
        detail=bindparam("detail", type_=JSONB),
    )
    return record.add_cte(*changes)


async def _sign_in(
    rows: Rows,
    *,
    settings: IdentitySettings,
    keyring: Keyring,
    now: datetime,
    account: Account,
    amr: Sequence[str],
    device: Device | None,
    client_ip: str,
    forgive: Sequence[str],
    key: SigningKeyRow,
    rehash: str | None = None,
    family_id: uuid.UUID | None = None,
) -> IssuedTokens:
    """Issues the pair and a device cookie, recording it in one statement: the refresh token,
    the audit row and — only when there is something to do — forgiven counters and a re-hash."""
    family = family_id or uuid.uuid4()
    access = signing_keys.sign_with(
        key.kid,
        key.pem,
        now=now,
        claims=_claims(account, amr, family),
        ttl=settings.access_token_ttl_seconds,
    )
    refresh = secrets.token_urlsafe(32)
    detail = {
        "client_ip": client_ip or None,
        "amr": second_factor.amr_text(amr),
        "device": "known" if device else "new",
    }
    params: dict[str, object] = {
        "refresh_id": uuid.uuid4(),
        "user_id": account.id,
        "family_id": family,
        "token_hash": sha256_hex(refresh),
        "now": now,
        "expires_at": now + timedelta(seconds=settings.refresh_token_ttl_seconds),
        "amr": second_factor.amr_text(amr),
        "audit_id": uuid.uuid4(),
        "detail": {k: v for k, v in detail.items() if v is not None},
    }
    if forgive:
        params["forgive"] = list(forgive)
    if rehash is not None:
        params["password_hash"] = rehash
    await rows.run(_sign_in_statement(bool(forgive), rehash is not None), params)
    return IssuedTokens(
        access_token=access,
        refresh_token=refresh,
        expires_in=settings.access_token_ttl_seconds,
        refresh_expires_in=settings.refresh_token_ttl_seconds,
        device_token=issue_device_token(
            keyring, user_id=account.id, now=now, device_id=device.device_id if device else None
        ),
    )


# --- the second step, and passkeys as the first --------------------------------------------------


async def complete_second_factor(
    *,
    session: AsyncSession,
    settings: IdentitySettings,
    keyring: Keyring,
    now: datetime,
    ticket: str,
    code: str,
    recovery_code: str,
    passkey_credential: str,
    client_ip: str,
    device_token: str = "",
) -> IssuedTokens | Refusal:
    """Completes a sign-in whose password was accepted (`ticket`) with exactly one of a TOTP
    code, a recovery code or a passkey's answer. Wrong ones count under the device's counter
    (a known device) or the account's second-factor counter (any other), with the same locks."""
    v = Validator()
    v.require("ticket", ticket)
    given = [
        name
        for name, value in (
            ("code", code),
            ("recovery_code", recovery_code),
            ("passkey_credential", passkey_credential),
        )
        if value.strip()
    ]
    v.check(
        len(given) == 1,
        given[1] if len(given) > 1 else "code",
        "give exactly one of code, recovery_code, passkey_credential",
        code="one_second_factor",
    )
    v.check(len(code) <= 16, "code", "is too long")
    v.check(len(recovery_code) <= 32, "recovery_code", "is too long")
    v.check(len(client_ip) <= 64, "client_ip", "must be at most 64 characters")
    v.raise_if_any()
    credential = (
        passkeys.parse_credential(passkey_credential, "passkey_credential")
        if passkey_credential.strip()
        else None
    )
    proven = second_factor.read_ticket(keyring, ticket, settings=settings, now=now)
    claimed = read_device_token(keyring, device_token, settings=settings, now=now)
    device = claimed if claimed and claimed.user_id == proven.user_id else None
    counter = device.throttle_key if device else throttles.FACTOR + str(proven.user_id)
    row, ((lock, failures),) = await read_login_state(
        SessionRows(session), BY_ID, proven.user_id, [counter]
    )
    account = account_of(row)
    if account is None:
        return Refusal(Unauthenticated(INVALID_CREDENTIALS, reason="invalid_credentials"))
    wait = throttles.wait_seconds(lock, now)
    if wait:
        return Refusal(throttles.locked(wait), throttled="device" if device else "factor")
    amr: tuple[str, ...] = ()
    if code.strip():
        used = await second_factor.use_totp(
            session, settings=settings, now=now, user_id=account.id, code=code
        )
        amr = second_factor.TOTP_AMR if used else ()
    elif recovery_code.strip():
        used = await second_factor.use_recovery_code(
            session, now=now, user_id=account.id, code=recovery_code
        )
        amr = second_factor.RECOVERY_AMR if used else ()
    elif credential is not None:
        answered = await passkeys.verify_assertion(
            session, settings=settings, now=now, credential=credential, user_id=account.id
        )
        amr = second_factor.PASSKEY_SECOND_AMR if answered else ()
    if not amr:
        await _count_failure(
            session,
            settings=settings,
            now=now,
            keys=[counter],
            account=account,
            client_ip=client_ip,
            reason="wrong_second_factor",
        )
        return Refusal(Unauthenticated(SECOND_FACTOR_INVALID, reason="second_factor_invalid"))
    if account.status == UserStatus.DISABLED:
        return Refusal(PermissionDenied("this account is disabled", reason="account_disabled"))
    forgive = [counter] if failures else []
    if device is None:
        forgive.append(throttles.USER + account.username.lower())
    return await _sign_in(
        SessionRows(session),
        settings=settings,
        keyring=keyring,
        now=now,
        account=account,
        amr=amr,
        device=device,
        client_ip=client_ip,
        forgive=forgive,
        key=await _signing_key(session, settings, now, signing_of(row)),
    )


async def passkey_login(
    *,
    session: AsyncSession,
    settings: IdentitySettings,
    keyring: Keyring,
    now: datetime,
    credential_json: str,
    client_ip: str,
    device_token: str = "",
) -> IssuedTokens | Refusal:
    """Sign-in with a passkey alone (it verified its user: two factors in one)."""
    v = Validator()
    v.check(len(client_ip) <= 64, "client_ip", "must be at most 64 characters")
    v.raise_if_any()
    credential = passkeys.parse_credential(credential_json)
    passkey = await passkeys.verify_assertion(
        session, settings=settings, now=now, credential=credential, user_id=None
    )
    if passkey is None:
        return Refusal(Unauthenticated(passkeys.PASSKEY_REFUSED, reason="passkey_invalid"))
    claimed = read_device_token(keyring, device_token, settings=settings, now=now)
    device = claimed if claimed and claimed.user_id == passkey.user_id else None
    row, _ = await read_login_state(SessionRows(session), BY_ID, passkey.user_id, [])
    account = account_of(row)
    if account is None:
        return Refusal(Unauthenticated(passkeys.PASSKEY_REFUSED, reason="passkey_invalid"))
    if account.status == UserStatus.DISABLED:
        return Refusal(PermissionDenied("this account is disabled", reason="account_disabled"))
    return await _sign_in(
        SessionRows(session),
        settings=settings,
        keyring=keyring,
        now=now,
        account=account,
        amr=second_factor.PASSKEY_FIRST_AMR,
        device=device,
        client_ip=client_ip,
        forgive=(),
        key=await _signing_key(session, settings, now, signing_of(row)),
    )


# --- refresh, logout -----------------------------------------------------------------------------


async def revoke_refresh_tokens(
    session: AsyncSession, now: datetime, where: ColumnElement[bool], reason: str
) -> None:
    await session.execute(
        update(RefreshToken)
        .where(where, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now, revoke_reason=reason)
    )


async def refresh(
    *, session: AsyncSession, settings: IdentitySettings, now: datetime, refresh_token: str
) -> IssuedTokens | Refusal:
    """Rotation: the presented token dies and a new one of the same family is issued.

    Presenting a token that was already rotated means two parties hold the family: the whole
    family is revoked (theft detection, RFC 9700 section 4.14.2). The new access token says what
    the account holds now, under today's second-factor policy and the session's `amr`.
    """
    v = Validator()
    check_token_field(v, "refresh_token", refresh_token, "refresh")
    v.raise_if_any()
    token = (
        await session.execute(
            select(RefreshToken)
            .where(RefreshToken.token_hash == sha256_hex(refresh_token))
            .with_for_update()
        )
    ).scalar_one_or_none()
    if token is None:
        return Refusal(Unauthenticated(INVALID_REFRESH, reason="invalid_refresh_token"))
    if token.revoked_at is not None:
        if token.revoke_reason == "rotated":
            await revoke_refresh_tokens(
                session, now, RefreshToken.family_id == token.family_id, "reuse"
            )
            audit(
                session=session,
                now=now,
                event="refresh_token.reused",
                actor=None,
                user_id=token.user_id,
                family_id=token.family_id,
            )
            return Refusal(
                Unauthenticated(
                    "refresh token already used; the session was revoked",
                    reason="refresh_token_reused",
                )
            )
        return Refusal(Unauthenticated(INVALID_REFRESH, reason="refresh_token_revoked"))
    if token.expires_at <= now:
        return Refusal(Unauthenticated("refresh token expired", reason="refresh_token_expired"))
    row, _ = await read_login_state(SessionRows(session), BY_ID, token.user_id, [])
    account = account_of(row)
    if account is None or account.status == UserStatus.DISABLED:
        await revoke_refresh_tokens(
            session, now, RefreshToken.family_id == token.family_id, "disabled"
        )
        return Refusal(Unauthenticated(INVALID_REFRESH, reason="account_disabled"))
    token.revoked_at = now
    token.revoke_reason = "rotated"
    amr = token.amr.split()
    key = await _signing_key(session, settings, now, signing_of(row))
    access = signing_keys.sign_with(
        key.kid,
        key.pem,
        now=now,
        claims=_claims(account, amr, token.family_id),
        ttl=settings.access_token_ttl_seconds,
    )
    fresh = secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            id=uuid.uuid4(),
            user_id=account.id,
            family_id=token.family_id,
            token_hash=sha256_hex(fresh),
            created_at=now,
            expires_at=now + timedelta(seconds=settings.refresh_token_ttl_seconds),
            amr=token.amr,
        )
    )
    return IssuedTokens(
        access_token=access,
        refresh_token=fresh,
        expires_in=settings.access_token_ttl_seconds,
        refresh_expires_in=settings.refresh_token_ttl_seconds,
    )


async def logout(*, session: AsyncSession, now: datetime, refresh_token: str) -> None:
    """Revokes the token's whole family; unknown tokens are fine (logging out twice is harmless)."""
    v = Validator()
    check_token_field(v, "refresh_token", refresh_token, "refresh")
    v.raise_if_any()
    token = (
        await session.execute(
            select(RefreshToken).where(RefreshToken.token_hash == sha256_hex(refresh_token))
        )
    ).scalar_one_or_none()
    if token is None:
        return
    await revoke_refresh_tokens(session, now, RefreshToken.family_id == token.family_id, "logout")
    audit(session=session, now=now, event="logout", actor=None, user_id=token.user_id)
