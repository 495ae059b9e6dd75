"""Who may call what: a provider's groups are its business_account_manager's alone; recording calls
are for internal services and operators, the worker's calls for a service token only.

A group is looked up for its manager only, and is NOT_FOUND for anyone else, so that nobody
learns whether a group exists.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.groups.domain.common import parse_uuid, uuid_or_raise
from services.groups.models import ClientGroup
from services.kit.auth import Principal
from services.kit.errors import NotFound, PermissionDenied, Unauthenticated, Validator

BUSINESS_ACCOUNT_MANAGER = "business_account_manager"
OPS_ADMIN = "ops_admin"


def _require(actor: Principal | None) -> Principal:
    if actor is None:
        raise Unauthenticated("authentication required")
    return actor


def is_manager(actor: Principal, provider_id: uuid.UUID) -> bool:
    """The provider's business_account_manager, and only them (services and operators too are
    refused: a provider's groups are its own business)."""
    return not actor.is_service and actor.has_role(str(provider_id), BUSINESS_ACCOUNT_MANAGER)


def provider_for_manager(actor: Principal | None, raw_provider_id: str) -> uuid.UUID:
    """For provider-level pages: PERMISSION_DENIED unless the caller is the provider's manager."""
    actor = _require(actor)
    provider_id = uuid_or_raise("provider_id", raw_provider_id)
    if not is_manager(actor, provider_id):
        raise PermissionDenied(
            "only the service provider's business account manager may manage its client groups"
        )
    return provider_id


def _group_not_found() -> NotFound:
    return NotFound("group not found", reason="group_not_found")


async def group_for_manager(
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
    provider_id = parse_uuid(v, "provider_id", raw_provider_id)
    group_id = parse_uuid(v, "group_id", raw_group_id)
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
