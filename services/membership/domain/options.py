"""Option changes: a workshop's requests to add or remove an option of its program, recorded
(portal or e-mail, never phone) and decided by the program team; removals only in the yearly
window."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import FailedPrecondition, InvalidArgument, NotFound, Validator
from services.kit.paging import (
    Page,
    keyset_after as _after,
    page_token as _page_token,
    parse_page as _parse_page,
)
from services.kit.temporal import MEMBERSHIP
from services.membership.domain.banner import MembershipView, membership_of, membership_view
from services.membership.domain.common import (
    actor_id,
    already_taken,
    check_long_text,
    check_uuid,
    flush_or_raise,
    operator_on_workshop,
    parse_moment,
    parse_uuid,
    queue_mail,
    workshop_party,
)
from services.membership.models import (
    MembershipOption,
    MembershipStatus,
    OptionChange,
    OptionChangeRequest,
    OptionChangeStatus,
    ProgramOption,
    RequestChannel,
    WorkshopMembership,
)
from services.membership.settings import MembershipSettings


@dataclass(frozen=True)
class OptionRequestView:
    request: OptionChangeRequest
    membership: WorkshopMembership
    option: ProgramOption


def window_refusal(membership: WorkshopMembership) -> FailedPrecondition:
    opens = membership.renewal_date.isoformat()
    return FailedPrecondition(
        "options can be removed only once a year, in the window that opens at the renewal "
        f"date: the next window opens on {opens}",
        reason="removal_window_closed",
        violations=[("change", f"removals open on {opens}")],
    )


async def request_option_change(
    *,
    session: AsyncSession,
    settings: MembershipSettings,
    actor: Principal | None,
    now: datetime,
    workshop_id: str,
    option_id: str,
    change: str,
    channel: str,
    note: str,
) -> OptionRequestView:
    """Records a request: the workshop on the portal, or an operator for a request received by
    e-mail. Requests by phone are refused. Removals outside the window are refused with the date
    it opens. The program team is told by e-mail."""
    parsed_workshop = parse_uuid("workshop_id", workshop_id)
    party = workshop_party(actor, parsed_workshop)
    v = Validator()
    parsed_option = check_uuid(v, "option_id", option_id)
    v.require("change", change, "must be ADD or REMOVE")
    if channel == "phone":
        v.check(
            False,
            "channel",
            "changes are never accepted by phone: send them by e-mail",
            code="channel",
        )
    elif party == "workshop":
        v.check(
            channel in ("", RequestChannel.PORTAL),
            "channel",
            "a workshop requests on the portal",
            code="channel",
        )
        channel = RequestChannel.PORTAL.value
    else:
        v.check(
            channel == RequestChannel.EMAIL,
            "channel",
            "operators record requests received by e-mail (channel EMAIL)",
            code="operator_channel",
        )
    note = check_long_text(v, "note", note, limit=2000, required=False)
    v.raise_if_any()
    assert parsed_option is not None
    membership = await membership_of(session, parsed_workshop, lock=True, active=True)
    option = await session.get(ProgramOption, parsed_option)
    if option is None or option.program_id != membership.program_id:
        raise InvalidArgument([("option_id", "is not an option of the workshop's program")])
    held = await session.get(MembershipOption, (membership.id, option.id)) is not None
    if change == OptionChange.ADD and held:
        raise FailedPrecondition("the workshop already holds this option", reason="option_held")
    if change == OptionChange.REMOVE:
        if not held:
            raise FailedPrecondition(
                "the workshop does not hold this option", reason="option_not_held"
            )
        if not membership.window_open:
            raise window_refusal(membership)
    request = OptionChangeRequest(
        id=uuid.uuid4(),
        membership_id=membership.id,
        option_id=option.id,
        change=change,
        channel=channel,
        status=OptionChangeStatus.PENDING.value,
        note=note,
        requested_by=actor_id(actor),
        created_at=now,
    )
    session.add(request)
    await flush_or_raise(
        session,
        {
            "uq_option_change_requests_pending": already_taken(
                "option_id", "a request for this option is already pending"
            )
        },
    )
    verb = "ajout" if change == OptionChange.ADD else "retrait"
    await queue_mail(
        session,
        settings,
        to=settings.program_team_email,
        subject=f"Demande de {verb} d'option : {membership.workshop_name}",
        kind="option_change",
        about={MEMBERSHIP: str(membership.id)},
        body=(
            f"L'atelier {membership.workshop_name} demande le {verb} de l'option "
            f"« {option.name} » ({option.code}).\n"
            f"Canal : {channel}. Note : {note or '—'}\n"
            f"Référence de la demande : {request.id}\n"
        ),
    )
    return OptionRequestView(request, membership, option)


async def list_option_change_requests(
    *,
    session: AsyncSession,
    actor: Principal | None,
    workshop_id: str,
    page_size: int,
    page_token: str,
) -> Page[OptionRequestView]:
    parsed = parse_uuid("workshop_id", workshop_id)
    workshop_party(actor, parsed)
    v = Validator()
    page = _parse_page(v, "option-requests", page_size, page_token, [parse_moment, uuid.UUID])
    v.raise_if_any()
    columns = [OptionChangeRequest.created_at, OptionChangeRequest.id]
    query = (
        select(OptionChangeRequest, WorkshopMembership, ProgramOption)
        .join(WorkshopMembership, WorkshopMembership.id == OptionChangeRequest.membership_id)
        .join(ProgramOption, ProgramOption.id == OptionChangeRequest.option_id)
        .where(WorkshopMembership.workshop_id == parsed, *_after(page, columns, descending=True))
        .order_by(*(c.desc() for c in columns))
        .limit(page.size + 1)
    )
    rows = [OptionRequestView(*row) for row in (await session.execute(query)).all()]
    token = ""
    if len(rows) > page.size:
        rows = rows[: page.size]
        last = rows[-1].request
        token = _page_token("option-requests", (last.created_at.isoformat(), last.id))
    return Page(rows, token)


async def decide_option_change(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    workshop_id: str,
    request_id: str,
    approve: bool,
    note: str,
) -> tuple[OptionRequestView, MembershipView]:
    """An operator approves (the change is applied) or rejects (with a reason) a pending request.
    A removal requested while the window was open may be approved after it closed."""
    parsed_workshop = parse_uuid("workshop_id", workshop_id)
    operator_on_workshop(actor, parsed_workshop, "decide on its own requests")
    v = Validator()
    parsed = check_uuid(v, "request_id", request_id)
    note = check_long_text(v, "note", note, limit=2000, required=False)
    if not approve and not note:
        v.add("note", "is required to reject", "note_required")
    v.raise_if_any()
    request = await session.get(OptionChangeRequest, parsed, with_for_update=True)
    owner = (
        await session.scalar(
            select(WorkshopMembership.workshop_id).where(
                WorkshopMembership.id == request.membership_id
            )
        )
        if request
        else None
    )
    if request is None or owner != parsed_workshop:
        raise NotFound("option change request not found")
    if request.status != OptionChangeStatus.PENDING:
        raise FailedPrecondition(
            f"this request was already {request.status}", reason="already_decided"
        )
    membership = await session.get(WorkshopMembership, request.membership_id, with_for_update=True)
    option = await session.get(ProgramOption, request.option_id)
    assert membership is not None and option is not None
    if approve:
        if membership.status != MembershipStatus.ACTIVE:
            raise FailedPrecondition("this membership has ended", reason="membership_ended")
        held = await session.get(MembershipOption, (membership.id, option.id))
        if request.change == OptionChange.ADD and held is None:
            session.add(
                MembershipOption(membership_id=membership.id, option_id=option.id, added_at=now)
            )
        elif request.change == OptionChange.REMOVE and held is not None:
            await session.delete(held)
    request.status = (OptionChangeStatus.APPROVED if approve else OptionChangeStatus.REJECTED).value
    request.decided_by = actor_id(actor)
    request.decision_note = note
    request.decided_at = now
    membership.updated_at = now
    await session.flush()
    return OptionRequestView(request, membership, option), await membership_view(
        session, membership
    )
