"""Writes check what they name (issue #24): a relationship names its provider, an identity
organisation that groups keeps no table of, so groups asks identity at the write. An id that
names no service provider is NOT_FOUND, naming the entry, and nothing is recorded."""

from __future__ import annotations

import uuid

import grpc
from guichet.groups.v1 import groups_pb2 as pb
from sqlalchemy import func, select

from services.groups.models import Relationship
from tests.groups.harness import World, fails, fields
from tests.identity.harness import CLIENT_BUSINESS


async def test_a_relationship_names_a_service_provider_identity_knows(world: World) -> None:
    provider = await world.provider()
    [client] = await world.clients(None, 1)
    other_kind = await world.identity.organisation(CLIENT_BUSINESS)
    for named in (str(uuid.uuid4()), other_kind):
        refused = await fails(
            world.groups.RecordRelationships(
                pb.RecordRelationshipsRequest(
                    relationships=[
                        pb.RelationshipRecord(
                            provider_id=provider.id,
                            client_id=client,
                            status=pb.RELATIONSHIP_STATUS_ACTIVE,
                        ),
                        pb.RelationshipRecord(
                            provider_id=named,
                            client_id=client,
                            status=pb.RELATIONSHIP_STATUS_ACTIVE,
                        ),
                    ]
                ),
                metadata=world.ops,
            )
        )
        assert refused.code == grpc.StatusCode.NOT_FOUND, refused.message
        assert fields(refused) == {"relationships[1].provider_id"}
    async with world.sessions() as session:
        recorded = await session.scalar(
            select(func.count())
            .select_from(Relationship)
            .where(Relationship.client_id == uuid.UUID(client))
        )
    assert recorded == 0, "nothing of a refused call is recorded"
    # The known provider alone goes through.
    await world.relate(provider, [client])
