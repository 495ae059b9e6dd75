"""Groups' rules: relationships, available clients, client groups, employee assignments, and the
process requests that turn them into access grants.

Every function takes the caller's session keyword-only and never commits: the servicer (or the
worker's call) owns the transaction, so a refused request leaves nothing half-written. Time comes
in as `now`; the caller is `actor`, the verified principal.

Access itself is never written here in the request: a change records what the group should be
(members, assignments) plus a process request and its outbox row, in the same transaction. The
Delegation workflow then calls `apply_batch` until the request is done; each batch reconciles a
slice of program accounts with the group as it is at that moment, in one SQL statement, so the
requests of one group converge whatever order they run in (docs/groups.md).
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import Uuid, any_, bindparam, delete, func, or_, select, text
from sqlalchemy.dialects.postgresql import ARRAY, insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.groups.models import (
    ClientBusiness,
    ClientGroup,
    DelegatedRole,
    EmployeeAssignment,
    GroupMember,
    Operation,
    ProcessRequest,
    ProcessRequestClient,
    ProcessRequestFailure,
    ProgramAccount,
    ProgramAccountStatus,
    Relationship,
    RelationshipStatus,
    RequestStatus,
    Scope,
    outbox,
)
from services.kit.auth import Principal
from services.kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Validator,
)
from services.kit.outbox import enqueue
from services.kit.paging import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Page,
    PageQuery,
    keyset_after as _after,
    page_token as _page_token,
    parse_page as _parse_page,
)
from services.kit.temporal import GROUP, PROCESS_REQUEST_ID

T = TypeVar("T")

BUSINESS_ACCOUNT_MANAGER = "business_account_manager"
OPS_ADMIN = "ops_admin"
# Employees holding one of these roles in the provider may be assigned to its groups.
ASSIGNABLE_ROLES = frozenset(role.value for role in DelegatedRole)
DELETE_WORDS = frozenset({"SUPPRIMER", "DELETE"})
CONFIRM_WORDS = frozenset({"CONFIRMER", "CONFIRM"})

DELEGATION_WORKFLOW = "Delegation"
EXPIRY_WORKFLOW = "RelationshipExpiry"
SYSTEM_INITIATOR = "system"

# Caps on one call's lists: bounds on what a request can make the service hold, not rules.
MAX_CLIENTS_PER_CALL = 10_000
MAX_EMPLOYEES_PER_CALL = 500
MAX_RECORDS_PER_CALL = 50_000
MAX_BATCH = 50_000
NAME_MAX = 100
NUMBER_PATTERN = re.compile(r"^[A-Za-z0-9-]{1,32}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NIL = uuid.UUID(int=0)

CLOSED_REASON = "program_account_closed"
CLOSED_MESSAGE = "The program account is closed: no access can be granted on it."
BATCH_FAILED_REASON = "batch_failed"


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def fold(value: str) -> str:
    """Search form of a name: accents stripped, case folded, spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", value)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(bare.casefold().split())


def _among(column: Any, values: Iterable[uuid.UUID]) -> Any:
    """`column = ANY($1)` with one array parameter: any number of ids, one bind, one plan."""
    return column == any_(bindparam(None, list(values), type_=ARRAY(Uuid)))


def _clean(value: str) -> str:
    return " ".join(value.split())


def _parse_uuid(v: Validator, field_name: str, raw: str) -> uuid.UUID | None:
    if not raw.strip():
        v.require(field_name, raw)
        return None
    try:
        return uuid.UUID(raw.strip())
    except ValueError:
        v.check(False, field_name, "must be a UUID")
        return None


def _uuid_or_raise(field_name: str, raw: str) -> uuid.UUID:
    v = Validator()
    parsed = _parse_uuid(v, field_name, raw)
    v.raise_if_any()
    assert parsed is not None
    return parsed


def _uuid_list(v: Validator, field_name: str, raws: Sequence[str], limit: int) -> list[uuid.UUID]:
    """Parses a list of ids, naming each bad or repeated one (`client_ids[2]`)."""
    v.check(len(raws) <= limit, field_name, f"must hold at most {limit} ids")
    parsed: list[uuid.UUID] = []
    seen: set[uuid.UUID] = set()
    for index, raw in enumerate(raws[:limit]):
        value = _parse_uuid(v, f"{field_name}[{index}]", raw)
        if value is None:
            continue
        if value in seen:
            v.check(False, f"{field_name}[{index}]", "is listed twice")
            continue
        seen.add(value)
        parsed.append(value)
    return parsed


def _check_group_name(v: Validator, name: str) -> None:
    v.require("name", name)
    v.check(len(name) <= NAME_MAX, "name", f"must be at most {NAME_MAX} characters")
    v.check(not _CONTROL.search(name), "name", "must not contain control characters")


def _constraint(error: IntegrityError) -> str:
    for candidate in (error.orig, getattr(error.orig, "__cause__", None)):
        name = getattr(candidate, "constraint_name", None)
        if isinstance(name, str):
            return name
    return str(error.orig)


def format_cursor(client_id: uuid.UUID | None, account_id: uuid.UUID | None) -> str:
    if client_id is None or account_id is None:
        return ""
    return f"{client_id}:{account_id}"


