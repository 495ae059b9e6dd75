"""A delivery partner's "send us a message": it becomes a ticket of the partner's contract, and
answers go to the address it names, else to the contract's operations contact.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import FailedPrecondition, InvalidArgument, Unauthenticated, Validator
from services.support.domain.categories import consume_view
from services.support.domain.common import (
    TEXT_MAX,
    TITLE_MAX,
    check_text,
    constraint_name,
    optional_email,
    uuid_or_raise,
)
from services.support.domain.sla import start_sla
from services.support.domain.tickets import category_for, customer_contract, search_text_of
from services.support.models import (
    Audience,
    Channel,
    Contract,
    Kind,
    OrganisationKind,
    Priority,
    Status,
    Ticket,
)
from services.support.settings import SupportSettings

IDEMPOTENCY_KEY_MAX = 100

_EMAIL_IN_TEXT = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_LINK_KIND = re.compile(r"^[a-z][a-z_]{0,31}$")
MAX_RESPOND_BY = timedelta(days=30)


@dataclass(frozen=True)
class TicketLinkInput:
    """What a ticket a service opens is about, in that service: e.g. ("order", id, "NAP-1001")."""

    kind: str
    id: str
    label: str


def named_address(text: str) -> str | None:
    """The first e-mail address a message names, if any ("answer me at …")."""
    for match in _EMAIL_IN_TEXT.finditer(text):
        try:
            return validate_email(match.group(0), check_deliverability=False).normalized
        except EmailNotValidError:
            continue
    return None


async def send_partner_message(
    *,
    session: AsyncSession,
    settings: SupportSettings,
    actor: Principal | None,
    now: datetime,
    category_id: str,
    subject: str,
    body: str,
    reply_to_email: str,
    organisation_id: str,
    view_id: str,
    idempotency_key: str = "",
    respond_by: datetime | None = None,
    link: TicketLinkInput | None = None,
) -> Ticket:
    """A partner's message becomes a ticket; answers go to the address it names, else to the
    operations contact of the partner's contract.

    The partners service may send one on a store's behalf with its service token (a message
    recorded while support was away): it then names the store in `organisation_id`.

    With an `idempotency_key`, the organisation's ticket already opened with that key is returned
    as it is (no second ticket, SLA workflow or view consumed): the partners service sends its
    message id, so an opening retried after a lost answer, or raced by the partner's own request
    and the worker, ends with one ticket.

    A service may also set `respond_by` (every SLA target of the ticket due then, in plain time:
    an order escalation's support deadline) and `link` (what the ticket is about: the order).
    People may not: a deadline is the platform's promise, not the asker's."""
    if actor is None:
        raise Unauthenticated("authentication required")
    v = Validator()
    if actor.is_service:
        v.require("organisation_id", organisation_id)
    category = await category_for(session, v, category_id, Audience.PARTNER)
    check_text(v, "subject", subject, TITLE_MAX)
    check_text(v, "body", body, TEXT_MAX, lines=True)
    explicit = optional_email(v, "reply_to_email", reply_to_email)
    key = _idempotency_key(v, idempotency_key)
    if respond_by is not None:
        v.check(actor.is_service, "respond_by", "is set by the platform only")
        v.check(respond_by.tzinfo is not None, "respond_by", "must be an instant")
        v.check(respond_by <= now + MAX_RESPOND_BY, "respond_by", "must be within 30 days")
    if link is not None:
        v.check(actor.is_service, "link", "is set by the platform only")
        v.check(bool(_LINK_KIND.match(link.kind)), "link.kind", "must be a lower-case word")
        check_text(v, "link.id", link.id, 64)
        check_text(v, "link.label", link.label, 100)
    v.raise_if_any()
    assert category is not None
    if actor.is_service:
        contract = await _service_contract(session, organisation_id)
    else:
        contract = await customer_contract(
            session, actor, organisation_id, OrganisationKind.DELIVERY_PARTNER
        )
    if key is not None:
        # Before anything that may have changed since the first call (its reply-to address).
        opened = await _ticket_by_key(session, contract.organisation_id, key)
        if opened is not None:
            return opened
    reply_to = explicit or named_address(body) or contract.operations_email
    if reply_to is None:
        raise InvalidArgument(
            [("reply_to_email", "is required: no operations contact e-mail is on file")]
        )
    ticket = Ticket(
        id=uuid.uuid4(),
        organisation_id=contract.organisation_id,
        channel=Channel.PARTNER_MESSAGE.value,
        category_id=category.id,
        title=subject.strip(),
        description=body.strip(),
        screen_code="",
        example_record="",
        priority=Priority.NORMAL.value,
        status=Status.OPEN.value,
        kind=Kind.SUPPORT.value,
        plan_id=contract.plan_id,
        opened_by_id=actor.subject,
        opened_by_name=actor.username,
        reply_to_email=reply_to,
        consulting_minutes=0,
        event_seq=0,
        at_risk=False,
        breached=False,
        created_at=now,
        updated_at=now,
        idempotency_key=key,
        respond_by=respond_by,
        link_kind=link.kind if link else "",
        link_id=link.id.strip() if link else "",
        link_label=link.label.strip() if link else "",
    )
    ticket.search_text = search_text_of(ticket)
    try:
        async with session.begin_nested():
            session.add(ticket)
            await session.flush()
    except IntegrityError as error:
        # A concurrent call with the same key committed first (this insert waited for it on the
        # unique index): its ticket is the answer, and this call changes nothing.
        if key is None or _KEY_INDEX not in constraint_name(error):
            raise
        winner = await _ticket_by_key(session, contract.organisation_id, key)
        if winner is None:
            raise
        return winner
    if not actor.is_service:
        await consume_view(session, actor, view_id, category.id, ticket)
    await start_sla(session, settings, ticket, now=now)
    await session.refresh(ticket, ["number"])
    return ticket


_KEY_INDEX = "uq_tickets_idempotency_key"


def _idempotency_key(v: Validator, raw: str) -> str | None:
    """The caller's key as given (compared exactly); empty means none."""
    if not raw:
        return None
    field = "idempotency_key"
    v.check(
        len(raw) <= IDEMPOTENCY_KEY_MAX,
        field,
        f"must be at most {IDEMPOTENCY_KEY_MAX} characters",
    )
    v.check(raw.isprintable(), field, "must contain printable characters only")
    v.check(raw == raw.strip(), field, "must not start or end with spaces")
    return raw


async def _ticket_by_key(
    session: AsyncSession, organisation_id: uuid.UUID, key: str
) -> Ticket | None:
    return await session.scalar(
        select(Ticket).where(
            Ticket.organisation_id == organisation_id, Ticket.idempotency_key == key
        )
    )


async def _service_contract(session: AsyncSession, organisation_id: str) -> Contract:
    contract = await session.get(Contract, uuid_or_raise("organisation_id", organisation_id))
    if contract is None or contract.organisation_kind != OrganisationKind.DELIVERY_PARTNER:
        raise FailedPrecondition(
            "this store has no support contract; ask the support team", reason="no_contract"
        )
    return contract
