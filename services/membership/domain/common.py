"""What every membership rule shares: roles and organisation kinds, input checks that collect
field violations, unique violations turned into precise errors, keyset pages, who may do what,
identity's directory of organisations, and mail queued in the caller's transaction."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.common import SearchAttributeKey

from services.kit.auth import Principal
from services.kit.clock import is_time_zone
from services.kit.errors import (
    AlreadyExists,
    DomainError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Validator,
)
from services.kit.mail import enqueue_mail
from services.kit.paging import Page, PageQuery, page_token as _page_token
from services.membership.domain.normalise import clean, normalise_siret
from services.membership.models import outbox
from services.membership.settings import MembershipSettings

# ------------------------------------------------------------------------------------------------
# Roles and constants
# ------------------------------------------------------------------------------------------------

OPS_ADMIN = "ops_admin"
SUPPORT_AGENT = "support_agent"
WORKSHOP_OWNER = "workshop_owner"
ASSOCIATION_ADMIN = "association_admin"
WORKSHOP_KIND = "workshop"
ASSOCIATION_KIND = "association"

_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,31}$")
_PHONE = re.compile(r"^\+?[0-9 ().-]{6,32}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# ------------------------------------------------------------------------------------------------
# Input checks
# ------------------------------------------------------------------------------------------------
# Each check records a violation of its field in `v` and returns the cleaned value ("" or None
# when it is missing or wrong), so that one refusal names every bad field at once.


def check_text(
    v: Validator, field: str, value: str, *, limit: int = 200, required: bool = True
) -> str:
    value = clean(value)
    if required:
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
    return value


def check_long_text(v: Validator, field: str, value: str, *, limit: int, required: bool) -> str:
    value = value.strip()
    if required:
        v.require(field, value)
    v.check(
        len(value) <= limit, field, f"must be at most {limit} characters", code="string_too_long"
    )
    v.check("\x00" not in value, field, "must not contain NUL characters", code="unsafe_text")
    return value


def check_email(v: Validator, field: str, raw: str, *, required: bool = True) -> str:
    if not raw.strip():
        if required:
            v.require(field, raw)
        return ""
    try:
        email = validate_email(raw.strip(), check_deliverability=False).normalized
    except EmailNotValidError as error:
        v.check(False, field, f"is not a valid e-mail address: {error}", code="value_error")
        return ""
    v.check(len(email) <= 320, field, "must be at most 320 characters")
    return email


def check_phone(v: Validator, field: str, raw: str) -> str:
    value = raw.strip()
    v.check(
        not value or bool(_PHONE.match(value)),
        field,
        "is not a phone number",
        code="string_pattern_mismatch",
    )
    return value


def check_uuid(v: Validator, field: str, raw: str, *, required: bool = True) -> uuid.UUID | None:
    if not raw.strip():
        if required:
            v.require(field, raw)
        return None
    try:
        return uuid.UUID(raw.strip())
    except ValueError:
        v.check(False, field, "must be a UUID", code="uuid_parsing")
        return None


def parse_uuid(field: str, raw: str) -> uuid.UUID:
    v = Validator()
    parsed = check_uuid(v, field, raw)
    v.raise_if_any()
    assert parsed is not None
    return parsed


def check_date(v: Validator, field: str, raw: str, *, required: bool = True) -> date | None:
    if not raw.strip():
        if required:
            v.require(field, raw)
        return None
    try:
        if not _ISO_DATE.match(raw.strip()):
            raise ValueError(raw)
        return date.fromisoformat(raw.strip())
    except ValueError:
        v.check(False, field, "must be a date, YYYY-MM-DD", code="date_parsing")
        return None


def check_time_zone(v: Validator, field: str, raw: str, *, required: bool = True) -> str:
    """An IANA time zone name ("Europe/Paris", "America/Montreal"), as `zoneinfo` knows it."""
    value = raw.strip()
    if not value:
        if required:
            v.require(field, raw)
        return ""
    if len(value) > 64:
        v.add(field, "must be at most 64 characters", "string_too_long")
    else:
        v.check(
            is_time_zone(value),
            field,
            "is not an IANA time zone, e.g. Europe/Paris",
            code="time_zone",
        )
    return value


def check_code(v: Validator, field: str, raw: str) -> str:
    value = raw.strip().upper()
    v.require(field, value)
    if value:
        v.check(
            bool(_CODE.match(value)),
            field,
            "must be 1 to 32 letters, digits, '_' or '-'",
            code="string_pattern_mismatch",
        )
    return value


def check_siret(v: Validator, field: str, raw: str) -> str | None:
    if not raw.strip():
        return None
    try:
        return normalise_siret(raw)
    except ValueError as error:
        # 14 digits is the schema's pattern; the check digit is beyond it.
        code = "string_pattern_mismatch" if "14 digits" in str(error) else "siret_checksum"
        v.check(False, field, str(error), code=code)
        return None


def _constraint(error: IntegrityError) -> str:
    """The violated constraint's name, from asyncpg's exception under SQLAlchemy's wrapper."""
    for candidate in (error.orig, getattr(error.orig, "__cause__", None)):
        name = getattr(candidate, "constraint_name", None)
        if isinstance(name, str):
            return name
    return str(error.orig)


async def flush_or_raise(session: AsyncSession, taken: dict[str, DomainError]) -> None:
    """Flushes, turning a unique violation lost to a concurrent writer into a precise error."""
    try:
        await session.flush()
    except IntegrityError as error:
        name = _constraint(error)
        for constraint, domain_error in taken.items():
            if constraint in name:
                raise domain_error from None
        raise


