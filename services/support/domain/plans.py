"""Support plans (SLA targets per priority, in business minutes) and contracts (which plan an
organisation is on, and where answers to its partner messages go).

Moving an organisation to another plan moves its unfinished tickets at once: their clocks are
recomputed and the workflow is told (`sla.ticket_event`).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.auth import Principal
from services.kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Validator,
)
from services.kit.paging import Page, parse_page
from services.support.domain.common import (
    ACTIVE_STATUSES,
    CODE_PATTERN,
    PRIORITY_ORDER,
    check_text,
    customer_organisations,
    fetch_page,
    flush_unique,
    is_agent,
    optional_email,
    parse_uuid,
    require_admin,
    require_agent,
    require_user,
    uuid_or_raise,
)
from services.support.domain.sla import ticket_event
from services.support.models import (
    Calendar,
    Contract,
    OrganisationKind,
    Plan,
    PlanTarget,
    Priority,
    Ticket,
)
from services.support.settings import SupportSettings
from workflows.contracts.support import POLICY_CHANGE

DEFAULT_WARNING_PERCENT = 80
MAX_TARGET_MINUTES = 525_600  # a year of business minutes is already no promise at all


@dataclass(frozen=True)
class TargetInput:
    priority: str
    first_response_minutes: int
    next_response_minutes: int
    resolution_minutes: int


@dataclass(frozen=True)
class PlanView:
    plan: Plan
    targets: list[PlanTarget]


async def _plan_view(session: AsyncSession, plan: Plan) -> PlanView:
    targets = list(await session.scalars(select(PlanTarget).where(PlanTarget.plan_id == plan.id)))
    order = {priority.value: index for index, priority in enumerate(PRIORITY_ORDER)}
    return PlanView(plan, sorted(targets, key=lambda t: order.get(t.priority, 9)))


async def create_plan(
    *,
    session: AsyncSession,
    actor: Principal | None,
    now: datetime,
    code: str,
    name: str,
    calendar_id: str,
    warning_percent: int,
    targets: Sequence[TargetInput],
) -> PlanView:
    """A plan must promise something for every priority, in minutes of its calendar."""
    require_admin(actor)
    v = Validator()
    v.require("code", code)
    v.check(
        not code or bool(CODE_PATTERN.match(code)), "code", "must be 1 to 40 of A-Z a-z 0-9 _ -"
    )
    check_text(v, "name", name, 100)
    calendar = parse_uuid(v, "calendar_id", calendar_id)
    percent = warning_percent or DEFAULT_WARNING_PERCENT
    v.check(1 <= percent <= 99, "warning_percent", "must be between 1 and 99")
    seen: set[str] = set()
    for index, target in enumerate(targets):
        prefix = f"targets[{index}]"
        if target.priority not in {p.value for p in Priority}:
            v.check(False, f"{prefix}.priority", "must be low, normal, high or urgent")
        elif target.priority in seen:
            # One target per priority: JSON Schema's uniqueItems compares whole items only.
            v.check(False, f"{prefix}.priority", "is listed twice", code="duplicate_priority")
        seen.add(target.priority)
        for field_name in ("first_response_minutes", "next_response_minutes", "resolution_minutes"):
            minutes = getattr(target, field_name)
            v.check(
                0 < minutes <= MAX_TARGET_MINUTES,
                f"{prefix}.{field_name}",
                f"must be between 1 and {MAX_TARGET_MINUTES}",
            )
    missing = [p.value for p in Priority if p.value not in seen]
    v.check(
        not missing,
        "targets",
        f"must cover every priority; missing: {', '.join(missing)}",
        code="priorities_missing",
    )
    v.raise_if_any()
    assert calendar is not None
    if await session.get(Calendar, calendar) is None:
        raise InvalidArgument([("calendar_id", "no such calendar")])
    plan = Plan(
        id=uuid.uuid4(),
        code=code,
        name=name.strip(),
        calendar_id=calendar,
        warning_percent=percent,
        created_at=now,
    )
    session.add(plan)
    await flush_unique(
        session,
        {"uq_plans_code": AlreadyExists("code: is taken", violations=[("code", "is taken")])},
    )
    for target in targets:
        session.add(
            PlanTarget(
                plan_id=plan.id,
                priority=target.priority,
                first_response_minutes=target.first_response_minutes,
                next_response_minutes=target.next_response_minutes,
                resolution_minutes=target.resolution_minutes,
            )
        )
    await session.flush()
    return await _plan_view(session, plan)


async def list_plans(
    *, session: AsyncSession, actor: Principal | None, page_size: int, page_token: str
) -> Page[PlanView]:
    require_agent(actor)
    v = Validator()
    page = parse_page(v, "plans", page_size, page_token, [str, uuid.UUID])
    v.raise_if_any()
    query = select(Plan).order_by(Plan.code, Plan.id)
    if page.after is not None:
        query = query.where(tuple_(Plan.code, Plan.id) > tuple_(*page.after))
    found = await fetch_page(session, query, page, "plans", lambda p: (p.code, p.id))
    return Page(
        items=[await _plan_view(session, plan) for plan in found.items],
        next_page_token=found.next_page_token,
    )


# --------------------------------------------------------------------------------------------
# Contracts
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrganisationInfo:
    """What identity says about an organisation (fetched by the servicer)."""

    id: str
    name: str
    kind: str


OrganisationLookup = Callable[[str], Awaitable[OrganisationInfo | None]]


async def set_contract(
    *,
    session: AsyncSession,
    settings: SupportSettings,
    actor: Principal | None,
    now: datetime,
    lookup: OrganisationLookup,
    organisation_id: str,
    plan_id: str,
    operations_email: str,
) -> tuple[Contract, int]:
    """Puts an organisation on a plan; its unfinished tickets follow the new plan at once."""
    require_admin(actor)
    v = Validator()
    organisation = parse_uuid(v, "organisation_id", organisation_id)
    plan_uuid = parse_uuid(v, "plan_id", plan_id)
    email = optional_email(v, "operations_email", operations_email)
    v.raise_if_any()
    assert organisation is not None and plan_uuid is not None
    plan = await session.get(Plan, plan_uuid)
    if plan is None:
        raise InvalidArgument([("plan_id", "no such plan", "unknown_plan")])
    info = await lookup(str(organisation))
    if info is None:
        raise NotFound("organisation not found")
    if info.kind not in {kind.value for kind in OrganisationKind}:
        raise FailedPrecondition(
            f"a {info.kind} organisation cannot hold a support contract "
            "(erp_customer or delivery_partner only)",
            reason="not_a_customer",
            violations=[("organisation_id", "is not an erp_customer or a delivery_partner")],
        )
    contract = await session.get(Contract, organisation, with_for_update=True)
    moved = 0
    if contract is None:
        contract = Contract(
            organisation_id=organisation,
            organisation_name=info.name,
            organisation_kind=info.kind,
            plan_id=plan.id,
            operations_email=email,
            created_at=now,
            updated_at=now,
        )
        session.add(contract)
        await session.flush()
    else:
        changed = contract.plan_id != plan.id
        contract.plan_id = plan.id
        contract.organisation_name = info.name
        contract.operations_email = email
        contract.updated_at = now
        if changed:
            tickets = await session.scalars(
                select(Ticket)
                .where(
                    Ticket.organisation_id == organisation,
                    Ticket.status.in_([s.value for s in ACTIVE_STATUSES]),
                )
                .order_by(Ticket.id)
                .with_for_update()
            )
            for ticket in tickets:
                ticket.plan_id = plan.id
                ticket.updated_at = now
                await ticket_event(
                    session,
                    settings,
                    ticket,
                    kind=POLICY_CHANGE,
                    now=now,
                    actor_id=actor.subject if actor else "",
                    policy_changed=True,
                )
                moved += 1
    return contract, moved


async def get_contract(
    *, session: AsyncSession, actor: Principal | None, organisation_id: str
) -> tuple[Contract, PlanView]:
    """Operators read any contract; a customer reads their own organisation's."""
    actor = require_user(actor)
    organisation = uuid_or_raise("organisation_id", organisation_id)
    if not is_agent(actor) and organisation not in customer_organisations(actor):
        raise NotFound("contract not found")
    contract = await session.get(Contract, organisation)
    if contract is None:
        raise NotFound("contract not found")
    plan = await session.get(Plan, contract.plan_id)
    assert plan is not None
    return contract, await _plan_view(session, plan)


async def list_contracts(
    *, session: AsyncSession, actor: Principal | None, page_size: int, page_token: str
) -> Page[Contract]:
    require_agent(actor)
    v = Validator()
    page = parse_page(v, "contracts", page_size, page_token, [str, uuid.UUID])
    v.raise_if_any()
    query = select(Contract).order_by(Contract.organisation_name, Contract.organisation_id)
    if page.after is not None:
        query = query.where(
            tuple_(Contract.organisation_name, Contract.organisation_id) > tuple_(*page.after)
        )
    return await fetch_page(
        session, query, page, "contracts", lambda c: (c.organisation_name, c.organisation_id)
    )