def parse_cursor(raw: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    if not raw:
        return None
    client, _, account = raw.partition(":")
    try:
        return uuid.UUID(client), uuid.UUID(account)
    except ValueError:
        raise InvalidArgument([("after_cursor", "is not a cursor of this service")]) from None


def delegation_workflow_id(process_request_id: uuid.UUID, attempt: int) -> str:
    """`delegation/<id>` for the first attempt; a retry is a new run with its own id."""
    base = f"delegation/{process_request_id}"
    return base if attempt == 1 else f"{base}/attempt-{attempt}"


def expiry_workflow_id(relationship_id: uuid.UUID, term: int) -> str:
    return f"relationship-expiry/{relationship_id}/{term}"


# --------------------------------------------------------------------------------------------
# Pagination (keyset; the token is base64 of the list's name and the last sort key)
# --------------------------------------------------------------------------------------------


def _paged(
    rows: list[T], page: PageQuery, list_name: str, key: Callable[[T], Sequence[object]]
) -> Page[T]:
    token = ""
    if len(rows) > page.size:
        rows = rows[: page.size]
        token = _page_token(list_name, key(rows[-1]))
    return Page(items=rows, next_page_token=token)


def _timestamp(raw: str) -> datetime:
    parsed = datetime.fromisoformat(raw)
    if parsed.tzinfo is None:
        raise ValueError(raw)
    return parsed


# --------------------------------------------------------------------------------------------
# Authorisation
# --------------------------------------------------------------------------------------------


def _require(actor: Principal | None) -> Principal:
    if actor is None:
        raise Unauthenticated("authentication required")
    return actor


def is_manager(actor: Principal, provider_id: uuid.UUID) -> bool:
    """The provider's business_account_manager, and only them (services and operators too are
    refused: a provider's groups are its own business)."""
    return not actor.is_service and actor.has_role(str(provider_id), BUSINESS_ACCOUNT_MANAGER)


def _provider_for_manager(actor: Principal | None, raw_provider_id: str) -> uuid.UUID:
    """For provider-level pages: PERMISSION_DENIED unless the caller is the provider's manager."""
    actor = _require(actor)
    provider_id = _uuid_or_raise("provider_id", raw_provider_id)
    if not is_manager(actor, provider_id):
        raise PermissionDenied(
            "only the service provider's business account manager may manage its client groups"
        )
    return provider_id


def _group_not_found() -> NotFound:
    return NotFound("group not found", reason="group_not_found")


async def _group_for_manager(
    session: AsyncSession,
    actor: Principal | None,
    raw_provider_id: str,
    raw_group_id: str,
    *,
    lock: bool = False,
) -> ClientGroup:
    """A live group of the provider, for its manager; NOT_FOUND for anyone else, so that nobody
    learns whether a group exists (not even another provider's manager)."""
    actor = _require(actor)
    v = Validator()
    provider_id = _parse_uuid(v, "provider_id", raw_provider_id)
    group_id = _parse_uuid(v, "group_id", raw_group_id)
    v.raise_if_any()
    assert provider_id is not None and group_id is not None
    if not is_manager(actor, provider_id):
        raise _group_not_found()
    query = select(ClientGroup).where(
        ClientGroup.id == group_id,
        ClientGroup.provider_id == provider_id,
        ClientGroup.deleted_at.is_(None),
    )
    if lock:
        query = query.with_for_update()
    group = (await session.execute(query)).scalar_one_or_none()
    if group is None:
        raise _group_not_found()
    return group


def require_internal(actor: Principal | None) -> Principal:
    """Recording calls: a service (integrations, demo data) or an ops_admin, never another user."""
    actor = _require(actor)
    if actor.is_service or actor.has_any_role(OPS_ADMIN):
        return actor
    raise PermissionDenied("this call is for internal services and operators")


def require_service(actor: Principal | None) -> Principal:
    """The worker's calls: a service token only; user tokens are refused."""
    actor = _require(actor)
    if not actor.is_service:
        raise PermissionDenied("this call is for internal services only")
    return actor


# --------------------------------------------------------------------------------------------
# The directory of employees (identity, over gRPC)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    id: uuid.UUID
    username: str
    first_name: str
    last_name: str
    active: bool
    memberships: dict[str, frozenset[str]]

    def roles_in(self, organisation_id: uuid.UUID) -> frozenset[str]:
        return self.memberships.get(str(organisation_id), frozenset())

    def assignable_in(self, provider_id: uuid.UUID) -> bool:
        """An active employee holding program_account_manager, editor or read_only, and not the
        business_account_manager (who already sees every client)."""
        roles = self.roles_in(provider_id)
        return (
            self.active and bool(roles & ASSIGNABLE_ROLES) and BUSINESS_ACCOUNT_MANAGER not in roles
        )


class Directory(Protocol):
    """Who the provider's people are; identity answers, with the caller's own token."""

    async def people(self, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Person]:
        """The people the caller may see among `user_ids` (others are simply absent)."""
        ...

    async def members(
        self, provider_id: uuid.UUID, roles: Sequence[str], page_size: int, page_token: str
    ) -> tuple[list[Person], str]:
        """Active holders of one of `roles` in the provider, by username; and the next token."""
        ...


# --------------------------------------------------------------------------------------------
# Views
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientView:
    id: uuid.UUID
    name: str
    program_accounts: int


@dataclass(frozen=True)
class RelationshipView:
    relationship: Relationship
    client: ClientView
    group_id: uuid.UUID | None


@dataclass(frozen=True)
class AssignmentView:
    employee_id: uuid.UUID
    username: str
    role: str
    group_id: uuid.UUID
    group_name: str


@dataclass(frozen=True)
class GroupView:
    group: ClientGroup
    clients: int
    program_accounts: int
    assignments: list[AssignmentView]


@dataclass(frozen=True)
class AccessChange:
    employee_id: uuid.UUID
    username: str
    role_before: str | None
    role_after: str | None
    accounts_before: int
    accounts_after: int
    granted: int
    revoked: int
    role_changed: int


@dataclass(frozen=True)
class AccessSummary:
    changes: list[AccessChange]
    clients_added: int = 0
    clients_removed: int = 0
    accounts_added: int = 0
    accounts_removed: int = 0


@dataclass(frozen=True)
class UpdateResult:
    group: GroupView
    summary: AccessSummary
    requests: list[ProcessRequest]


@dataclass(frozen=True)
class EmployeeView:
    person: Person
    roles: list[str]
    assignments: list[AssignmentView]


@dataclass(frozen=True)
class FailureView:
    failure: ProcessRequestFailure
    number: str
    client_name: str


# --------------------------------------------------------------------------------------------
# Counting program accounts
# --------------------------------------------------------------------------------------------


async def _accounts_by_client(
    session: AsyncSession, client_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, int]:
    ids = list(client_ids)
    if not ids:
        return {}
    rows = await session.execute(
        select(ProgramAccount.client_id, func.count())
        .where(_among(ProgramAccount.client_id, ids))
        .group_by(ProgramAccount.client_id)
    )
    counts: dict[uuid.UUID, int] = dict.fromkeys(ids, 0)
    counts.update({client: int(count) for client, count in rows.all()})
    return counts


async def _group_account_count(session: AsyncSession, group_id: uuid.UUID) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(GroupMember)
        .join(ProgramAccount, ProgramAccount.client_id == GroupMember.client_id)
        .where(GroupMember.group_id == group_id)
    )
    return int(count or 0)


async def _client_views(
    session: AsyncSession, clients: Sequence[ClientBusiness]
) -> list[ClientView]:
    counts = await _accounts_by_client(session, (c.id for c in clients))
    return [ClientView(c.id, c.name, counts.get(c.id, 0)) for c in clients]


async def _group_views(
    session: AsyncSession,
    groups: Sequence[ClientGroup],
    *,
    accounts: dict[uuid.UUID, int] | None = None,
) -> list[GroupView]:
    """Groups with their counts; `accounts`: program account counts the caller already has."""
    ids = [g.id for g in groups]
    if not ids:
        return []
    clients = dict(
        (
            await session.execute(
                select(GroupMember.group_id, func.count())
                .where(GroupMember.group_id.in_(ids))
                .group_by(GroupMember.group_id)
            )
        ).all()
    )
    if accounts is None:
        accounts = dict(
            (
                await session.execute(
                    select(GroupMember.group_id, func.count())
                    .join(ProgramAccount, ProgramAccount.client_id == GroupMember.client_id)
                    .where(GroupMember.group_id.in_(ids))
                    .group_by(GroupMember.group_id)
                )
            ).all()
        )
    names = {g.id: g.name for g in groups}
    assignments: dict[uuid.UUID, list[AssignmentView]] = {g: [] for g in ids}
    rows = await session.execute(
        select(EmployeeAssignment)
        .where(EmployeeAssignment.group_id.in_(ids))
        .order_by(func.lower(EmployeeAssignment.username), EmployeeAssignment.employee_id)
    )
    for a in rows.scalars():
        assignments[a.group_id].append(
            AssignmentView(a.employee_id, a.username, a.role, a.group_id, names[a.group_id])
        )
    return [
        GroupView(g, int(clients.get(g.id, 0)), int(accounts.get(g.id, 0)), assignments[g.id])
        for g in groups
    ]


# --------------------------------------------------------------------------------------------
# Relationships and available clients
# --------------------------------------------------------------------------------------------


def _active_relationship(provider_id: uuid.UUID, now: datetime) -> Any:
    """An active relationship: fully approved and not expired (its timer may be seconds late)."""
    return (
        (Relationship.provider_id == provider_id)
        & (Relationship.status == RelationshipStatus.ACTIVE.value)
        & (or_(Relationship.expires_at.is_(None), Relationship.expires_at > now))
    )


async def list_relationships(
    *,
    session: AsyncSession,
    actor: Principal | None,
    provider_id: str,
    status: str,
    page_size: int,
    page_token: str,
) -> Page[RelationshipView]:
    """The provider's relationships by client name, with the group each client is in."""
    provider = _provider_for_manager(actor, provider_id)
    v = Validator()
    if status:
        v.check(
            status in {s.value for s in RelationshipStatus},
            "status",
            "is not a relationship status",
        )
    page = _parse_page(v, "relationships", page_size, page_token, [str, uuid.UUID])
    v.raise_if_any()
    columns = [ClientBusiness.search_name, ClientBusiness.id]
    query = (
        select(Relationship, ClientBusiness, GroupMember.group_id)
        .join(ClientBusiness, ClientBusiness.id == Relationship.client_id)
        .outerjoin(
            GroupMember,
            (GroupMember.provider_id == Relationship.provider_id)
            & (GroupMember.client_id == Relationship.client_id),
        )
        .where(Relationship.provider_id == provider, *_after(page, columns))
        .order_by(*columns)
        .limit(page.size + 1)
    )
    if status:
        query = query.where(Relationship.status == status)
    rows = list((await session.execute(query)).all())
    paged = _paged(rows, page, "relationships", lambda r: (r[1].search_name, r[1].id))
    views = await _client_views(session, [r[1] for r in paged.items])
    return Page(
        [RelationshipView(r[0], view, r[2]) for r, view in zip(paged.items, views, strict=True)],
        paged.next_page_token,
    )


def _name_filter(query: str) -> Any:
    folded = fold(query)
    if not folded:
        return None
    escaped = folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return ClientBusiness.search_name.like(f"%{escaped}%", escape="\\")


async def list_available_clients(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    provider_id: str,
    query: str,
    page_size: int,
    page_token: str,
) -> Page[ClientView]:
    """Clients with an active relationship and in none of the provider's groups, by name."""
    provider = _provider_for_manager(actor, provider_id)
    v = Validator()
    v.check(len(query) <= 200, "query", "must be at most 200 characters")
    page = _parse_page(v, "available", page_size, page_token, [str, uuid.UUID])
    v.raise_if_any()
    columns = [ClientBusiness.search_name, ClientBusiness.id]
    in_a_group = select(GroupMember.client_id).where(GroupMember.provider_id == provider)
    statement = (
        select(ClientBusiness)
        .join(Relationship, Relationship.client_id == ClientBusiness.id)
        .where(
            _active_relationship(provider, now),
            ClientBusiness.id.not_in(in_a_group),
            *_after(page, columns),
        )
        .order_by(*columns)
        .limit(page.size + 1)
    )
    if (name := _name_filter(query)) is not None:
        statement = statement.where(name)
    rows = list((await session.execute(statement)).scalars())
    paged = _paged(rows, page, "available", lambda c: (c.search_name, c.id))
    return Page(await _client_views(session, paged.items), paged.next_page_token)


