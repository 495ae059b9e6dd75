"""What a sign-in reads: one statement for the account, its counters under the shared brakes and
the current signing key, as plain rows (no ORM object is needed to decide). Kept apart from
`tokens`, which decides on them and issues the tokens."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    String,
    Uuid,
    bindparam,
    cast,
    exists,
    func,
    literal_column,
    select,
    true,
)

from services.identity.domain import second_factor
from services.identity.domain.devices import Device
from services.identity.driver import Rows
from services.identity.models import (
    AuditEvent,
    Base,
    LoginFailures,
    Membership,
    Organisation,
    Passkey,
    RecoveryCode,
    RefreshToken,
    SigningKey,
    TotpCredential,
    User,
)


@dataclass(frozen=True)
class Account:
    """The columns a sign-in decides on (read as plain rows: no ORM object is needed)."""

    id: uuid.UUID
    username: str
    password_hash: str | None
    status: str
    email: str | None
    first_name: str | None
    organisation_requires: bool
    memberships: list[tuple[str, str]]
    has_totp: bool
    has_passkey: bool
    has_recovery: bool

    @property
    def roles(self) -> list[str]:
        return [role for _, role in self.memberships]

    @property
    def has_second_factor(self) -> bool:
        return self.has_totp or self.has_passkey


@dataclass(frozen=True)
class SigningKeyRow:
    kid: str
    pem: str
    created_at: datetime


@dataclass(frozen=True)
class LoginState:
    """What `start_login` read, for `finish_login`."""

    user_key: str
    address_key: str | None
    device: Device | None  # only when it names this account
    account: Account | None
    client_ip: str
    # Which counters hold failures (a success forgives them; none, most of the time).
    to_forgive: tuple[str, ...] = ()
    signing: SigningKeyRow | None = None

    @property
    def trusted(self) -> bool:
        return self.device is not None


_tables = Base.metadata.tables
_users = _tables[User.__tablename__]
_organisations = _tables[Organisation.__tablename__]
_memberships = _tables[Membership.__tablename__]
_failures = _tables[LoginFailures.__tablename__]
_keys = _tables[SigningKey.__tablename__]
_totp = _tables[TotpCredential.__tablename__]
_passkeys = _tables[Passkey.__tablename__]
_recovery = _tables[RecoveryCode.__tablename__]
_refresh = _tables[RefreshToken.__tablename__]
_audit = _tables[AuditEvent.__tablename__]

# Statements a sign-in runs many times a second are built once, from tables (no ORM entity to
# compile), with bound parameters: building and compiling them cost more CPU than running them.
BY_USERNAME = "username"
BY_ID = "id"


@functools.cache
def _read_statement(by: str, counters: int) -> Select[Any]:
    """The account (by lower(username) or by id; none is a row of NULLs), its roles, factors and
    organisation's policy, the newest signing key, and `counters` failure counters (`:k0`…)."""
    memberships = (
        select(
            func.array_agg(
                func.concat(cast(_memberships.c.organisation_id, String), " ", _memberships.c.role)
            )
        )
        .where(_memberships.c.user_id == _users.c.id)
        .scalar_subquery()
    )
    newest = (
        select(_keys.c.kid, _keys.c.private_key_pem, _keys.c.created_at)
        .order_by(_keys.c.created_at.desc())
        # LIMIT 1 written in the SQL, not bound: with `LIMIT $n` PostgreSQL's generic plan
        # expects 10 % of the keys, costs 17 times the custom one, and so plans the statement
        # again at every execution (0.4-0.5 ms of its CPU per sign-in; docs/performance.md).
        .limit(literal_column("1", Integer))
        .lateral("newest")
    )
    which = (
        func.lower(_users.c.username) == bindparam("who", type_=String)
        if by == BY_USERNAME
        else _users.c.id == bindparam("who", type_=Uuid)
    )
    anchor = select(literal_column("1").label("one")).subquery("anchor")
    joined = anchor.outerjoin(_users, which).outerjoin(
        _organisations, _organisations.c.id == _users.c.organisation_id
    )
    counter_columns: list[Any] = []
    for index in range(counters):
        alias = _failures.alias(f"f{index}")
        joined = joined.outerjoin(alias, alias.c.key == bindparam(f"k{index}", type_=String))
        counter_columns += [
            alias.c.locked_until.label(f"lock{index}"),
            alias.c.failures.label(f"failures{index}"),
        ]
    joined = joined.outerjoin(newest, true())
    return select(
        _users.c.id.label("user_id"),
        _users.c.username,
        _users.c.password_hash,
        _users.c.status,
        _users.c.email,
        _users.c.first_name,
        _organisations.c.second_factor_required,
        memberships.label("memberships"),
        exists()
        .where(_totp.c.user_id == _users.c.id, _totp.c.confirmed_at.is_not(None))
        .label("has_totp"),
        exists().where(_passkeys.c.user_id == _users.c.id).label("has_passkey"),
        exists()
        .where(_recovery.c.user_id == _users.c.id, _recovery.c.used_at.is_(None))
        .label("has_recovery"),
        *counter_columns,
        newest.c.kid,
        newest.c.private_key_pem,
        newest.c.created_at.label("key_created_at"),
    ).select_from(joined)


def account_of(row: Mapping[str, Any]) -> Account | None:
    if row["user_id"] is None:
        return None
    return Account(
        id=row["user_id"],
        username=row["username"],
        password_hash=row["password_hash"],
        status=row["status"],
        email=row["email"],
        first_name=row["first_name"],
        organisation_requires=bool(row["second_factor_required"]),
        memberships=second_factor.memberships_of(row["memberships"]),
        has_totp=bool(row["has_totp"]),
        has_passkey=bool(row["has_passkey"]),
        has_recovery=bool(row["has_recovery"]),
    )


def signing_of(row: Mapping[str, Any]) -> SigningKeyRow | None:
    if row["kid"] is None:
        return None
    return SigningKeyRow(
        kid=row["kid"], pem=row["private_key_pem"], created_at=row["key_created_at"]
    )


async def read_login_state(
    rows: Rows, by: str, who: object, counters: Sequence[str]
) -> tuple[Mapping[str, Any], list[tuple[datetime | None, int | None]]]:
    """One statement: the account `who` (a lower-case username or an id), with what a sign-in
    decides on, the newest signing key, and each counter's (lock, failures). Absent counters are
    passed as "" so that the statement keeps one shape (one cached plan)."""
    params: dict[str, object] = {"who": who}
    params.update({f"k{index}": key for index, key in enumerate(counters)})
    row = await rows.one(_read_statement(by, len(counters)), params)
    found = [(row[f"lock{i}"], row[f"failures{i}"]) for i in range(len(counters))]
    return row, found
