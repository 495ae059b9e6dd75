"""Business relationships between a provider and its clients: the provider's list of them, with the
group each client is in, and recording them (internal calls).

An active relationship with an expiry date gets its timer (the RelationshipExpiry workflow); one
that stops being active takes its client out of the provider's groups at once (`expiry`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.groups.domain.authorisation import provider_for_manager, require_internal
from services.groups.domain.common import (
    MAX_RECORDS_PER_CALL,
    SYSTEM_INITIATOR,
    ClientView,
    among,
    client_views,
    page_of,
    parse_uuid,
)
from services.groups.domain.expiry import leave_groups
from services.groups.models import (
    ClientBusiness,
    GroupMember,
    Operation,
    Relationship,
    RelationshipStatus,
    outbox,
)
from services.kit.auth import Principal
from services.kit.errors import InvalidArgument, NotFound, Validator
from services.kit.outbox import enqueue
from services.kit.paging import Page, keyset_after as _after, parse_page as _parse_page
from workflows.contracts.groups import EXPIRY_WORKFLOW, expiry_workflow_id


@dataclass(frozen=True)
class RelationshipView:
    relationship: Relationship
    client: ClientView
    group_id: uuid.UUID | None


def active_relationship(provider_id: uuid.UUID, now: datetime) -> Any:
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
    provider = provider_for_manager(actor, provider_id)
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
    paged = page_of(rows, page, "relationships", lambda r: (r[1].search_name, r[1].id))
    views = await client_views(session, [r[1] for r in paged.items])
    return Page(
        [RelationshipView(r[0], view, r[2]) for r, view in zip(paged.items, views, strict=True)],
        paged.next_page_token,
    )


SERVICE_PROVIDER = "service_provider"


class Organisations(Protocol):
    """Identity's organisations, as far as groups needs them: does an id name one, of which kind."""

    async def organisation_kind(self, organisation_id: uuid.UUID) -> str | None: ...


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
    organisations: Organisations,
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
        provider = parse_uuid(v, f"relationships[{i}].provider_id", record.provider_id)
        client = parse_uuid(v, f"relationships[{i}].client_id", record.client_id)
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
    # The provider is an identity organisation that groups keeps no table of: ask (once per
    # provider; a call names few). The client must be one recorded here (RecordClients).
    kinds = {
        provider: await organisations.organisation_kind(provider)
        for provider in dict.fromkeys(p[0] for p in parsed)
    }
    strangers = [
        (f"relationships[{i}].provider_id", "names no service provider", "unknown_organisation")
        for i, p in enumerate(parsed)
        if kinds[p[0]] != SERVICE_PROVIDER
    ]
    if strangers:
        raise NotFound("service provider not found", violations=strangers[:50])
    known = set(
        (
            await session.execute(
                select(ClientBusiness.id).where(among(ClientBusiness.id, {p[1] for p in parsed}))
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
                    among(Relationship.provider_id, {p for p, _ in seen}),
                    among(Relationship.client_id, {c for _, c in seen}),
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
        await leave_groups(
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
                    among(GroupMember.provider_id, {p for p, _ in seen}),
                    among(GroupMember.client_id, {c for _, c in seen}),
                )
            )
        ).all()
    }
    clients_by_id = {
        c.id: c
        for c in (
            await session.execute(select(ClientBusiness).where(among(ClientBusiness.id, known)))
        ).scalars()
    }
    views = await client_views(session, [clients_by_id[r.client_id] for r in recorded])
    return [
        RelationshipView(r, view, groups.get((r.provider_id, r.client_id)))
        for r, view in zip(recorded, views, strict=True)
    ]