async def _check_clients_available(
    session: AsyncSession,
    provider_id: uuid.UUID,
    now: datetime,
    field_name: str,
    client_ids: Sequence[uuid.UUID],
) -> None:
    """Each client has an active relationship and no group of this provider.

    The relationships are locked (FOR SHARE) until the transaction ends, so an expiry cannot slip
    between this check and the insert; the unique (provider_id, client_id) of group_members is
    what settles two concurrent requests for one client.
    """
    active = set(
        (
            await session.execute(
                select(Relationship.client_id)
                .where(
                    _active_relationship(provider_id, now),
                    _among(Relationship.client_id, client_ids),
                )
                .with_for_update(read=True)
            )
        ).scalars()
    )
    taken = dict(
        (
            await session.execute(
                select(GroupMember.client_id, ClientGroup.name)
                .join(ClientGroup, ClientGroup.id == GroupMember.group_id)
                .where(
                    GroupMember.provider_id == provider_id,
                    _among(GroupMember.client_id, client_ids),
                )
            )
        ).all()
    )
    missing = [
        (f"{field_name}[{i}]", "has no active business relationship with this provider")
        for i, client in enumerate(client_ids)
        if client not in active
    ]
    if missing:
        raise InvalidArgument(missing)
    clashes = [
        (f"{field_name}[{i}]", f"is already in the group {taken[client]!r}")
        for i, client in enumerate(client_ids)
        if client in taken
    ]
    if clashes:
        raise _client_taken(clashes)


def _client_taken(violations: list[tuple[str, str]] | None = None) -> AlreadyExists:
    return AlreadyExists(
        "a client is already in a group of this provider (a client belongs to one group at most)",
        reason="client_already_grouped",
        violations=violations or [],
    )


async def _insert_members(
    session: AsyncSession,
    group: ClientGroup,
    now: datetime,
    client_ids: Sequence[uuid.UUID],
) -> None:
    """Adds clients; a concurrent request that took one of them first makes this ALREADY_EXISTS."""
    if not client_ids:
        return
    try:
        async with session.begin_nested():
            await session.execute(
                pg_insert(GroupMember),
                [
                    {
                        "group_id": group.id,
                        "client_id": client,
                        "provider_id": group.provider_id,
                        "added_at": now,
                    }
                    for client in client_ids
                ],
            )
    except IntegrityError as error:
        if "uq_group_members_provider_id" in _constraint(error):
            raise _client_taken() from None
        raise


# --------------------------------------------------------------------------------------------
# Groups
# --------------------------------------------------------------------------------------------


async def _check_name_free(
    session: AsyncSession, provider_id: uuid.UUID, name: str, *, other_than: uuid.UUID | None = None
) -> None:
    query = select(ClientGroup.deleted_at).where(
        ClientGroup.provider_id == provider_id, func.lower(ClientGroup.name) == name.lower()
    )
    if other_than is not None:
        query = query.where(ClientGroup.id != other_than)
    clash = (await session.execute(query)).first()
    if clash is not None:
        raise _name_taken(deleted=clash.deleted_at is not None)


def _name_taken(*, deleted: bool) -> AlreadyExists:
    if deleted:
        why = "belongs to a previously deleted group of this provider; choose another name"
        return AlreadyExists(
            f"name: {why}", reason="group_name_deleted", violations=[("name", why)]
        )
    why = "is already the name of a group of this provider"
    return AlreadyExists(f"name: {why}", reason="group_name_taken", violations=[("name", why)])


