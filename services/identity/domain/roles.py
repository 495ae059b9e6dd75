"""Roles by organisation kind, and who may act on an organisation or an account.

ops_admin administers every organisation; each kind names its own admin roles. Outside an
organisation a refusal reads NOT_FOUND, so no tenant learns what another holds.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.domain.common import kind_of
from services.identity.models import Organisation, OrganisationKind, User
from services.kit.auth import Principal
from services.kit.errors import DomainError, NotFound, PermissionDenied, Unauthenticated, Validator

OPS_ADMIN = "ops_admin"
SUPPORT_AGENT = "support_agent"
_PROVIDER_ROLES = frozenset(
    {"business_account_manager", "program_account_manager", "editor", "read_only"}
)
ROLES_BY_KIND: dict[OrganisationKind, frozenset[str]] = {
    OrganisationKind.SERVICE_PROVIDER: _PROVIDER_ROLES,
    OrganisationKind.CLIENT_BUSINESS: _PROVIDER_ROLES,
    OrganisationKind.ASSOCIATION: frozenset({"association_admin", "member"}),
    OrganisationKind.DELIVERY_PARTNER: frozenset({"partner_manager"}),
    OrganisationKind.WORKSHOP: frozenset({"workshop_owner"}),
    OrganisationKind.ERP_CUSTOMER: frozenset({"customer_user"}),
    OrganisationKind.OPERATOR: frozenset({SUPPORT_AGENT, OPS_ADMIN}),
}
ALL_ROLES: frozenset[str] = frozenset().union(*ROLES_BY_KIND.values())

# Who administers an organisation besides ops_admin (who administers every organisation).
ADMIN_ROLES_BY_KIND: dict[OrganisationKind, frozenset[str]] = {
    OrganisationKind.SERVICE_PROVIDER: frozenset({"business_account_manager"}),
    OrganisationKind.CLIENT_BUSINESS: frozenset({"business_account_manager"}),
    OrganisationKind.ASSOCIATION: frozenset({"association_admin"}),
    OrganisationKind.DELIVERY_PARTNER: frozenset({"partner_manager"}),
    OrganisationKind.WORKSHOP: frozenset({"workshop_owner"}),
    OrganisationKind.ERP_CUSTOMER: frozenset(),
    OrganisationKind.OPERATOR: frozenset({OPS_ADMIN}),
}

# The role a validated (or admin-created, role-less) account receives.
BASE_ROLE_BY_KIND: dict[OrganisationKind, str] = {
    OrganisationKind.ASSOCIATION: "member",
    OrganisationKind.ERP_CUSTOMER: "customer_user",
    OrganisationKind.DELIVERY_PARTNER: "partner_manager",
    OrganisationKind.WORKSHOP: "workshop_owner",
    OrganisationKind.CLIENT_BUSINESS: "read_only",
    OrganisationKind.SERVICE_PROVIDER: "read_only",
}


def check_role_names(v: Validator, field: str, roles: Sequence[str]) -> None:
    for index, role in enumerate(roles):
        v.check(
            role in ALL_ROLES, f"{field}[{index}]", f"unknown role {role!r}", code="literal_error"
        )


# The code of a role refused because the organisation's kind does not hold it.
ROLE_FOR_ANOTHER_KIND = "role_for_another_kind"


def role_refusal(organisation: Organisation, role: str) -> str | None:
    allowed = ROLES_BY_KIND[kind_of(organisation.kind)]
    if role in allowed:
        return None
    listed = ", ".join(sorted(allowed))
    return f"{role} cannot be held in a {organisation.kind} organisation (allowed: {listed})"


def is_ops_admin(actor: Principal | None) -> bool:
    return actor is not None and not actor.is_service and actor.has_any_role(OPS_ADMIN)


def is_operator_staff(actor: Principal | None) -> bool:
    return (
        actor is not None and not actor.is_service and actor.has_any_role(OPS_ADMIN, SUPPORT_AGENT)
    )


def can_administer(actor: Principal, organisation: Organisation) -> bool:
    """ops_admin administers every organisation; each kind has its own admin roles."""
    if actor.is_service:
        return False
    if is_ops_admin(actor):
        return True
    admin_roles = ADMIN_ROLES_BY_KIND[kind_of(organisation.kind)]
    return actor.has_role(str(organisation.id), *admin_roles)


def require_actor(actor: Principal | None) -> Principal:
    if actor is None:
        raise Unauthenticated("authentication required")
    return actor


def require_user(actor: Principal | None) -> Principal:
    actor = require_actor(actor)
    if actor.is_service:
        raise PermissionDenied("this call is for signed-in users, not services")
    return actor


def _not_admin(actor: Principal, organisation_id: uuid.UUID, what: str) -> DomainError:
    """Outside the organisation the answer is NOT_FOUND: no tenant learns what another holds."""
    if actor.roles_in(str(organisation_id)) or is_operator_staff(actor):
        return PermissionDenied("only an administrator of the organisation may do this")
    return NotFound(f"{what} not found")


async def organisation_for_admin(
    session: AsyncSession,
    actor: Principal | None,
    organisation_id: uuid.UUID,
    *,
    services: bool = False,
) -> Organisation:
    actor = require_actor(actor)
    if actor.is_service and not services:
        raise PermissionDenied("this call needs a user")
    organisation = await session.get(Organisation, organisation_id)
    if organisation is None:
        raise NotFound("organisation not found")
    if actor.is_service or can_administer(actor, organisation):
        return organisation
    raise _not_admin(actor, organisation_id, "organisation")


async def user_for_admin(
    session: AsyncSession,
    actor: Principal | None,
    user_id: uuid.UUID,
    *,
    services: bool = False,
    themself: bool = False,
    lock: bool = False,
) -> tuple[User, Organisation]:
    actor = require_actor(actor)
    if actor.is_service and not services:
        raise PermissionDenied("this call needs a user")
    user = await session.get(User, user_id, with_for_update=lock or None)
    if user is None:
        raise NotFound("user not found")
    organisation = await session.get(Organisation, user.organisation_id)
    assert organisation is not None
    if (
        actor.is_service
        or (themself and actor.subject == str(user.id))
        or can_administer(actor, organisation)
    ):
        return user, organisation
    raise _not_admin(actor, user.organisation_id, "user")
