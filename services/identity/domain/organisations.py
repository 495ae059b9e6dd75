"""Organisations and the roles their members hold: create, read, list, members, grant, revoke.

The platform never loses its last ops_admin (checked under an advisory lock).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.domain.common import (
    OPS_ADMIN_LOCK,
    audit,
    check_name,
    clean,
    fetch_page,
    flush_unique,
    parse_uuid,
    taken_error,
    uuid_or_raise,
)
from services.identity.domain.roles import (
    ALL_ROLES,
    OPS_ADMIN,
    ROLE_FOR_ANOTHER_KIND,
    check_role_names,
    is_operator_staff,
    is_ops_admin,
    organisation_for_admin,
    require_actor,
    role_refusal,
    user_for_admin,
)
from services.identity.models import Membership, Organisation, OrganisationKind, User, UserStatus
from services.kit.auth import Principal
from services.kit.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Validator,
)
from services.kit.paging import Page, keyset_after as _after, parse_page as _parse_page

_ORG_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def _check_kind(v: Validator, kind: str) -> OrganisationKind | None:
    if not kind:
        v.require("kind", kind)
        return None
    try:
        return OrganisationKind(kind)
    except ValueError:
        v.check(False, "kind", "is not a known organisation kind", code="enum")
        return None


async def create_organisation(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    kind: str,
    name: str,
    code: str,
) -> Organisation:
    if not is_ops_admin(require_actor(actor)):
        raise PermissionDenied("only ops_admin may create organisations")
    v = Validator()
    parsed_kind = _check_kind(v, kind)
    name, code = clean(name), code.strip()
    check_name(v, "name", name, 200)
    v.check(
        not code or bool(_ORG_CODE.match(code)),
        "code",
        "must be 1 to 32 characters: letters, digits, '_' or '-'",
        code="string_pattern_mismatch",
    )
    v.raise_if_any()
    assert parsed_kind is not None
    taken = taken_error(
        "code", f"an organisation of kind {parsed_kind.value} already has this code"
    )
    if code:
        clash = await session.scalar(
            select(Organisation.id).where(
                Organisation.kind == parsed_kind.value, Organisation.code == code
            )
        )
        if clash is not None:
            raise taken
    organisation = Organisation(
        id=uuid.uuid4(), kind=parsed_kind.value, name=name, code=code or None, created_at=now
    )
    session.add(organisation)
    await flush_unique(session, {"uq_organisations_kind_code": taken})
    audit(
        session=session,
        now=now,
        event="organisation.created",
        actor=actor,
        user_id=None,
        organisation_id=organisation.id,
        kind=parsed_kind.value,
        name=name,
    )
    return organisation


async def _home_organisation(session: AsyncSession, actor: Principal) -> uuid.UUID | None:
    if actor.is_service:
        return None
    try:
        user_id = uuid.UUID(actor.subject)
    except ValueError:
        return None
    return await session.scalar(select(User.organisation_id).where(User.id == user_id))


async def get_organisation(
    *, session: AsyncSession, actor: Principal | None, organisation_id: str
) -> Organisation:
    """Services and operator staff see every organisation; a user sees the ones they belong to."""
    actor = require_actor(actor)
    org_id = uuid_or_raise("organisation_id", organisation_id)
    organisation = await session.get(Organisation, org_id)
    if organisation is None:
        raise NotFound("organisation not found")
    if actor.is_service or is_operator_staff(actor) or actor.roles_in(str(org_id)):
        return organisation
    if await _home_organisation(session, actor) == org_id:
        return organisation
    raise NotFound("organisation not found")


async def list_organisations(
    *, session: AsyncSession, actor: Principal | None, kind: str, page_size: int, page_token: str
) -> Page[Organisation]:
    """By name; services and operator staff list all, a user lists their own organisations."""
    actor = require_actor(actor)
    v = Validator()
    parsed_kind = _check_kind(v, kind) if kind else None
    page = _parse_page(v, "organisations", page_size, page_token, [str, uuid.UUID])
    v.raise_if_any()
    query = select(Organisation).order_by(Organisation.name, Organisation.id)
    if parsed_kind is not None:
        query = query.where(Organisation.kind == parsed_kind.value)
    if not (actor.is_service or is_operator_staff(actor)):
        own = {uuid.UUID(org) for org in actor.memberships}
        home = await _home_organisation(session, actor)
        if home is not None:
            own.add(home)
        query = query.where(Organisation.id.in_(own))
    query = query.where(*_after(page, [Organisation.name, Organisation.id]))
    return await fetch_page(session, query, page, "organisations", lambda o: (o.name, o.id))


async def list_organisation_members(
    *,
    session: AsyncSession,
    actor: Principal | None,
    organisation_id: str,
    roles: Sequence[str],
    page_size: int,
    page_token: str,
) -> Page[User]:
    """The organisation's accounts by username; with `roles`, only active holders of one of them."""
    v = Validator()
    org_id = parse_uuid(v, "organisation_id", organisation_id)
    check_role_names(v, "roles", roles)
    page = _parse_page(v, "members", page_size, page_token, [str, uuid.UUID])
    v.raise_if_any()
    assert org_id is not None
    await organisation_for_admin(session, actor, org_id, services=True)
    query = select(User).where(User.organisation_id == org_id)
    if roles:
        holders = select(Membership.user_id).where(
            Membership.organisation_id == org_id, Membership.role.in_(list(roles))
        )
        query = query.where(User.status == UserStatus.ACTIVE.value, User.id.in_(holders))
    columns = [func.lower(User.username), User.id]
    query = query.where(*_after(page, columns)).order_by(*columns)
    return await fetch_page(session, query, page, "members", lambda u: (u.username.lower(), u.id))