async def _flush_name(session: AsyncSession, provider_id: uuid.UUID, name: str) -> None:
    """Flushes a new or renamed group; a concurrent twin taking the name first is reported."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as error:
        if "uq_client_groups_provider_name" in _constraint(error):
            raise _name_taken(deleted=False) from None
        raise


async def create_group(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    provider_id: str,
    name: str,
    client_ids: Sequence[str],
) -> GroupView:
    provider = _provider_for_manager(actor, provider_id)
    assert actor is not None
    v = Validator()
    name = _clean(name)
    _check_group_name(v, name)
    clients = _uuid_list(v, "client_ids", client_ids, MAX_CLIENTS_PER_CALL)
    v.check(bool(client_ids), "client_ids", "select at least one client")
    v.raise_if_any()
    await _check_name_free(session, provider, name)
    await _check_clients_available(session, provider, now, "client_ids", clients)
    group = ClientGroup(
        id=uuid.uuid4(),
        provider_id=provider,
        name=name,
        created_at=now,
        updated_at=now,
        deleted_at=None,
        created_by=actor.subject,
    )
    session.add(group)
    await _flush_name(session, provider, name)
    await _insert_members(session, group, now, clients)
    [view] = await _group_views(session, [group])
    return view


async def get_group(
    *, session: AsyncSession, actor: Principal | None, provider_id: str, group_id: str
) -> GroupView:
    group = await _group_for_manager(session, actor, provider_id, group_id)
    [view] = await _group_views(session, [group])
    return view


async def list_groups(
    *,
    session: AsyncSession,
    actor: Principal | None,
    provider_id: str,
    page_size: int,
    page_token: str,
) -> Page[GroupView]:
    provider = _provider_for_manager(actor, provider_id)
    v = Validator()
    page = _parse_page(v, "groups", page_size, page_token, [str, uuid.UUID])
    v.raise_if_any()
    columns = [func.lower(ClientGroup.name), ClientGroup.id]
    rows = list(
        (
            await session.execute(
                select(ClientGroup)
                .where(
                    ClientGroup.provider_id == provider,
                    ClientGroup.deleted_at.is_(None),
                    *_after(page, columns),
                )
                .order_by(*columns)
                .limit(page.size + 1)
            )
        ).scalars()
    )
    paged = _paged(rows, page, "groups", lambda g: (g.name.lower(), g.id))
    return Page(await _group_views(session, paged.items), paged.next_page_token)


async def list_group_clients(
    *,
    session: AsyncSession,
    actor: Principal | None,
    provider_id: str,
    group_id: str,
    query: str,
    page_size: int,
    page_token: str,
) -> Page[ClientView]:
    group = await _group_for_manager(session, actor, provider_id, group_id)
    v = Validator()
    v.check(len(query) <= 200, "query", "must be at most 200 characters")
    page = _parse_page(v, "group_clients", page_size, page_token, [str, uuid.UUID])
    v.raise_if_any()
    columns = [ClientBusiness.search_name, ClientBusiness.id]
    statement = (
        select(ClientBusiness)
        .join(GroupMember, GroupMember.client_id == ClientBusiness.id)
        .where(GroupMember.group_id == group.id, *_after(page, columns))
        .order_by(*columns)
        .limit(page.size + 1)
    )
    if (name := _name_filter(query)) is not None:
        statement = statement.where(name)
    rows = list((await session.execute(statement)).scalars())
    paged = _paged(rows, page, "group_clients", lambda c: (c.search_name, c.id))
    return Page(await _client_views(session, paged.items), paged.next_page_token)


def _check_word(v: Validator, confirmation: str, words: frozenset[str], example: str) -> None:
    if confirmation.strip().upper() not in words:
        others = " or ".join(sorted(words - {example}))
        v.check(False, "confirmation", f"type {example} (or {others}) to confirm")


@dataclass(frozen=True)
class _Plan:
    """A change to a group, checked, and the access it moves (counts only)."""

    rename: str | None
    add: list[uuid.UUID]
    remove: list[uuid.UUID]
    assign: dict[uuid.UUID, str]
    unassign: list[uuid.UUID]
    people: dict[uuid.UUID, Person]
    summary: AccessSummary
    had_assignments: bool
    has_assignments: bool
    # The group's program accounts once the change is saved (counted once, reused).
    accounts_after: int


async def _plan_update(
    session: AsyncSession,
    group: ClientGroup,
    now: datetime,
    *,
    name: str,
    add: list[uuid.UUID],
    remove: list[uuid.UUID],
    assign: dict[uuid.UUID, str],
    unassign: list[uuid.UUID],
    assign_fields: dict[uuid.UUID, str],
    people: dict[uuid.UUID, Person],
) -> _Plan:
    v = Validator()
    # Only the named clients are looked up: a group may hold thousands of clients.
    named = [*add, *remove]
    members = (
        set(
            (
                await session.execute(
                    select(GroupMember.client_id).where(
                        GroupMember.group_id == group.id, _among(GroupMember.client_id, named)
                    )
                )
            ).scalars()
        )
        if named
        else set()
    )
    assigned = {
        a.employee_id: a
        for a in (
            await session.execute(
                select(EmployeeAssignment).where(EmployeeAssignment.group_id == group.id)
            )
        ).scalars()
    }
    for i, client in enumerate(remove):
        v.check(client in members, f"remove_client_ids[{i}]", "is not in this group")
    for i, employee in enumerate(unassign):
        v.check(
            employee in assigned, f"unassign_employee_ids[{i}]", "is not assigned to this group"
        )
    for employee, field_name in assign_fields.items():
        person = people.get(employee)
        v.check(
            person is not None and person.assignable_in(group.provider_id),
            field_name,
            "is not an employee of this provider holding program_account_manager, editor or "
            "read_only (a business account manager already sees every client)",
        )
    v.raise_if_any()
    rename = name if name and name != group.name else None
    if rename is not None:
        await _check_name_free(session, group.provider_id, rename, other_than=group.id)
    new_clients = [c for c in add if c not in members]
    if new_clients:
        await _check_clients_available(session, group.provider_id, now, "add_client_ids", add)
    counts = await _accounts_by_client(session, [*new_clients, *remove])
    before = await _group_account_count(session, group.id)
    added = sum(counts.get(c, 0) for c in new_clients)
    removed = sum(counts.get(c, 0) for c in remove)
    after = before - removed + added
    changes: list[AccessChange] = []
    for employee in sorted(set(assigned) | set(assign), key=str):
        current = assigned.get(employee)
        role_before = current.role if current else None
        role_after = None if employee in unassign else assign.get(employee, role_before)
        username = people[employee].username if employee in people else current.username  # type: ignore[union-attr]
        if role_before is None:
            change = AccessChange(employee, username, None, role_after, 0, after, after, 0, 0)
        elif role_after is None:
            change = AccessChange(employee, username, role_before, None, before, 0, 0, before, 0)
        else:
            kept = before - removed
            change = AccessChange(
                employee,
                username,
                role_before,
                role_after,
                before,
                after,
                added,
                removed,
                kept if role_after != role_before else 0,
            )
        if change.granted or change.revoked or change.role_changed:
            changes.append(change)
    summary = AccessSummary(changes, len(new_clients), len(remove), added, removed)
    final_assigned = (set(assigned) | set(assign)) - set(unassign)
    return _Plan(
        rename=rename,
        add=new_clients,
        remove=remove,
        assign={
            e: r for e, r in assign.items() if assigned.get(e) is None or assigned[e].role != r
        },
        unassign=unassign,
        people=people,
        summary=summary,
        had_assignments=bool(assigned),
        has_assignments=bool(final_assigned),
        accounts_after=after,
    )


def _role(v: Validator, field_name: str, role: str) -> str | None:
    if role not in ASSIGNABLE_ROLES:
        v.check(False, field_name, "must be program_account_manager, editor or read_only")
        return None
    return role


async def update_group(
    *,
    session: AsyncSession,
    actor: Principal | None,
    directory: Directory,
    now: datetime,
    task_queue: str,
    provider_id: str,
    group_id: str,
    name: str,
    add_client_ids: Sequence[str],
    remove_client_ids: Sequence[str],
    assign: Sequence[tuple[str, str]],
    unassign_employee_ids: Sequence[str],
    confirmation: str,
    dry_run: bool,
) -> UpdateResult:
    """Saves a group's changes (CONFIRMER), or with `dry_run` only answers their access summary.

    Each kind of access change becomes its own process request: employees assigned (or whose
    role changes), employees unassigned, clients added (when someone is assigned), clients
    removed. The rows and the outbox entries are written in this one transaction.
    """
    group = await _group_for_manager(session, actor, provider_id, group_id)
    assert actor is not None
    v = Validator()
    name = _clean(name)
    if name:
        _check_group_name(v, name)
    add = _uuid_list(v, "add_client_ids", add_client_ids, MAX_CLIENTS_PER_CALL)
    remove = _uuid_list(v, "remove_client_ids", remove_client_ids, MAX_CLIENTS_PER_CALL)
    unassign = _uuid_list(v, "unassign_employee_ids", unassign_employee_ids, MAX_EMPLOYEES_PER_CALL)
    v.check(len(assign) <= MAX_EMPLOYEES_PER_CALL, "assign", "too many employees at once")
    roles: dict[uuid.UUID, str] = {}
    assign_fields: dict[uuid.UUID, str] = {}
    for i, (raw_employee, raw_role) in enumerate(assign[:MAX_EMPLOYEES_PER_CALL]):
        employee = _parse_uuid(v, f"assign[{i}].employee_id", raw_employee)
        role = _role(v, f"assign[{i}].role", raw_role)
        if employee is None or role is None:
            continue
        if employee in roles:
            v.check(False, f"assign[{i}].employee_id", "is listed twice")
            continue
        roles[employee] = role
        assign_fields[employee] = f"assign[{i}].employee_id"
    for i, client in enumerate(add):
        v.check(client not in remove, f"add_client_ids[{i}]", "is also listed for removal")
    for i, employee in enumerate(unassign):
        v.check(employee not in roles, f"unassign_employee_ids[{i}]", "is also listed to assign")
    if not (name or add or remove or roles or unassign) and not v.violations:
        v.check(False, "body", "nothing to change")
    if not dry_run:
        _check_word(v, confirmation, CONFIRM_WORDS, "CONFIRMER")
    v.raise_if_any()
    # Identity first, with no lock held; then the group is locked for the rest of the change.
    people = (
        await directory.people(sorted({*roles, *unassign}, key=str)) if roles or unassign else {}
    )
    group = await _group_for_manager(session, actor, provider_id, group_id, lock=not dry_run)
    plan = await _plan_update(
        session,
        group,
        now,
        name=name,
        add=add,
        remove=remove,
        assign=roles,
        unassign=unassign,
        assign_fields=assign_fields,
        people=people,
    )
    if dry_run:
        [view] = await _group_views(session, [group])
        return UpdateResult(view, plan.summary, [])
    in_flight = await _has_requests_in_flight(session, group.id)
    if plan.rename is not None:
        group.name = plan.rename
        await _flush_name(session, group.provider_id, plan.rename)
    group.updated_at = now
    if plan.remove:
        await session.execute(
            delete(GroupMember).where(
                GroupMember.group_id == group.id, _among(GroupMember.client_id, plan.remove)
            )
        )
    await _insert_members(session, group, now, plan.add)
    for employee, role in plan.assign.items():
        statement = pg_insert(EmployeeAssignment).values(
            group_id=group.id,
            employee_id=employee,
            provider_id=group.provider_id,
            username=plan.people[employee].username,
            role=role,
            assigned_at=now,
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[EmployeeAssignment.group_id, EmployeeAssignment.employee_id],
                set_={"role": role, "username": statement.excluded.username, "assigned_at": now},
            )
        )
    if plan.unassign:
        await session.execute(
            delete(EmployeeAssignment).where(
                EmployeeAssignment.group_id == group.id,
                EmployeeAssignment.employee_id.in_(plan.unassign),
            )
        )
    requests: list[ProcessRequest] = []
    initiator = (actor.subject, actor.username)
    if plan.assign:
        names = ", ".join(f"{plan.people[e].username} ({r})" for e, r in plan.assign.items())
        requests.append(
            await _record_request(
                session,
                now,
                task_queue,
                group,
                Operation.ASSIGN_EMPLOYEES,
                initiator,
                f"Assign {names}",
                employees=list(plan.assign),
                group_accounts=plan.accounts_after,
            )
        )
    if plan.unassign:
        names = ", ".join(
            plan.people[e].username if e in plan.people else str(e) for e in plan.unassign
        )
        requests.append(
            await _record_request(
                session,
                now,
                task_queue,
                group,
                Operation.UNASSIGN_EMPLOYEES,
                initiator,
                f"Unassign {names}",
                employees=list(plan.unassign),
                group_accounts=plan.accounts_after,
            )
        )
    if plan.add and plan.has_assignments:
        requests.append(
            await _record_request(
                session,
                now,
                task_queue,
                group,
                Operation.ADD_CLIENTS,
                initiator,
                f"Add {len(plan.add)} client(s)",
                clients=plan.add,
            )
        )
    if plan.remove and (plan.had_assignments or in_flight):
        requests.append(
            await _record_request(
                session,
                now,
                task_queue,
                group,
                Operation.REMOVE_CLIENTS,
                initiator,
                f"Remove {len(plan.remove)} client(s)",
                clients=plan.remove,
            )
        )
    [view] = await _group_views(session, [group], accounts={group.id: plan.accounts_after})
    return UpdateResult(view, plan.summary, requests)


async def delete_group(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    task_queue: str,
    provider_id: str,
    group_id: str,
    confirmation: str,
) -> ProcessRequest:
    """Deletes a group (SUPPRIMER): its clients become available, its access is revoked by a
    process request. The row stays, so the name is never reused."""
    v = Validator()
    _check_word(v, confirmation, DELETE_WORDS, "SUPPRIMER")
    group = await _group_for_manager(session, actor, provider_id, group_id, lock=True)
    v.raise_if_any()
    assert actor is not None
    clients = list(
        (
            await session.execute(
                select(GroupMember.client_id).where(GroupMember.group_id == group.id)
            )
        ).scalars()
    )
    await session.execute(delete(GroupMember).where(GroupMember.group_id == group.id))
    await session.execute(delete(EmployeeAssignment).where(EmployeeAssignment.group_id == group.id))
    group.deleted_at = now
    group.updated_at = now
    return await _record_request(
        session,
        now,
        task_queue,
        group,
        Operation.DELETE_GROUP,
        (actor.subject, actor.username),
        f"Delete the group and revoke its access ({len(clients)} client(s))",
        clients=clients,
    )


# --------------------------------------------------------------------------------------------
# Employees
# --------------------------------------------------------------------------------------------


async def _assignments_of(
    session: AsyncSession, provider_id: uuid.UUID, employees: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[AssignmentView]]:
    found: dict[uuid.UUID, list[AssignmentView]] = {e: [] for e in employees}
    if not employees:
        return found
    rows = await session.execute(
        select(EmployeeAssignment, ClientGroup.name)
        .join(ClientGroup, ClientGroup.id == EmployeeAssignment.group_id)
        .where(
            EmployeeAssignment.provider_id == provider_id,
            EmployeeAssignment.employee_id.in_(employees),
        )
        .order_by(func.lower(ClientGroup.name))
    )
    for a, group_name in rows.all():
        found[a.employee_id].append(
            AssignmentView(a.employee_id, a.username, a.role, a.group_id, group_name)
        )
    return found


async def list_employees(
    *,
    session: AsyncSession,
    actor: Principal | None,
    directory: Directory,
    provider_id: str,
    page_size: int,
    page_token: str,
) -> Page[EmployeeView]:
    """The employees who may be assigned (never a business account manager), with their groups."""
    provider = _provider_for_manager(actor, provider_id)
    v = Validator()
    v.check(
        0 <= page_size <= MAX_PAGE_SIZE, "page.page_size", f"must be between 0 and {MAX_PAGE_SIZE}"
    )
    v.raise_if_any()
    people, token = await directory.members(
        provider, sorted(ASSIGNABLE_ROLES), page_size or DEFAULT_PAGE_SIZE, page_token
    )
    eligible = [p for p in people if p.assignable_in(provider)]
    assignments = await _assignments_of(session, provider, [p.id for p in eligible])
    return Page(
        [
            EmployeeView(p, sorted(p.roles_in(provider) & ASSIGNABLE_ROLES), assignments[p.id])
            for p in eligible
        ],
        token,
    )


# --------------------------------------------------------------------------------------------
# Process requests
# --------------------------------------------------------------------------------------------


async def _has_requests_in_flight(session: AsyncSession, group_id: uuid.UUID) -> bool:
    found = await session.scalar(
        select(ProcessRequest.id)
        .where(
            ProcessRequest.group_id == group_id,
            ProcessRequest.status.in_(
                [RequestStatus.PENDING.value, RequestStatus.IN_PROGRESS.value]
            ),
        )
        .limit(1)
    )
    return found is not None


async def _record_request(
    session: AsyncSession,
    now: datetime,
    task_queue: str,
    group: ClientGroup,
    operation: Operation,
    initiator: tuple[str, str],
    summary: str,
    *,
    employees: list[uuid.UUID] | None = None,
    clients: Sequence[uuid.UUID] | None = None,
    group_accounts: int | None = None,
) -> ProcessRequest:
    """A process request and its workflow start (outbox), in the caller's transaction.

    With `clients`, the request walks those clients' program accounts (for every employee of
    the group); otherwise the group's, for `employees` only (`group_accounts`: how many, when the
    caller has counted them).
    """
    request_id = uuid.uuid4()
    scope = Scope.CLIENTS if clients is not None else Scope.GROUP
    request = ProcessRequest(
        id=request_id,
        provider_id=group.provider_id,
        group_id=group.id,
        group_name=group.name,
        operation=operation.value,
        initiator_id=initiator[0],
        initiator_name=initiator[1],
        status=RequestStatus.PENDING.value,
        scope=scope.value,
        employee_ids=employees,
        summary=summary,
        detail={},
        attempt=1,
        workflow_id=delegation_workflow_id(request_id, 1),
        done=0,
        total=0,
        failed=0,
        created_at=now,
        updated_at=now,
    )
    session.add(request)
    await session.flush()
    if clients is not None:
        if clients:
            await session.execute(
                pg_insert(ProcessRequestClient),
                [{"process_request_id": request_id, "client_id": c} for c in clients],
            )
        total = await session.scalar(
            select(func.count())
            .select_from(ProcessRequestClient)
            .join(ProgramAccount, ProgramAccount.client_id == ProcessRequestClient.client_id)
            .where(ProcessRequestClient.process_request_id == request_id)
        )
    elif group_accounts is not None:
        total = group_accounts
    else:
        total = await _group_account_count(session, group.id)
    request.total = int(total or 0)
    await _enqueue_delegation(session, task_queue, request)
    return request


async def _enqueue_delegation(
    session: AsyncSession, task_queue: str, request: ProcessRequest
) -> None:
    await enqueue(
        session,
        outbox,
        workflow=DELEGATION_WORKFLOW,
        workflow_id=request.workflow_id,
        argument={
            "process_request_id": str(request.id),
            "attempt": request.attempt,
            "group_name": request.group_name,
        },
        task_queue=task_queue,
        search_attributes={
            PROCESS_REQUEST_ID.name: str(request.id),
            GROUP.name: request.group_name,
        },
    )


_STATUSES = {s.value for s in RequestStatus}


async def list_process_requests(
    *,
    session: AsyncSession,
    actor: Principal | None,
    provider_id: str,
    status: str,
    group_id: str,
    group_name: str,
    page_size: int,
    page_token: str,
) -> Page[ProcessRequest]:
    """Newest first; by status, by group (id or name, deleted groups included)."""
    provider = _provider_for_manager(actor, provider_id)
    v = Validator()
    if status:
        v.check(status in _STATUSES, "status", "is not a process request status")
    group = _parse_uuid(v, "group_id", group_id) if group_id else None
    v.check(len(group_name) <= NAME_MAX, "group_name", f"must be at most {NAME_MAX} characters")
    page = _parse_page(v, "requests", page_size, page_token, [_timestamp, uuid.UUID])
    v.raise_if_any()
    columns = [ProcessRequest.created_at, ProcessRequest.id]
    query = select(ProcessRequest).where(
        ProcessRequest.provider_id == provider, *_after(page, columns, descending=True)
    )
    if status:
        query = query.where(ProcessRequest.status == status)
    if group is not None:
        query = query.where(ProcessRequest.group_id == group)
    if group_name.strip():
        query = query.where(func.lower(ProcessRequest.group_name) == _clean(group_name).lower())
    rows = list(
        (
            await session.execute(
                query.order_by(ProcessRequest.created_at.desc(), ProcessRequest.id.desc()).limit(
                    page.size + 1
                )
            )
        ).scalars()
    )
    return _paged(rows, page, "requests", lambda r: (r.created_at.isoformat(), r.id))


async def _request_for_manager(
    session: AsyncSession,
    actor: Principal | None,
    provider_id: str,
    process_request_id: str,
    *,
    lock: bool = False,
) -> ProcessRequest:
    provider = _provider_for_manager(actor, provider_id)
    request_id = _uuid_or_raise("process_request_id", process_request_id)
    query = select(ProcessRequest).where(
        ProcessRequest.id == request_id, ProcessRequest.provider_id == provider
    )
    if lock:
        query = query.with_for_update()
    request = (await session.execute(query)).scalar_one_or_none()
    if request is None:
        raise NotFound("process request not found", reason="process_request_not_found")
    return request


async def get_process_request(
    *, session: AsyncSession, actor: Principal | None, provider_id: str, process_request_id: str
) -> ProcessRequest:
    return await _request_for_manager(session, actor, provider_id, process_request_id)


async def list_failures(
    *,
    session: AsyncSession,
    actor: Principal | None,
    provider_id: str,
    process_request_id: str,
    page_size: int,
    page_token: str,
) -> Page[FailureView]:
    """The failures of the request's latest attempt, by client and program account."""
    request = await _request_for_manager(session, actor, provider_id, process_request_id)
    v = Validator()
    page = _parse_page(v, "failures", page_size, page_token, [uuid.UUID, uuid.UUID])
    v.raise_if_any()
    columns = [ProcessRequestFailure.client_id, ProcessRequestFailure.program_account_id]
    rows = (
        await session.execute(
            select(ProcessRequestFailure, ProgramAccount.number, ClientBusiness.name)
            .join(ProgramAccount, ProgramAccount.id == ProcessRequestFailure.program_account_id)
            .join(ClientBusiness, ClientBusiness.id == ProcessRequestFailure.client_id)
            .where(
                ProcessRequestFailure.process_request_id == request.id,
                ProcessRequestFailure.attempt == request.attempt,
                *_after(page, columns),
            )
            .order_by(*columns)
            .limit(page.size + 1)
        )
    ).all()
    views = [FailureView(f, number, name) for f, number, name in rows]
    return _paged(
        views, page, "failures", lambda f: (f.failure.client_id, f.failure.program_account_id)
    )


