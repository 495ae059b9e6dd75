"""A partner's message gets one ticket in support, however often its opening is tried.

The opening goes through `services.kit.support_tickets.open_support_ticket` from the partner's
request (partner's token) and from the OpenPartnerTicket workflow's activity (worker's token),
both with the message id as support's idempotency key: a retry after a lost answer, or the request
racing the worker, finds the ticket the first call opened.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc
from guichet.partners.v1 import partners_pb2 as pb, partners_pb2_grpc
from guichet.support.v1 import support_pb2, support_pb2_grpc

from services.kit.grpcclient import ServiceTokenSource, create_channel
from services.kit.support_tickets import open_support_ticket
from tests.partners.harness import Metadata, Partners, StoreFixture, eventually
from workflows.contracts.partners import SUPPORT_CATEGORY_CODES
from workflows.partners_activities import PartnersActivities

N = 8
Record = Callable[[str, Any], None]


def _token_source(token: Metadata) -> ServiceTokenSource:
    """The worker's token, as the worker's channels carry it."""
    (_, value), *_ = token

    async def fetch() -> tuple[str, int]:
        return value.removeprefix("Bearer "), 3600

    return ServiceTokenSource(fetch)


@asynccontextmanager
async def _as_worker(
    partners: Partners,
) -> AsyncIterator[tuple[PartnersActivities, support_pb2_grpc.SupportServiceStub]]:
    """The partners activities on channels made as `workflows.worker` makes them."""
    tokens = _token_source(partners.worker)
    support_channel = create_channel(f"127.0.0.1:{partners.support_port}", tokens=tokens)
    partners_channel = create_channel(partners.address, tokens=tokens)
    try:
        support = support_pb2_grpc.SupportServiceStub(support_channel)
        activities = PartnersActivities(
            partners_pb2_grpc.PartnersServiceStub(partners_channel), support
        )
        yield activities, support
    finally:
        await support_channel.close()
        await partners_channel.close()


async def _pending_message(partners: Partners) -> tuple[StoreFixture, pb.SupportMessage]:
    """A message recorded while support would not take it (no contract yet), then the contract
    set: it now waits for the next opening, from the workflow or from a retry."""
    store = await partners.store(register=False)
    await partners.stub.RegisterStore(
        pb.RegisterStoreRequest(store_id=store.id, operations_email="ops@example.org"),
        metadata=partners.admin,
    )
    sent = await partners.stub.SendSupportMessage(
        pb.SendSupportMessageRequest(
            store_id=store.id,
            category=pb.SUPPORT_CATEGORY_OTHER,
            subject="Sacs",
            body="Pas reçu les sacs isothermes",
        ),
        metadata=store.token,
    )
    assert sent.message.status == pb.SUPPORT_MESSAGE_STATUS_PENDING_TICKET
    assert partners.support is not None
    await partners.support.SetContract(
        support_pb2.SetContractRequest(organisation_id=store.id, plan_id=partners.support_plan),
        metadata=partners.admin,
    )
    return store, sent.message


async def _open(
    support: support_pb2_grpc.SupportServiceStub,
    message: pb.SupportMessage,
    metadata: Metadata = (),
) -> str:
    ticket = await open_support_ticket(
        support,
        category_code=SUPPORT_CATEGORY_CODES["other"],
        store_id=message.store_id,
        subject=message.subject,
        body=message.body,
        reply_to_email=message.reply_to_email,
        idempotency_key=message.id,
        seconds=10.0,
        metadata=metadata,
    )
    return str(ticket.id)


async def _tickets_of(partners: Partners, store_id: str) -> list[str]:
    assert partners.support is not None
    listed = await partners.support.ListTickets(
        support_pb2.ListTicketsRequest(organisation_id=store_id), metadata=partners.admin
    )
    return [t.id for t in listed.tickets]


async def _recorded(partners: Partners, message_id: str) -> pb.SupportMessage | None:
    response = await partners.stub.GetSupportMessage(
        pb.GetSupportMessageRequest(message_id=message_id), metadata=partners.worker
    )
    message: pb.SupportMessage = response.message
    return message if message.status == pb.SUPPORT_MESSAGE_STATUS_TICKET_OPENED else None


async def test_an_opening_retried_after_a_lost_answer_finds_the_first_ticket(
    partners: Partners,
) -> None:
    """Support opened the ticket but its answer never came back: the activity's retry (and the
    workflow's own round, whenever it comes) get that ticket, and support holds one."""
    store, message = await _pending_message(partners)
    async with _as_worker(partners) as (activities, support):
        lost = await _open(support, message)  # committed in support; the worker never hears
        retried = await _open(support, message)
        assert retried == lost
        assert await activities.open_support_ticket(message.id) == lost
    recorded = await eventually(lambda: _recorded(partners, message.id), within=30)
    assert recorded.ticket_id == lost
    assert await _tickets_of(partners, store.id) == [lost]


async def test_the_partners_request_racing_the_worker_opens_one_ticket(
    partners: Partners, record_property: Record
) -> None:
    """The partner's own opening (partner's token) and the worker's (service token) at once."""
    store, message = await _pending_message(partners)
    plain = create_channel(f"127.0.0.1:{partners.support_port}")
    try:
        as_partner = support_pb2_grpc.SupportServiceStub(plain)
        async with _as_worker(partners) as (_, as_worker):
            results = await asyncio.gather(
                *(
                    _open(as_worker, message) if i % 2 else _open(as_partner, message, store.token)
                    for i in range(N)
                ),
                return_exceptions=True,
            )
    finally:
        await plain.close()
    errors = [r for r in results if isinstance(r, BaseException)]
    opened = {r for r in results if isinstance(r, str)}
    stored = await _tickets_of(partners, store.id)
    record_property(
        "reliability",
        {
            "kind": "race",
            "name": "one support ticket per partner message",
            "tried": N,
            "lost": len(errors) + abs(len(opened) - 1) + abs(len(stored) - 1),
        },
    )
    assert not errors, [
        (e.code(), e.details()) if isinstance(e, grpc.aio.AioRpcError) else e for e in errors
    ]
    assert len(opened) == 1
    assert stored == list(opened)
    recorded = await eventually(lambda: _recorded(partners, message.id), within=30)
    assert recorded.ticket_id in opened
