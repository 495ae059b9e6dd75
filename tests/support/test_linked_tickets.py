"""Tickets a service opens about something of its own (an order escalation): the deadline it
sets becomes every SLA target, the link names what it is about, and only services close such a
ticket; people can do neither."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from guichet.support.v1 import support_pb2 as pb

from tests.identity.harness import DELIVERY_PARTNER, fails, unique
from tests.support.harness import Support


def _stamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


async def test_a_services_deadline_is_the_tickets_sla_and_only_services_close_it(
    support: Support,
) -> None:
    org, _, partner = await support.customer(
        kind=DELIVERY_PARTNER, operations_email=f"{unique('ops.')}@napoli.example.org"
    )
    category = await support.category(pb.CATEGORY_AUDIENCE_PARTNER)
    worker = await support.service("worker")
    order_id = str(uuid.uuid4())
    respond_by = datetime.now(UTC) + timedelta(minutes=20)
    link = pb.TicketLink(kind="order", id=order_id, label="NAP-1001")

    # A partner may neither set a deadline nor a link.
    refused = await fails(
        support.stub.SendPartnerMessage(
            pb.SendPartnerMessageRequest(
                category_id=category.id,
                subject="Rupture",
                body="Plus de mozzarella",
                respond_by=_stamp(respond_by),
                link=link,
            ),
            metadata=partner,
        )
    )
    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert {field for field, _ in refused.violations} == {"respond_by", "link"}

    opened = await support.stub.SendPartnerMessage(
        pb.SendPartnerMessageRequest(
            category_id=category.id,
            subject="Order NAP-1001: Pizza 1 out of stock",
            body="Cancel before the deadline.",
            organisation_id=org,
            idempotency_key=str(uuid.uuid4()),
            respond_by=_stamp(respond_by),
            link=link,
        ),
        metadata=worker,
    )
    ticket = opened.ticket
    assert (ticket.link.kind, ticket.link.id, ticket.link.label) == ("order", order_id, "NAP-1001")
    assert ticket.respond_by.ToDatetime(tzinfo=UTC) == respond_by
    history = await support.history(ticket.id)
    first = next(c for c in history.clocks if c.clock == pb.SLA_CLOCK_FIRST_RESPONSE)
    # 20 minutes in plain time (the plan's calendar and its 240 minutes do not apply).
    assert first.target_minutes in (19, 20)
    assert abs(first.due_time.ToDatetime(tzinfo=UTC) - respond_by) <= timedelta(seconds=1)

    # People close it as any ticket; through CloseLinkedTicket only a service may.
    _, agent = await support.agent()
    as_agent = await fails(
        support.stub.CloseLinkedTicket(
            pb.CloseLinkedTicketRequest(
                ticket_id=ticket.id, status=pb.TICKET_STATUS_FINISHED, note="Fini"
            ),
            metadata=agent,
        )
    )
    assert as_agent.code == grpc.StatusCode.PERMISSION_DENIED
    no_note = await fails(
        support.stub.CloseLinkedTicket(
            pb.CloseLinkedTicketRequest(ticket_id=ticket.id, status=pb.TICKET_STATUS_FINISHED),
            metadata=worker,
        )
    )
    assert {field for field, _ in no_note.violations} == {"note"}
    note = "Order NAP-1001 was cancelled at the support deadline. The payment was refunded."
    closed = await support.stub.CloseLinkedTicket(
        pb.CloseLinkedTicketRequest(
            ticket_id=ticket.id, status=pb.TICKET_STATUS_FINISHED, note=note
        ),
        metadata=worker,
    )
    assert closed.closed and closed.ticket.status == pb.TICKET_STATUS_FINISHED
    again = await support.stub.CloseLinkedTicket(
        pb.CloseLinkedTicketRequest(
            ticket_id=ticket.id, status=pb.TICKET_STATUS_FINISHED, note=note
        ),
        metadata=worker,
    )
    assert not again.closed
    messages = (await support.history(ticket.id)).messages
    assert [(m.author_name, m.body) for m in messages].count(("Guichet", note)) == 1

    # A person's ticket (no link) is not a service's to close.
    own = await support.stub.SendPartnerMessage(
        pb.SendPartnerMessageRequest(category_id=category.id, subject="Sacs", body="Pas reçus"),
        metadata=partner,
    )
    unlinked = await fails(
        support.stub.CloseLinkedTicket(
            pb.CloseLinkedTicketRequest(
                ticket_id=own.ticket.id, status=pb.TICKET_STATUS_FINISHED, note="Fini"
            ),
            metadata=worker,
        )
    )
    assert unlinked.code == grpc.StatusCode.FAILED_PRECONDITION
    assert unlinked.reason == "ticket_not_linked"