async def _membership_target(
    session: AsyncSession,
    v: Validator,
    actor: Principal | None,
    user_id: str,
    organisation_id: str,
    role: str,
) -> tuple[User, Organisation]:
    parsed_user = parse_uuid(v, "user_id", user_id)
    parsed_org = parse_uuid(v, "organisation_id", organisation_id, required=False)
    v.require("role", role)
    if role:
        v.check(role in ALL_ROLES, "role", f"unknown role {role!r}", code="literal_error")
    v.raise_if_any()
    assert parsed_user is not None
    user, organisation = await user_for_admin(session, actor, parsed_user, lock=True)
    if parsed_org is not None and parsed_org != user.organisation_id:
        raise InvalidArgument(
            [
                (
                    "organisation_id",
                    "roles are held in the user's own organisation",
                    "own_organisation",
                )
            ]
        )
    return user, organisation


async def grant_role(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    user_id: str,
    organisation_id: str,
    role: str,
) -> User:
    v = Validator()
    user, organisation = await _membership_target(session, v, actor, user_id, organisation_id, role)
    if problem := role_refusal(organisation, role):
        raise InvalidArgument([("role", problem, ROLE_FOR_ANOTHER_KIND)])
    if any(m.role == role for m in user.memberships):
        return user
    user.memberships.append(
        Membership(user_id=user.id, organisation_id=organisation.id, role=role, created_at=now)
    )
    user.updated_at = now
    audit(
        session=session,
        now=now,
        event="role.granted",
        actor=actor,
        user_id=user.id,
        organisation_id=organisation.id,
        role=role,
    )
    return user


async def revoke_role(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    user_id: str,
    organisation_id: str,
    role: str,
) -> User:
    """Revoking a role not held is a no-op; the platform never loses its last ops_admin."""
    v = Validator()
    user, organisation = await _membership_target(session, v, actor, user_id, organisation_id, role)
    held = [m for m in user.memberships if m.role == role]
    if not held:
        return user
    if role == OPS_ADMIN:
        await session.execute(select(func.pg_advisory_xact_lock(OPS_ADMIN_LOCK)))
        holders = await session.scalar(
            select(func.count())
            .select_from(Membership)
            .join(User, User.id == Membership.user_id)
            .where(Membership.role == OPS_ADMIN, User.status == UserStatus.ACTIVE.value)
        )
        if (holders or 0) <= 1:
            raise FailedPrecondition(
                "the last ops_admin cannot lose the role", reason="last_ops_admin"
            )
    for membership in held:
        user.memberships.remove(membership)
    user.updated_at = now
    audit(
        session=session,
        now=now,
        event="role.revoked",
        actor=actor,
        user_id=user.id,
        organisation_id=organisation.id,
        role=role,
    )
    return user
