"""A relationship's end: when it expires (its RelationshipExpiry timer fires) or stops being active,
the client leaves every group of the provider, and a process request revokes the access it gave.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.groups.domain.authorisation import require_service
from services.groups.domain.common import SYSTEM_INITIATOR, among, uuid_or_raise
from services.groups.domain.process_requests import record_request
from services.groups.models import (
    ClientGroup,
    GroupMember,
    Operation,
    ProcessRequest,
    Relationship,
    RelationshipStatus,
)
from services.kit.auth import Principal
from services.kit.errors import NotFound


async def leave_groups(
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
                GroupMember.provider_id == provider_id, among(GroupMember.client_id, clients)
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
                GroupMember.group_id == group_id, among(GroupMember.client_id, group_clients)
            )
        )
        group.updated_at = now
        requests.append(
            await record_request(
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
    relationship_uuid = uuid_or_raise("relationship_id", relationship_id)
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
    return await leave_groups(
        session,
        now,
        task_queue,
        relationship.provider_id,
        [relationship.client_id],
        Operation.RELATIONSHIP_EXPIRED,
        ("", SYSTEM_INITIATOR),
    )
