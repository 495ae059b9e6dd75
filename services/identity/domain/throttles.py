"""Brakes on guessing, shared by every replica: failed sign-ins and the public routes' rate.

Failed sign-ins are counted in `login_failures` under keys that say whose failures they are
(OWASP, "Slow Down Online Guessing Attacks with Device Cookies"):

- `user:<lower(username)>` — failures from devices that never signed in to that account, known
  usernames and unknown ones alike, so that a lock reveals nothing;
- `device:<id>` — failures from one device that did sign in to the account (its signed device
  cookie): someone else's failures never lock it, its own do;
- `address:<ip>` (IPv6: the /64) — failures of unknown devices from one address across usernames
  (credential stuffing); a known device never waits for it;
- `factor:<user id>` — wrong second factors after a right password from an unknown device.

Only failures count: a success costs no write here, so an office behind one address signing in at
9:00 is never braked. Reaching the threshold locks the key for `LOCKOUT_SECONDS`, each further
failure doubles the wait up to `LOCKOUT_MAX_SECONDS`; a quiet window after the last failure (or
the end of the wait) forgives. One upsert counts a failure atomically, so concurrent failures all
count, whichever replica saw them.

The public routes that mail or hash (registration, password reset...) are braked per route and
address with GCRA (one timestamp per key, one upsert per request), which the gateway asks for
through `TakeAttempt`. Rows carry their expiry and `purge` deletes the stale ones.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Integer, case, cast, delete, func, literal
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.models import LoginFailures, RateLimit, WebauthnChallenge
from services.identity.settings import IdentitySettings
from services.kit.errors import ResourceExhausted

USER = "user:"
DEVICE = "device:"
ADDRESS = "address:"
FACTOR = "factor:"

TOO_MANY_FAILURES = "too many failed sign-ins: try again later"
# The exponent is capped so that the doubling never overflows, whatever the failure count.
_MAX_DOUBLINGS = 30


def address_key(client_ip: str) -> str | None:
    """The address a failure is charged to: IPv4 as is, IPv6 per /64 (one subscriber usually
    holds the whole prefix), IPv4-mapped IPv6 as IPv4; None when no address was given."""
    text = client_ip.strip()
    if not text:
        return None
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        return ADDRESS + text[:64]
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return ADDRESS + str(parsed.ipv4_mapped)
        return ADDRESS + str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return ADDRESS + str(parsed)


def threshold_of(settings: IdentitySettings, key: str) -> int:
    if key.startswith(ADDRESS):
        return settings.address_lockout_threshold
    return settings.lockout_threshold


def wait_seconds(locked_until: datetime | None, now: datetime) -> int:
    """Whole seconds until a lock ends (at least 1), or 0 when there is no lock in force."""
    if locked_until is None or locked_until <= now:
        return 0
    return max(1, math.ceil((locked_until - now).total_seconds()))


def locked(seconds: int) -> ResourceExhausted:
    """The one answer of every lock, whoever holds the username (and whether anyone does)."""
    return ResourceExhausted(TOO_MANY_FAILURES, retry_after_seconds=seconds)


@dataclass(frozen=True)
class Counted:
    """A failure as recorded: the key's failures since it was last forgiven, and its lock."""

    key: str
    failures: int
    locked_until: datetime | None

    def just_locked(self, settings: IdentitySettings) -> bool:
        """True for the failure that reached the threshold (the first lock of a series)."""
        return self.failures == threshold_of(settings, self.key)


async def record_failure(
    session: AsyncSession, *, settings: IdentitySettings, now: datetime, key: str
) -> Counted:
    """Counts one failure under `key` (one atomic upsert) and locks it once over the threshold."""
    table = LoginFailures.__table__
    threshold = threshold_of(settings, key)
    window = timedelta(seconds=settings.lockout_window_seconds)
    forgiven = table.c.expires_at <= now
    failures: ColumnElement[int] = case((forgiven, 1), else_=table.c.failures + 1)
    doublings = func.least(func.greatest(failures - threshold, 0), _MAX_DOUBLINGS)
    seconds = func.least(
        settings.lockout_seconds * func.power(2, cast(doublings, Integer)),
        settings.lockout_max_seconds,
    )
    lock_from_now = literal(now) + func.make_interval(0, 0, 0, 0, 0, 0, seconds)
    new_lock = case((failures >= threshold, lock_from_now), else_=None)
    first_lock = now + timedelta(seconds=settings.lockout_seconds) if threshold <= 1 else None
    statement = pg_insert(LoginFailures).values(
        key=key,
        failures=1,
        last_failure_at=now,
        locked_until=first_lock,
        expires_at=(first_lock or now) + window,
    )
    upsert = statement.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={
            "failures": failures,
            "last_failure_at": now,
            "locked_until": new_lock,
            "expires_at": func.greatest(literal(now), func.coalesce(new_lock, literal(now)))
            + window,
        },
    ).returning(table.c.failures, table.c.locked_until)
    row = (await session.execute(upsert)).one()
    return Counted(key, int(row.failures), row.locked_until)


async def forgive(session: AsyncSession, *keys: str) -> None:
    """Forgets the failures of `keys` (a success, a password reset)."""
    if keys:
        await session.execute(delete(LoginFailures).where(LoginFailures.key.in_(keys)))


async def take_attempt(
    session: AsyncSession, *, settings: IdentitySettings, now: datetime, scope: str, client_ip: str
) -> int:
    """One request of `scope` from `client_ip`: 0 when allowed, else the seconds to wait.

    GCRA: each request moves the key's theoretical arrival time (TAT) one interval T on; a
    request is refused while the TAT is more than (burst - 1) intervals ahead of now. The
    decision and its record are one upsert, so replicas racing on one key stay exact.
    """
    if settings.auth_rate_limit_per_minute <= 0:
        return 0
    address = address_key(client_ip) or ADDRESS + "unknown"
    key = f"{scope}|{address}"[:200]
    table = RateLimit.__table__
    interval = timedelta(seconds=60.0 / settings.auth_rate_limit_per_minute)
    tolerance = interval * (settings.auth_rate_limit_burst - 1)
    start = func.greatest(table.c.tat, literal(now))
    allowed = start - literal(now) <= tolerance
    statement = (
        pg_insert(RateLimit)
        .values(key=key, tat=now + interval, refused=False)
        .on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "tat": case((allowed, start + interval), else_=table.c.tat),
                "refused": ~allowed,
            },
        )
        .returning(table.c.tat, table.c.refused)
    )
    row = (await session.execute(statement)).one()
    if not row.refused:
        return 0
    wait: timedelta = row.tat - tolerance - now
    return max(1, math.ceil(wait.total_seconds()))


async def purge(session: AsyncSession, *, now: datetime) -> int:
    """Deletes the rows no rule reads any more; returns how many went."""
    gone = 0
    for statement in (
        delete(LoginFailures).where(LoginFailures.expires_at <= now),
        delete(RateLimit).where(RateLimit.tat <= now),
        delete(WebauthnChallenge).where(WebauthnChallenge.expires_at <= now),
    ):
        result = await session.execute(statement)
        gone += int(getattr(result, "rowcount", 0) or 0)
    return gone