async def retry_process_request(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    task_queue: str,
    provider_id: str,
    process_request_id: str,
) -> ProcessRequest:
    """A failed request runs again for the program accounts that failed, and only those."""
    request = await _request_for_manager(session, actor, provider_id, process_request_id, lock=True)
    if request.status != RequestStatus.FAILED.value:
        raise FailedPrecondition(
            f"only a failed process request can be retried; this one is {request.status}",
            reason="process_request_not_failed",
        )
    failures = await session.scalar(
        select(func.count())
        .select_from(ProcessRequestFailure)
        .where(
            ProcessRequestFailure.process_request_id == request.id,
            ProcessRequestFailure.attempt == request.attempt,
        )
    )
    request.attempt += 1
    request.scope = Scope.FAILURES.value
    request.status = RequestStatus.PENDING.value
    request.workflow_id = delegation_workflow_id(request.id, request.attempt)
    request.cursor_client = request.cursor_account = None
    request.done = request.failed = 0
    request.total = int(failures or 0)
    request.updated_at = now
    request.finished_at = None
    await _enqueue_delegation(session, task_queue, request)
    return request


# --------------------------------------------------------------------------------------------
# Internal: recording clients, program accounts and relationships
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProgramAccountInput:
    id: str
    number: str
    status: str  # "" means active


