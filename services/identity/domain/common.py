"""What the identity domain modules share: input checks, unique-violation mapping, paging, the
audit trail, outgoing mail and the advisory-lock keys.

Nothing here knows a business rule; it keeps the rule modules short and their checks uniform.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.models import AuditEvent, OrganisationKind, User, outbox
from services.identity.settings import IdentitySettings
from services.kit.auth import Principal
from services.kit.errors import AlreadyExists, DomainError, Validator
from services.kit.mail import enqueue_mail
from services.kit.paging import Page, PageQuery, page_token as _page_token
from services.kit.temporal import USERNAME

# Transaction-scoped advisory locks: one key creation, one bootstrap at a time (many replicas).
SIGNING_KEY_LOCK = 0x6964_0001
BOOTSTRAP_LOCK = 0x6964_0002
OPS_ADMIN_LOCK = 0x6964_0003

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalise_email(raw: str) -> str:
    """The address as it will be stored; raises ValueError with a reason to show."""
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise ValueError(str(error)) from None


def sha256_hex(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def clean(value: str) -> str:
    return " ".join(value.split())


def check_name(v: Validator, field: str, value: str, limit: int = 100) -> None:
    v.require(field, value)
    v.check(
        len(value) <= limit, field, f"must be at most {limit} characters", code="string_too_long"
    )
    v.check(
        not _CONTROL.search(value),
        field,
        "must not contain control characters",
        code="string_pattern_mismatch",
    )


def check_email(v: Validator, field: str, raw: str, *, required: bool) -> str | None:
    if not raw.strip():
        if required:
            v.require(field, raw)
        return None
    try:
        email = normalise_email(raw)
    except ValueError as error:
        v.check(False, field, f"is not a valid e-mail address: {error}", code="value_error")
        return None
    v.check(len(email) <= 320, field, "must be at most 320 characters", code="string_too_long")
    return email


def parse_uuid(v: Validator, field: str, raw: str, *, required: bool = True) -> uuid.UUID | None:
    if not raw.strip():
        if required:
            v.require(field, raw)
        return None
    try:
        return uuid.UUID(raw.strip())
    except ValueError:
        v.check(False, field, "must be a UUID", code="uuid_parsing")
        return None


def uuid_or_raise(field: str, raw: str) -> uuid.UUID:
    v = Validator()
    parsed = parse_uuid(v, field, raw)
    v.raise_if_any()
    assert parsed is not None
    return parsed


def parse_timestamp(raw: str) -> datetime:
    parsed = datetime.fromisoformat(raw)
    if parsed.tzinfo is None:
        raise ValueError(raw)
    return parsed


def kind_of(value: str) -> OrganisationKind:
    return OrganisationKind(value)


def taken_error(field: str, description: str) -> AlreadyExists:
    return AlreadyExists(f"{field}: {description}", violations=[(field, description)])


def _constraint(error: IntegrityError) -> str:
    """The violated constraint's name, from asyncpg's exception under SQLAlchemy's wrapper."""
    for candidate in (error.orig, getattr(error.orig, "__cause__", None)):
        name = getattr(candidate, "constraint_name", None)
        if isinstance(name, str):
            return name
    return str(error.orig)


async def flush_unique(session: AsyncSession, taken: dict[str, DomainError]) -> None:
    """Flushes, turning a unique violation lost to a concurrent writer into a precise error."""
    try:
        await session.flush()
    except IntegrityError as error:
        name = _constraint(error)
        for constraint, domain_error in taken.items():
            if constraint in name:
                raise domain_error from None
        raise


def check_token_field(v: Validator, field: str, token: str, kind: str = "link") -> None:
    """A token's shape (what it names is checked by looking it up): `kind` names it in the
    message, `link` or `refresh`."""
    v.require(field, token)
    v.check(len(token) <= 200, field, f"is not a valid {kind} token", code="string_too_long")


async def fetch_page(
    session: AsyncSession,
    query: Select[Any],
    page: PageQuery,
    list_name: str,
    key: Callable[[Any], Sequence[object]],
) -> Page[Any]:
    """Runs a keyset query ordered by the sort key; `key` gives an item's sort key."""
    items = list((await session.execute(query.limit(page.size + 1))).scalars().all())
    token = ""
    if len(items) > page.size:
        items = items[: page.size]
        token = _page_token(list_name, key(items[-1]))
    return Page(items=items, next_page_token=token)


def actor_id(actor: Principal | None) -> str | None:
    return None if actor is None else actor.subject


def audit(
    *,
    session: AsyncSession,
    now: datetime,
    event: str,
    actor: Principal | str | None,
    user_id: uuid.UUID | None,
    **detail: object,
) -> None:
    """Records one audit event; detail values are kept as text (the contract's string map)."""
    who = actor if isinstance(actor, str) or actor is None else actor.subject
    session.add(
        AuditEvent(
            id=uuid.uuid4(),
            time=now,
            event=event,
            actor_id=who,
            user_id=user_id,
            detail={key: str(value) for key, value in detail.items() if value is not None},
        )
    )


async def queue_mail(
    session: AsyncSession,
    settings: IdentitySettings,
    *,
    to: str,
    subject: str,
    body: str,
    kind: str = "account",
    username: str = "",
) -> None:
    """`kind` and `username` become the DeliverMail run's search attributes (docs/runbook.md)."""
    await enqueue_mail(
        session,
        outbox,
        mail_id=str(uuid.uuid4()),
        to=[to],
        subject=subject,
        body=body,
        sealing_key=settings.mail_sealing_key,
        task_queue=settings.temporal_task_queue,
        kind=kind,
        about={USERNAME: username.lower()},
    )


def duration_text(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} heure{'s' if hours > 1 else ''}"
    minutes = max(1, seconds // 60)
    return f"{minutes} minute{'s' if minutes > 1 else ''}"


def greeting(user: User) -> str:
    return f"Bonjour {user.first_name}," if user.first_name else "Bonjour,"