def already_taken(field: str, description: str) -> AlreadyExists:
    return AlreadyExists(f"{field}: {description}", violations=[(field, description)])


# ------------------------------------------------------------------------------------------------
# Pagination (keyset; the token names the list and carries the last sort key)
# ------------------------------------------------------------------------------------------------


async def fetch_page(
    session: AsyncSession,
    query: Select[Any],
    page: PageQuery,
    list_name: str,
    key: Callable[[Any], Sequence[object]],
) -> Page[Any]:
    items = list((await session.execute(query.limit(page.size + 1))).scalars().all())
    token = ""
    if len(items) > page.size:
        items = items[: page.size]
        token = _page_token(list_name, key(items[-1]))
    return Page(items=items, next_page_token=token)


def parse_moment(raw: str) -> datetime:
    parsed = datetime.fromisoformat(raw)
    if parsed.tzinfo is None:
        raise ValueError(raw)
    return parsed


# ------------------------------------------------------------------------------------------------
# Who may do what
# ------------------------------------------------------------------------------------------------


def require_actor(actor: Principal | None) -> Principal:
    if actor is None:
        raise Unauthenticated("authentication required")
    return actor


def require_user(actor: Principal | None) -> Principal:
    actor = require_actor(actor)
    if actor.is_service:
        raise PermissionDenied("this call is for signed-in users, not services")
    return actor


def require_service(actor: Principal | None) -> Principal:
    actor = require_actor(actor)
    if not actor.is_service:
        raise PermissionDenied("this call is internal: services only")
    return actor


def is_operator(actor: Principal | None) -> bool:
    """The program team: ops_admin and support_agent run the banner program."""
    return (
        actor is not None and not actor.is_service and actor.has_any_role(OPS_ADMIN, SUPPORT_AGENT)
    )


def is_ops_admin(actor: Principal | None) -> bool:
    return actor is not None and not actor.is_service and actor.has_any_role(OPS_ADMIN)


def require_operator(actor: Principal | None) -> Principal:
    actor = require_user(actor)
    if not is_operator(actor):
        raise PermissionDenied("only the program team (operators) may do this")
    return actor


def is_workshop_owner(actor: Principal, workshop_id: uuid.UUID) -> bool:
    return not actor.is_service and actor.has_role(str(workshop_id), WORKSHOP_OWNER)


def workshop_party(actor: Principal | None, workshop_id: uuid.UUID) -> str:
    """ "operator" or "workshop"; anyone else learns nothing about the workshop."""
    actor = require_user(actor)
    if is_operator(actor):
        return "operator"
    if is_workshop_owner(actor, workshop_id):
        return "workshop"
    raise NotFound("workshop not found")


def operator_on_workshop(actor: Principal | None, workshop_id: uuid.UUID, what: str) -> Principal:
    """Operators only; the workshop itself is told why it may not."""
    actor = require_user(actor)
    if is_operator(actor):
        return actor
    if is_workshop_owner(actor, workshop_id):
        raise PermissionDenied(f"a workshop cannot {what} itself: write to the program team")
    raise NotFound("workshop not found")


def require_association_admin(actor: Principal | None, association_id: uuid.UUID) -> Principal:
    actor = require_user(actor)
    if actor.has_role(str(association_id), ASSOCIATION_ADMIN) or is_ops_admin(actor):
        return actor
    if actor.roles_in(str(association_id)) or is_operator(actor):
        raise PermissionDenied("only an administrator of the association may do this")
    raise NotFound("association not found")


def association_and(
    actor: Principal | None, association_id: str, field: str, raw: str
) -> tuple[uuid.UUID, uuid.UUID]:
    """Parses the association and a resource id, and checks the caller administers the
    association before anything is read (a stranger learns nothing)."""
    v = Validator()
    association = check_uuid(v, "association_id", association_id)
    resource = check_uuid(v, field, raw)
    v.raise_if_any()
    assert association is not None and resource is not None
    require_association_admin(actor, association)
    return association, resource


def actor_id(actor: Principal | None) -> str:
    if actor is None:
        return "anonymous"
    return f"svc:{actor.subject}" if actor.is_service else actor.subject


@dataclass(frozen=True)
class OrganisationInfo:
    id: uuid.UUID
    kind: str
    name: str
    # Identity's short public code (a workshop's WS-CENTRE, an association's département).
    code: str = ""


class Directory(Protocol):
    """Identity's organisations, as membership needs them (kind and name)."""

    async def organisation(self, organisation_id: uuid.UUID) -> OrganisationInfo | None: ...


# ------------------------------------------------------------------------------------------------
# Mail
# ------------------------------------------------------------------------------------------------


async def queue_mail(
    session: AsyncSession,
    settings: MembershipSettings,
    *,
    to: str,
    subject: str,
    body: str,
    mail_id: uuid.UUID | None = None,
    kind: str = "membership",
    about: Mapping[SearchAttributeKey[Any], str | int] | None = None,
) -> None:
    """`kind` and `about` become the DeliverMail run's search attributes (docs/runbook.md)."""
    await enqueue_mail(
        session,
        outbox,
        mail_id=str(mail_id or uuid.uuid4()),
        to=[to],
        subject=subject,
        body=body,
        sealing_key=settings.mail_sealing_key,
        task_queue=settings.temporal_task_queue,
        kind=kind,
        about=about,
    )