@dataclass(frozen=True)
class ClientInput:
    id: str
    name: str
    program_accounts: list[ProgramAccountInput] = field(default_factory=list)


@dataclass(frozen=True)
class RecordedClients:
    clients: int
    program_accounts: int
    requests: list[ProcessRequest]


_ACCOUNT_STATUSES = {s.value for s in ProgramAccountStatus}


async def record_clients(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    task_queue: str,
    clients: Sequence[ClientInput],
) -> RecordedClients:
    """Upserts client businesses and their program accounts (one statement each, any size).

    A program account new to a client that is in a group with employees extends their access:
    a process request per such group does it.
    """
    actor = require_internal(actor)
    v = Validator()
    v.check(bool(clients), "clients", "is required")
    client_rows: dict[uuid.UUID, tuple[str, str]] = {}
    accounts: dict[uuid.UUID, tuple[uuid.UUID, str, str]] = {}
    total_accounts = sum(len(c.program_accounts) for c in clients)
    v.check(
        total_accounts <= MAX_RECORDS_PER_CALL,
        "clients",
        f"at most {MAX_RECORDS_PER_CALL} program accounts per call",
    )
    for i, client in enumerate(clients):
        client_id = _parse_uuid(v, f"clients[{i}].id", client.id)
        name = _clean(client.name)
        v.require(f"clients[{i}].name", name)
        v.check(len(name) <= 200, f"clients[{i}].name", "must be at most 200 characters")
        if client_id is None:
            continue
        v.check(client_id not in client_rows, f"clients[{i}].id", "is listed twice")
        client_rows[client_id] = (name, fold(name))
        for j, account in enumerate(client.program_accounts):
            where = f"clients[{i}].program_accounts[{j}]"
            account_id = _parse_uuid(v, f"{where}.id", account.id)
            v.check(
                bool(NUMBER_PATTERN.match(account.number)),
                f"{where}.number",
                "must be 1 to 32 letters, digits or '-'",
            )
            status = account.status or ProgramAccountStatus.ACTIVE.value
            v.check(status in _ACCOUNT_STATUSES, f"{where}.status", "must be active or closed")
            if account_id is not None:
                v.check(account_id not in accounts, f"{where}.id", "is listed twice")
                accounts[account_id] = (client_id, account.number, status)
    v.raise_if_any()
    client_ids = list(client_rows)
    await session.execute(
        text(
            """
            INSERT INTO client_businesses (id, name, search_name, created_at)
            SELECT c.id, c.name, c.search_name, :now
            FROM unnest(CAST(:ids AS uuid[]), CAST(:names AS text[]), CAST(:search AS text[]))
                 AS c(id, name, search_name)
            ON CONFLICT (id) DO UPDATE
                SET name = EXCLUDED.name, search_name = EXCLUDED.search_name
                WHERE (client_businesses.name, client_businesses.search_name)
                      IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.search_name)
            """
        ),
        {
            "ids": client_ids,
            "names": [client_rows[c][0] for c in client_ids],
            "search": [client_rows[c][1] for c in client_ids],
            "now": now,
        },
    )
    requests: list[ProcessRequest] = []
    if accounts:
        ids = list(accounts)
        inserted = await session.execute(
            text(
                """
                INSERT INTO program_accounts (id, client_id, number, status, created_at)
                SELECT a.id, a.client_id, a.number, a.status, :now
                FROM unnest(CAST(:ids AS uuid[]), CAST(:clients AS uuid[]),
                            CAST(:numbers AS text[]), CAST(:statuses AS text[]))
                     AS a(id, client_id, number, status)
                ON CONFLICT (id) DO UPDATE
                    SET number = EXCLUDED.number, status = EXCLUDED.status
                    WHERE program_accounts.client_id = EXCLUDED.client_id
                RETURNING client_id, (xmax = 0) AS inserted
                """
            ),
            {
                "ids": ids,
                "clients": [accounts[a][0] for a in ids],
                "numbers": [accounts[a][1] for a in ids],
                "statuses": [accounts[a][2] for a in ids],
                "now": now,
            },
        )
        rows = inserted.all()
        if len(rows) != len(ids):
            raise FailedPrecondition(
                "a program account id is already recorded for another client",
                reason="program_account_client_mismatch",
            )
        grown = {row.client_id for row in rows if row.inserted}
        if grown:
            requests = await _extend_groups(session, now, task_queue, grown, actor)
    return RecordedClients(len(client_rows), len(accounts), requests)


async def _extend_groups(
    session: AsyncSession,
    now: datetime,
    task_queue: str,
    clients: set[uuid.UUID],
    actor: Principal,
) -> list[ProcessRequest]:
    """New program accounts of grouped clients: their groups' employees get access to them."""
    rows = (
        await session.execute(
            select(GroupMember.group_id, GroupMember.client_id).where(
                _among(GroupMember.client_id, clients),
                GroupMember.group_id.in_(select(EmployeeAssignment.group_id)),
            )
        )
    ).all()
    by_group: dict[uuid.UUID, list[uuid.UUID]] = {}
    for group_id, client_id in rows:
        by_group.setdefault(group_id, []).append(client_id)
    requests = []
    for group_id, group_clients in sorted(by_group.items(), key=lambda item: str(item[0])):
        group = (
            await session.execute(
                select(ClientGroup).where(ClientGroup.id == group_id).with_for_update()
            )
        ).scalar_one()
        requests.append(
            await _record_request(
                session,
                now,
                task_queue,
                group,
                Operation.PROGRAM_ACCOUNTS_ADDED,
                (actor.subject, actor.username or SYSTEM_INITIATOR),
                f"New program accounts of {len(group_clients)} client(s)",
                clients=group_clients,
            )
        )
    return requests


@dataclass(frozen=True)
class RelationshipInput:
    provider_id: str
    client_id: str
    status: str
    expires_at: datetime | None


_RELATIONSHIP_STATUSES = {s.value for s in RelationshipStatus}


