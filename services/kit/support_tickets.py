"""Opening a partner's message as a ticket in the support service (support's public contract).

Shared infrastructure because two sides call it and must call it identically: the partners
servicer (right after the commit, with the partner's own token) and the OpenPartnerTicket
workflow's activity (later, with the worker's service token). It only speaks support's protos;
which support category a partner's message goes to is the caller's (the partners contract's
`SUPPORT_CATEGORY_CODES`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp
from guichet.support.v1 import support_pb2, support_pb2_grpc


async def open_support_ticket(
    support: support_pb2_grpc.SupportServiceStub,
    *,
    category_code: str,
    store_id: str,
    subject: str,
    body: str,
    reply_to_email: str,
    idempotency_key: str,
    seconds: float,
    metadata: Sequence[tuple[str, str]] = (),
    respond_by: datetime | None = None,
    link: support_pb2.TicketLink | None = None,
) -> support_pb2.Ticket:
    """Sends the message as a partner message; returns the ticket (id and number).

    The category is support's partner category whose code is `category_code`; LookupError when
    support has none. gRPC errors pass through. `idempotency_key` is the message id: support
    answers a second opening of the same message (a retry after a lost answer, or the partner's
    request racing the worker) with the ticket of the first.

    `respond_by` and `link` (service tokens only, support refuses them from a person): an order
    escalation's support deadline, which becomes the ticket's SLA, and the order it is about.
    """
    deadline = None
    if respond_by is not None:
        deadline = Timestamp()
        deadline.FromDatetime(respond_by)
    categories = await support.ListCategories(
        support_pb2.ListCategoriesRequest(audience=support_pb2.CATEGORY_AUDIENCE_PARTNER),
        timeout=seconds,
        metadata=tuple(metadata),
    )
    category_id = next((c.id for c in categories.categories if c.code == category_code), None)
    if category_id is None:
        raise LookupError(f"support has no partner category {category_code}")
    response = await support.SendPartnerMessage(
        support_pb2.SendPartnerMessageRequest(
            category_id=category_id,
            subject=subject,
            body=body,
            reply_to_email=reply_to_email,
            organisation_id=store_id,
            idempotency_key=idempotency_key,
            respond_by=deadline,
            link=link,
        ),
        timeout=seconds,
        metadata=tuple(metadata),
    )
    ticket: support_pb2.Ticket = response.ticket
    return ticket
