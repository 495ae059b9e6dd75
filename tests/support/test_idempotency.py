"""SendPartnerMessage with an idempotency key: a retried or raced opening finds the first ticket.

The partners service sends its message id as the key, from the partner's request (partner's
token) and from the worker (service token); whichever comes second, or retries after a lost
answer, must get the same ticket, with one SLA workflow start and one view consumed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import grpc
from guichet.support.v1 import support_pb2 as pb
from sqlalchemy import func, select

from services.support.models import FaqView, Ticket, outbox
from tests.identity.harness import DELIVERY_PARTNER, fails, fields, unique
from tests.support.harness import Metadata, Support
from workflows.contracts.support import sla_workflow_id

N = 8
Record = Callable[[str, Any], None]


def _message(category_id: str, key: str, **extra: Any) -> pb.SendPartnerMessageRequest:
    return pb.SendPartnerMessageRequest(
        category_id=category_id,
        subject="Paiement manquant",
        body="Période du 1er au 15 mars.",
        idempotency_key=key,
        **extra,
    )


async def _send(
    support: Support, request: pb.SendPartnerMessageRequest, token: Metadata
) -> pb.Ticket:
    response: pb.SendPartnerMessageResponse = await support.stub.SendPartnerMessage(
        request, metadata=token
    )
    return response.ticket


async def _tickets_with(support: Support, organisation_id: str, key: str) -> list[uuid.UUID]:
    async with support.sessions() as session:
        found = await session.scalars(
            select(Ticket.id).where(
                Ticket.organisation_id == uuid.UUID(organisation_id),
                Ticket.idempotency_key == key,
            )
        )
        return list(found)


async def _sla_starts(support: Support, ticket_id: str) -> int:
    async with support.sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(outbox)
            .where(outbox.c.workflow_id == sla_workflow_id(ticket_id))
        )
        return int(count or 0)


async def _partner(support: Support) -> tuple[str, Metadata]:
    org, _, token = await support.customer(
        kind=DELIVERY_PARTNER, operations_email=f"{unique('ops.')}@napoli.example.org"
    )
    return org, token


async def test_the_same_key_twice_returns_the_first_ticket(support: Support) -> None:
    """A retry after a lost answer: same ticket, one row, one SLA start, the second call's view
    left alone (it deflected nothing, and no ticket followed it)."""
    org, partner = await _partner(support)
    category = await support.category(pb.CATEGORY_AUDIENCE_PARTNER)
    key = str(uuid.uuid4())
    first_view = await support.stub.ViewCategory(
        pb.ViewCategoryRequest(category_id=category.id), metadata=partner
    )
    first = await _send(support, _message(category.id, key, view_id=first_view.view_id), partner)
    second_view = await support.stub.ViewCategory(
        pb.ViewCategoryRequest(category_id=category.id), metadata=partner
    )
    assert second_view.view_id != first_view.view_id
    again = await _send(support, _message(category.id, key, view_id=second_view.view_id), partner)
    assert again.id == first.id
    assert again.number == first.number
    worker = await support.service()
    forwarded = await _send(support, _message(category.id, key, organisation_id=org), worker)
    assert forwarded.id == first.id
    assert forwarded.opened_by_name == first.opened_by_name != "worker"

    assert await _tickets_with(support, org, key) == [uuid.UUID(first.id)]
    assert await _sla_starts(support, first.id) == 1
    async with support.sessions() as session:
        consumed = await session.get(FaqView, uuid.UUID(first_view.view_id))
        untouched = await session.get(FaqView, uuid.UUID(second_view.view_id))
    assert consumed is not None and consumed.ticket_id == uuid.UUID(first.id)
    assert untouched is not None and untouched.ticket_id is None
    # Without a key every call is a new message.
    plain = _message(category.id, "")
    assert (await _send(support, plain, partner)).id != (await _send(support, plain, partner)).id


async def test_concurrent_calls_with_one_key_open_one_ticket(
    support: Support, record_property: Record
) -> None:
    """The partner's request and the worker's retries at once (half each): one ticket."""
    org, partner = await _partner(support)
    worker = await support.service()
    category = await support.category(pb.CATEGORY_AUDIENCE_PARTNER)
    key = str(uuid.uuid4())
    calls = [
        _send(support, _message(category.id, key), partner)
        if i % 2
        else _send(support, _message(category.id, key, organisation_id=org), worker)
        for i in range(N)
    ]
    results = await asyncio.gather(*calls, return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    tickets = {r.id for r in results if isinstance(r, pb.Ticket)}
    stored = await _tickets_with(support, org, key)
    record_property(
        "reliability",
        {
            "kind": "race",
            "name": "one partner-message ticket per idempotency key",
            "tried": N,
            "lost": len(errors) + abs(len(stored) - 1) + abs(len(tickets) - 1),
        },
    )
    assert not errors, errors
    assert len(tickets) == 1
    assert stored == [uuid.UUID(tickets.pop())]
    assert await _sla_starts(support, str(stored[0])) == 1


async def test_organisations_have_their_own_keys(support: Support) -> None:
    first_org, first = await _partner(support)
    second_org, second = await _partner(support)
    category = await support.category(pb.CATEGORY_AUDIENCE_PARTNER)
    key = unique("message-")
    mine = await _send(support, _message(category.id, key), first)
    theirs = await _send(support, _message(category.id, key), second)
    assert mine.id != theirs.id
    assert mine.organisation_id == first_org
    assert theirs.organisation_id == second_org
    assert await _tickets_with(support, first_org, key) == [uuid.UUID(mine.id)]
    assert await _tickets_with(support, second_org, key) == [uuid.UUID(theirs.id)]


async def test_a_bad_key_is_a_field_violation(support: Support) -> None:
    org, partner = await _partner(support)
    category = await support.category(pb.CATEGORY_AUDIENCE_PARTNER)
    for bad in ("k" * 101, "bell\x07", "line\nbreak", " padded"):
        problem = await fails(_send(support, _message(category.id, bad), partner))
        assert problem.code == grpc.StatusCode.INVALID_ARGUMENT, bad
        assert fields(problem) == {"idempotency_key"}, (bad, problem.violations)
        assert await _tickets_with(support, org, bad[:100]) == []
    longest = "k" * 100
    assert (await _send(support, _message(category.id, longest), partner)).organisation_id == org
