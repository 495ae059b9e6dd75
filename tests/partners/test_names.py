"""Store names compared as people read them (issue #26). A store's name is its delivery
partner organisation's, which identity keeps apart as people read them; partners keeps the rule
too, for stores registered before it: such a look-alike is refused, naming the store."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import grpc
from guichet.partners.v1 import partners_pb2 as pb

from services.kit.errors import RemoteProblem
from services.partners.models import Store
from tests.identity.harness import DELIVERY_PARTNER, unique
from tests.partners.harness import Partners, fails


async def test_a_store_whose_name_reads_as_an_older_stores_is_refused(partners: Partners) -> None:
    tag = unique("")[-6:]
    legacy = f"PIZZERIA\u00a0NAPOLI {tag}"  # a store from before the rule
    now = datetime.now(UTC)
    async with partners.sessions.begin() as session:
        session.add(
            Store(
                id=uuid.uuid4(),
                name=legacy,
                name_key=f"pizzerianapoli{tag}",
                operations_email="ops@example.org",
                phone="",
                timezone="Europe/Paris",
                currency="EUR",
                created_at=now,
                updated_at=now,
            )
        )
    organisation = await partners.identity.organisation(DELIVERY_PARTNER, f"Pizzeria Napoli {tag}")
    error = await fails(
        partners.stub.RegisterStore(
            pb.RegisterStoreRequest(store_id=organisation, operations_email="ops@example.org"),
            metadata=partners.admin,
        )
    )
    problem = RemoteProblem.from_rpc_error(error)
    assert problem.code == grpc.StatusCode.ALREADY_EXISTS
    assert problem.reason == "name_taken"
    assert [field for field, _ in problem.violations] == ["store_id"]
    other = await partners.identity.organisation(DELIVERY_PARTNER, f"Pizzéria Napoli {tag}")
    made = await partners.stub.RegisterStore(
        pb.RegisterStoreRequest(store_id=other, operations_email="ops@example.org"),
        metadata=partners.admin,
    )
    assert made.store.name == f"Pizzéria Napoli {tag}"