async def record_relationships(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    task_queue: str,
    relationships: Sequence[RelationshipInput],
) -> list[RelationshipView]:
    """Upserts relationships. An active one with an expiry date gets its timer (a workflow that
    sleeps until then); one that stops being active takes its client out of the provider's
    groups at once, revoking the access it gave."""
    actor = require_internal(actor)
    v = Validator()
    v.check(bool(relationships), "relationships", "is required")
    v.check(
        len(relationships) <= MAX_RECORDS_PER_CALL,
        "relationships",
        f"at most {MAX_RECORDS_PER_CALL} per call",
    )
    parsed: list[tuple[uuid.UUID, uuid.UUID, str, datetime | None]] = []
    seen: set[tuple[uuid.UUID, uuid.UUID]] = set()
    for i, record in enumerate(relationships):
        provider = _parse_uuid(v, f"relationships[{i}].provider_id", record.provider_id)
        client = _parse_uuid(v, f"relationships[{i}].client_id", record.client_id)
        v.check(
            record.status in _RELATIONSHIP_STATUSES,
            f"relationships[{i}].status",
            "must be pending, active or expired",
        )
        if provider is None or client is None:
            continue
        v.check((provider, client) not in seen, f"relationships[{i}]", "is listed twice")
        seen.add((provider, client))
        parsed.append((provider, client, record.status, record.expires_at))
    v.raise_if_any()
    known = set(
        (
            await session.execute(
                select(ClientBusiness.id).where(_among(ClientBusiness.id, {p[1] for p in parsed}))
            )
        ).scalars()
    )
    unknown = [
        (f"relationships[{i}].client_id", "is not a recorded client business")
        for i, p in enumerate(parsed)
        if p[1] not in known
    ]
    if unknown:
        raise InvalidArgument(unknown)
    existing = {
        (r.provider_id, r.client_id): r
        for r in (
            await session.execute(
                select(Relationship)
                .where(
                    _among(Relationship.provider_id, {p for p, _ in seen}),
                    _among(Relationship.client_id, {c for _, c in seen}),
                )
                .with_for_update()
            )
        ).scalars()
    }
    recorded: list[Relationship] = []
    leaving: dict[uuid.UUID, list[uuid.UUID]] = {}
    for provider, client, status, expires_at in parsed:
        relationship = existing.get((provider, client))
        if relationship is None:
            relationship = Relationship(
                id=uuid.uuid4(),
                provider_id=provider,
                client_id=client,
                status=status,
                expires_at=expires_at,
                term=1,
                created_at=now,
                updated_at=now,
            )
            session.add(relationship)
            changed = True
        else:
            changed = (relationship.status, relationship.expires_at) != (status, expires_at)
            if changed:
                if relationship.status == RelationshipStatus.ACTIVE.value and status != (
                    RelationshipStatus.ACTIVE.value
                ):
                    leaving.setdefault(provider, []).append(client)
                relationship.status = status
                relationship.expires_at = expires_at
                relationship.term += 1
                relationship.updated_at = now
        recorded.append(relationship)
        if changed and status == RelationshipStatus.ACTIVE.value and expires_at is not None:
            await session.flush()
            await enqueue(
                session,
                outbox,
                workflow=EXPIRY_WORKFLOW,
                workflow_id=expiry_workflow_id(relationship.id, relationship.term),
                argument={
                    "relationship_id": str(relationship.id),
                    "term": relationship.term,
                    "expire_time": expires_at.isoformat(),
                },
                task_queue=task_queue,
            )
    await session.flush()
    for provider, clients in leaving.items():
        await _leave_groups(
            session,
            now,
            task_queue,
            provider,
            clients,
            Operation.RELATIONSHIP_EXPIRED,
            (actor.subject, actor.username or SYSTEM_INITIATOR),
        )
    groups = {
        (provider, client): group
        for provider, client, group in (
            await session.execute(
                select(GroupMember.provider_id, GroupMember.client_id, GroupMember.group_id).where(
                    _among(GroupMember.provider_id, {p for p, _ in seen}),
                    _among(GroupMember.client_id, {c for _, c in seen}),
                )
            )
        ).all()
    }
    clients_by_id = {
        c.id: c
        for c in (
            await session.execute(select(ClientBusiness).where(_among(ClientBusiness.id, known)))
        ).scalars()
    }
    views = await _client_views(session, [clients_by_id[r.client_id] for r in recorded])
    return [
        RelationshipView(r, view, groups.get((r.provider_id, r.client_id)))
        for r, view in zip(recorded, views, strict=True)
    ]


async def _leave_groups(
    session: AsyncSession,
    now: datetime,
    task_queue: str,
    provider_id: uuid.UUID,
    clients: Sequence[uuid.UUID],
    operation: Operation,
    initiator: tuple[str, str],
) -> list[ProcessRequest]:
    """Takes clients out of the provider's groups and records the revocation of their access."""
    rows = (
        await session.execute(
            select(GroupMember.group_id, GroupMember.client_id).where(
                GroupMember.provider_id == provider_id, _among(GroupMember.client_id, clients)
            )
        )
    ).all()
    by_group: dict[uuid.UUID, list[uuid.UUID]] = {}
    for group_id, client_id in rows:
        by_group.setdefault(group_id, []).append(client_id)
    requests = []
    for group_id, group_clients in sorted(by_group.items(), key=lambda item: str(item[0])):
        group = (
            await session.execute(
                select(ClientGroup).where(ClientGroup.id == group_id).with_for_update()
            )
        ).scalar_one()
        await session.execute(
            delete(GroupMember).where(
                GroupMember.group_id == group_id, _among(GroupMember.client_id, group_clients)
            )
        )
        group.updated_at = now
        requests.append(
            await _record_request(
                session,
                now,
                task_queue,
                group,
                operation,
                initiator,
                f"Relationship ended: {len(group_clients)} client(s) left the group",
                clients=group_clients,
            )
        )
    return requests


async def expire_relationship(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    task_queue: str,
    relationship_id: str,
    term: int,
) -> list[ProcessRequest] | None:
    """The expiry timer of `term` fired: the relationship expires and the client leaves the
    provider's groups. The timer is the clock (Temporal's, not this server's): a renewed or
    changed relationship has a newer term, and an outdated timer does nothing (None)."""
    require_service(actor)
    relationship_uuid = _uuid_or_raise("relationship_id", relationship_id)
    relationship = (
        await session.execute(
            select(Relationship).where(Relationship.id == relationship_uuid).with_for_update()
        )
    ).scalar_one_or_none()
    if relationship is None:
        raise NotFound("relationship not found")
    if relationship.term != term or relationship.status != RelationshipStatus.ACTIVE.value:
        return None
    relationship.status = RelationshipStatus.EXPIRED.value
    relationship.term += 1
    relationship.updated_at = now
    return await _leave_groups(
        session,
        now,
        task_queue,
        relationship.provider_id,
        [relationship.client_id],
        Operation.RELATIONSHIP_EXPIRED,
        ("", SYSTEM_INITIATOR),
    )


# --------------------------------------------------------------------------------------------
# Internal: the delegation batches (the worker's calls)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchResult:
    next_cursor: str
    finished: bool
    processed: int
    done: int
    total: int
    failed: int
    status: str


# The program accounts a request walks through, by scope, in (client id, account id) order,
# from the cursor on. Every variant yields (client_id, id, status).
_DOMAINS = {
    Scope.GROUP: """
        SELECT pa.client_id, pa.id, pa.status
        FROM group_members m JOIN program_accounts pa ON pa.client_id = m.client_id
        WHERE m.group_id = :group_id AND m.client_id >= :c0
          AND (pa.client_id, pa.id) > (:c0, :a0)
        ORDER BY pa.client_id, pa.id
        LIMIT :limit""",
    Scope.CLIENTS: """
        SELECT pa.client_id, pa.id, pa.status
        FROM process_request_clients rc JOIN program_accounts pa ON pa.client_id = rc.client_id
        WHERE rc.process_request_id = :request_id AND rc.client_id >= :c0
          AND (pa.client_id, pa.id) > (:c0, :a0)
        ORDER BY pa.client_id, pa.id
        LIMIT :limit""",
    Scope.FAILURES: """
        SELECT f.client_id, f.program_account_id AS id, pa.status
        FROM process_request_failures f JOIN program_accounts pa ON pa.id = f.program_account_id
        WHERE f.process_request_id = :request_id AND f.attempt = :previous_attempt
          AND (f.client_id, f.program_account_id) > (:c0, :a0)
        ORDER BY f.client_id, f.program_account_id
        LIMIT :limit""",
}

# One batch, one statement. A request moves access one way: the granting operations write what
# the group entitles now (and record what cannot be granted), the revoking ones delete what it no
# longer entitles. Both read the group as it is at the batch, so whichever request touches an
# account last leaves it right; each batch also moves the cursor and the progress. Grants are
# keyed (program account, employee): re-running a batch writes nothing new.
_GRANTING = frozenset(
    {Operation.ASSIGN_EMPLOYEES, Operation.ADD_CLIENTS, Operation.PROGRAM_ACCOUNTS_ADDED}
)

