"""What every part of support's domain shares: roles, limits, field checks, paging, the caller.

Who sees what: a customer (customer_user of an erp_customer, partner_manager of a delivery
partner) sees the tickets of their own organisations and nothing else: another organisation's
ticket is "not found", never "forbidden", so no tenant learns what another holds. Operator staff
(support_agent, ops_admin) see every ticket; ops_admin alone manages plans, calendars, contracts
and categories.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import (
    DomainError,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Validator,
)
from services.kit.paging import Page, PageQuery, page_token as _page_token
from services.support.models import Audience, Kind, OrganisationKind, Priority, Side, Status, Ticket

SUPPORT_AGENT = "support_agent"
OPS_ADMIN = "ops_admin"
CUSTOMER_USER = "customer_user"
PARTNER_MANAGER = "partner_manager"
# The role that lets a member of each kind of organisation use support.
CUSTOMER_ROLE_BY_KIND = {
    OrganisationKind.ERP_CUSTOMER: CUSTOMER_USER,
    OrganisationKind.DELIVERY_PARTNER: PARTNER_MANAGER,
}
AUDIENCE_BY_KIND = {
    OrganisationKind.ERP_CUSTOMER: Audience.CUSTOMER,
    OrganisationKind.DELIVERY_PARTNER: Audience.PARTNER,
}

ACTIVE_STATUSES = (Status.OPEN, Status.IN_PROGRESS, Status.WAITING_ON_CUSTOMER)
PRIORITY_ORDER = (Priority.LOW, Priority.NORMAL, Priority.HIGH, Priority.URGENT)
TITLE_MAX = 200
TEXT_MAX = 20_000

CODE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def fold(text: str) -> str:
    """Search form of a text: accents stripped, case folded, spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(bare.casefold().split())


def check_text(
    v: Validator, field: str, value: str, limit: int, *, required: bool = True, lines: bool = False
) -> None:
    if required:
        v.require(field, value)
    v.check(
        len(value) <= limit, field, f"must be at most {limit} characters", code="string_too_long"
    )
    pattern = _CONTROL if lines else re.compile(r"[\x00-\x1f\x7f]")
    v.check(
        not pattern.search(value),
        field,
        "must not contain control characters",
        code="string_pattern_mismatch",
    )


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
    """An id to look up: malformed (or missing) is the caller's mistake, INVALID_ARGUMENT naming
    the field (house rule 7, as in every service); a well-formed unknown one stays NOT_FOUND."""
    v = Validator()
    parsed = parse_uuid(v, field, raw)
    v.raise_if_any()
    assert parsed is not None
    return parsed


def optional_email(v: Validator, field: str, raw: str) -> str | None:
    if not raw.strip():
        return None
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized
    except EmailNotValidError as error:
        v.check(False, field, f"is not a valid e-mail address: {error}", code="value_error")
        return None


def constraint_name(error: IntegrityError) -> str:
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
        name = constraint_name(error)
        for constraint, domain_error in taken.items():
            if constraint in name:
                raise domain_error from None
        raise


def parse_priority(v: Validator, raw: str, *, default: Priority | None = None) -> Priority | None:
    if not raw:
        if default is None:
            v.require("priority", raw)
        return default
    if raw not in {p.value for p in Priority}:
        v.check(False, "priority", "must be low, normal, high or urgent")
        return None
    return Priority(raw)


def parse_kind(v: Validator, raw: str, *, default: Kind | None = None) -> Kind | None:
    if not raw:
        if default is None:
            v.require("kind", raw)
        return default
    if raw not in {k.value for k in Kind}:
        v.check(False, "kind", "must be support or consulting")
        return None
    return Kind(raw)


def require_active(ticket: Ticket) -> None:
    if ticket.status in (Status.FINISHED, Status.CANCELLED):
        raise FailedPrecondition(f"the ticket is {ticket.status}", reason="ticket_closed")


# --------------------------------------------------------------------------------------------
# Pagination (keyset, opaque tokens)
# --------------------------------------------------------------------------------------------


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


def aware(raw: str) -> datetime:
    moment = datetime.fromisoformat(raw)
    if moment.tzinfo is None:
        raise ValueError(raw)
    return moment


# --------------------------------------------------------------------------------------------
# Who is calling
# --------------------------------------------------------------------------------------------


def require_user(actor: Principal | None) -> Principal:
    if actor is None:
        raise Unauthenticated("authentication required")
    if actor.is_service:
        raise PermissionDenied("this call is for signed-in users, not services")
    return actor


def is_agent(actor: Principal | None) -> bool:
    return (
        actor is not None and not actor.is_service and actor.has_any_role(SUPPORT_AGENT, OPS_ADMIN)
    )


def require_agent(actor: Principal | None) -> Principal:
    actor = require_user(actor)
    if not is_agent(actor):
        raise PermissionDenied("only the support team may do this")
    return actor


def require_admin(actor: Principal | None) -> Principal:
    actor = require_user(actor)
    if not actor.has_any_role(OPS_ADMIN):
        raise PermissionDenied("only an operations admin may do this")
    return actor


def customer_organisations(actor: Principal) -> set[uuid.UUID]:
    """Organisations in which the caller holds a customer role (customer_user, partner_manager)."""
    found: set[uuid.UUID] = set()
    for organisation, roles in actor.memberships.items():
        if roles & {CUSTOMER_USER, PARTNER_MANAGER}:
            try:
                found.add(uuid.UUID(organisation))
            except ValueError:
                continue
    return found


def side_of(actor: Principal, ticket: Ticket) -> Side:
    """Which side of the conversation the caller is on for this ticket (NOT_FOUND if neither)."""
    if ticket.organisation_id in customer_organisations(actor):
        return Side.CUSTOMER
    if is_agent(actor):
        return Side.AGENT
    raise NotFound("ticket not found")


async def ticket_for(
    session: AsyncSession, actor: Principal | None, ticket_id: str, *, lock: bool = False
) -> tuple[Ticket, Side]:
    actor = require_user(actor)
    ticket = await session.get(
        Ticket, uuid_or_raise("ticket_id", ticket_id), with_for_update=lock or None
    )
    if ticket is None:
        raise NotFound("ticket not found")
    return ticket, side_of(actor, ticket)
