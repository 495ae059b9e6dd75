"""Writes check what they name (issue #24): an association or workshop id that identity does not
know, or knows as another kind, is NOT_FOUND at the write, for ops_admin too (whose role holds
everywhere, so it proves nothing of the id), and nothing is written."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from guichet.membership.v1 import membership_pb2 as pb
from sqlalchemy import func, select

from services.membership.models import AssociationMember, ClientRecord, Training
from tests.identity.harness import WORKSHOP
from tests.membership.harness import World, days_from_today, fails, fields, timestamp


async def _rows(world: World, model: Any, association_id: str) -> int:
    async with world.sessions() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(model)
                .where(model.association_id == uuid.UUID(association_id))
            )
            or 0
        )


async def test_members_are_added_only_to_associations_identity_knows(world: World) -> None:
    workshop = await world.identity.organisation(WORKSHOP)
    for named in (str(uuid.uuid4()), workshop):
        refused = await fails(
            world.stub.AddMember(
                pb.AddMemberRequest(association_id=named, first_name="Jeanne", last_name="Martin"),
                metadata=world.ops,
            )
        )
        assert refused.code == grpc.StatusCode.NOT_FOUND, refused.message
        assert fields(refused) == {"association_id"}
        assert await _rows(world, AssociationMember, named) == 0
    association = await world.association()
    added = await world.stub.AddMember(
        pb.AddMemberRequest(association_id=association.id, first_name="Jeanne", last_name="Martin"),
        metadata=world.ops,
    )
    assert added.member.id


async def test_trainings_are_created_only_for_associations(world: World) -> None:
    workshop = await world.identity.organisation(WORKSHOP)
    for named in (str(uuid.uuid4()), workshop):
        refused = await fails(
            world.stub.CreateTraining(
                pb.CreateTrainingRequest(
                    association_id=named,
                    training_type="PSC1",
                    title="Formation PSC1",
                    start_time=timestamp(datetime.now(UTC) + timedelta(days=20)),
                    location="Paris 11e",
                    capacity=10,
                ),
                metadata=world.ops,
            )
        )
        assert refused.code == grpc.StatusCode.NOT_FOUND, refused.message
        assert await _rows(world, Training, named) == 0


async def test_client_records_are_imported_only_into_associations(world: World) -> None:
    named = str(uuid.uuid4())
    refused = await fails(
        world.stub.ImportClientRecords(
            pb.ImportClientRecordsRequest(
                association_id=named,
                records=[pb.ImportedClientRecord(external_ref="R-1", company_name="Mairie")],
            ),
            metadata=world.ops,
        )
    )
    assert refused.code == grpc.StatusCode.NOT_FOUND
    assert await _rows(world, ClientRecord, named) == 0


async def test_a_membership_is_created_only_for_a_workshop(world: World) -> None:
    program = await world.program()
    association = await world.association()
    for named in (str(uuid.uuid4()), association.id):
        refused = await fails(
            world.stub.CreateWorkshopMembership(
                pb.CreateWorkshopMembershipRequest(
                    workshop_id=named,
                    program_id=program.id,
                    renewal_date=days_from_today(200),
                    workshop=pb.WorkshopInfo(name="Garage", email="garage@example.org"),
                    wholesaler=pb.Contact(name="Grossiste", email="g@example.org"),
                    distributor=pb.Contact(name="DDA", email="d@example.org"),
                ),
                metadata=world.ops,
            )
        )
        assert refused.code == grpc.StatusCode.NOT_FOUND, refused.message
        assert fields(refused) == {"workshop_id"}