_GRANT_STEPS = """
entitled AS MATERIALIZED (
    SELECT b.id AS program_account_id, b.client_id, b.status, a.employee_id, a.role
    FROM batch b
    JOIN group_members m ON m.group_id = :group_id AND m.client_id = b.client_id
    JOIN employee_assignments a ON a.group_id = :group_id
    WHERE :all_employees OR a.employee_id = ANY(CAST(:employee_ids AS uuid[]))
),
granted AS (
    INSERT INTO access_grants
        (program_account_id, employee_id, group_id, client_id, role, process_request_id,
         granted_at)
    SELECT e.program_account_id, e.employee_id, :group_id, e.client_id, e.role, :request_id, :now
    FROM entitled e WHERE e.status = 'active'
    ON CONFLICT (program_account_id, employee_id) DO UPDATE
        SET role = EXCLUDED.role, group_id = EXCLUDED.group_id, client_id = EXCLUDED.client_id,
            process_request_id = EXCLUDED.process_request_id, granted_at = EXCLUDED.granted_at
        WHERE (access_grants.role, access_grants.group_id)
              IS DISTINCT FROM (EXCLUDED.role, EXCLUDED.group_id)
    RETURNING 1
),
refused AS (
    INSERT INTO process_request_failures
        (process_request_id, attempt, client_id, program_account_id, reason, message, recorded_at)
    SELECT DISTINCT CAST(:request_id AS uuid), CAST(:attempt AS integer), e.client_id,
           e.program_account_id, CAST(:closed_reason AS text), CAST(:closed_message AS text),
           CAST(:now AS timestamptz)
    FROM entitled e
    WHERE e.status <> 'active' AND NOT EXISTS (
        SELECT 1 FROM access_grants g
        WHERE g.program_account_id = e.program_account_id AND g.employee_id = e.employee_id
          AND g.role = e.role)
    ON CONFLICT DO NOTHING
    RETURNING 1
),
revoked AS (SELECT 1 WHERE false),"""

_REVOKE_STEPS = """
revoked AS (
    -- Not entitled any more: the client left the group or the employee was unassigned. Probed
    -- through the two tables' keys (never against a CTE, whose size the planner cannot know).
    DELETE FROM access_grants g USING batch b
    WHERE g.program_account_id = b.id AND g.group_id = :group_id
      AND (:all_employees OR g.employee_id = ANY(CAST(:employee_ids AS uuid[])))
      AND (NOT EXISTS (
              SELECT 1 FROM group_members m
              WHERE m.group_id = :group_id AND m.client_id = b.client_id)
           OR NOT EXISTS (
              SELECT 1 FROM employee_assignments a
              WHERE a.group_id = :group_id AND a.employee_id = g.employee_id))
    RETURNING 1
),
granted AS (SELECT 1 WHERE false),
refused AS (SELECT 1 WHERE false),"""

_APPLY = """
WITH batch AS MATERIALIZED ({domain}),{steps}
last AS (SELECT client_id, id FROM batch ORDER BY client_id DESC, id DESC LIMIT 1),
counts AS (
    SELECT (SELECT count(*) FROM batch) AS processed,
           (SELECT count(*) FROM granted) AS granted,
           (SELECT count(*) FROM revoked) AS revoked,
           (SELECT count(*) FROM refused) AS refused
)
UPDATE process_requests SET
    cursor_client = COALESCE((SELECT client_id FROM last), cursor_client),
    cursor_account = COALESCE((SELECT id FROM last), cursor_account),
    done = done + (SELECT processed FROM counts),
    failed = failed + (SELECT refused FROM counts),
    updated_at = :now
WHERE id = :request_id
RETURNING cursor_client, cursor_account, done, total, failed,
          (SELECT processed FROM counts) AS processed,
          (SELECT granted FROM counts) AS granted,
          (SELECT revoked FROM counts) AS revoked
"""


def _apply_statement(request: ProcessRequest) -> str:
    granting = Operation(request.operation) in _GRANTING
    return _APPLY.format(
        domain=_DOMAINS[Scope(request.scope)],
        steps=_GRANT_STEPS if granting else _REVOKE_STEPS,
    )


_FAIL = """
WITH batch AS MATERIALIZED ({domain}),
recorded AS (
    INSERT INTO process_request_failures
        (process_request_id, attempt, client_id, program_account_id, reason, message, recorded_at)
    SELECT :request_id, :attempt, b.client_id, b.id, :reason, :message, :now FROM batch b
    ON CONFLICT DO NOTHING
    RETURNING 1
),
last AS (SELECT client_id, id FROM batch ORDER BY client_id DESC, id DESC LIMIT 1)
UPDATE process_requests SET
    cursor_client = COALESCE((SELECT client_id FROM last), cursor_client),
    cursor_account = COALESCE((SELECT id FROM last), cursor_account),
    done = done + (SELECT count(*) FROM batch),
    failed = failed + (SELECT count(*) FROM recorded),
    updated_at = :now
WHERE id = :request_id
RETURNING cursor_client, cursor_account, done, total, failed,
          (SELECT count(*) FROM batch) AS processed
"""


async def _request_for_worker(
    session: AsyncSession, actor: Principal | None, process_request_id: str, attempt: int
) -> ProcessRequest:
    require_service(actor)
    request_id = _uuid_or_raise("process_request_id", process_request_id)
    request = (
        await session.execute(
            select(ProcessRequest).where(ProcessRequest.id == request_id).with_for_update()
        )
    ).scalar_one_or_none()
    if request is None:
        raise NotFound("process request not found")
    if request.attempt != attempt:
        raise FailedPrecondition(
            f"attempt {attempt} of this request was superseded by attempt {request.attempt}",
            reason="attempt_superseded",
        )
    return request


def _result(request: ProcessRequest, processed: int, finished: bool) -> BatchResult:
    return BatchResult(
        next_cursor=format_cursor(request.cursor_client, request.cursor_account),
        finished=finished,
        processed=processed,
        done=request.done,
        total=request.total,
        failed=request.failed,
        status=request.status,
    )


def _at_cursor(request: ProcessRequest, after_cursor: str) -> bool:
    """Whether the caller continues from where the request stands (else its call is a replay)."""
    stored = format_cursor(request.cursor_client, request.cursor_account)
    return parse_cursor(after_cursor) == parse_cursor(stored)


def _batch_parameters(request: ProcessRequest, limit: int) -> dict[str, Any]:
    return {
        "request_id": request.id,
        "group_id": request.group_id,
        "attempt": request.attempt,
        "previous_attempt": request.attempt - 1,
        "c0": request.cursor_client or _NIL,
        "a0": request.cursor_account or _NIL,
        "limit": limit,
    }


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_BATCH:
        raise InvalidArgument([("limit", f"must be between 1 and {MAX_BATCH}")])


async def apply_batch(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    process_request_id: str,
    attempt: int,
    after_cursor: str,
    limit: int,
) -> BatchResult:
    """Applies the next `limit` program accounts of a request, in one statement.

    The request row is locked, so two workers of one request take turns; a call whose cursor is
    not the stored one (a retried call whose batch was in fact committed) applies nothing and
    answers where the request stands. When a batch comes back short, the request is finished in
    the same transaction: completed, or failed when some accounts could not be updated.
    """
    _check_limit(limit)
    request = await _request_for_worker(session, actor, process_request_id, attempt)
    if request.status in (RequestStatus.COMPLETED.value, RequestStatus.FAILED.value):
        return _result(request, 0, True)
    if not _at_cursor(request, after_cursor):
        return _result(request, 0, False)
    request.status = RequestStatus.IN_PROGRESS.value
    # Changes of the group's members or employees lock its row for update: batches take turns
    # with them, so a batch never writes from a membership that a committed change has undone.
    await session.execute(
        select(ClientGroup.id).where(ClientGroup.id == request.group_id).with_for_update(read=True)
    )
    await session.flush()
    parameters = {
        **_batch_parameters(request, limit),
        "all_employees": request.employee_ids is None,
        "employee_ids": request.employee_ids or [],
        "closed_reason": CLOSED_REASON,
        "closed_message": CLOSED_MESSAGE,
        "now": now,
    }
    row = (await session.execute(text(_apply_statement(request)), parameters)).one()
    await session.refresh(request)
    finished = row.processed < limit
    if finished:
        _finish(request, now)
    return _result(request, int(row.processed), finished)


def _finish(request: ProcessRequest, now: datetime) -> None:
    request.status = (
        RequestStatus.FAILED.value if request.failed > 0 else RequestStatus.COMPLETED.value
    )
    # Accounts removed from the group while it ran are not owed any more.
    request.total = request.done
    request.finished_at = now
    request.updated_at = now


async def fail_batch(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    process_request_id: str,
    attempt: int,
    after_cursor: str,
    limit: int,
    message: str,
) -> BatchResult:
    """A batch kept failing: its accounts are recorded as failures and the cursor moves past
    them, so the rest of the request still runs and a retry redoes exactly these accounts."""
    _check_limit(limit)
    request = await _request_for_worker(session, actor, process_request_id, attempt)
    if request.status in (RequestStatus.COMPLETED.value, RequestStatus.FAILED.value):
        return _result(request, 0, True)
    if not _at_cursor(request, after_cursor):
        return _result(request, 0, False)
    request.status = RequestStatus.IN_PROGRESS.value
    await session.flush()
    row = (
        await session.execute(
            text(_FAIL.format(domain=_DOMAINS[Scope(request.scope)])),
            {
                **_batch_parameters(request, limit),
                "reason": BATCH_FAILED_REASON,
                "message": (message or "the batch could not be applied")[:1000],
                "now": now,
            },
        )
    ).one()
    await session.refresh(request)
    finished = row.processed < limit
    if finished:
        _finish(request, now)
    return _result(request, int(row.processed), finished)
