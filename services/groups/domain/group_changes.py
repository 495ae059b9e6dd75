"""Saving a group's changes (typed CONFIRMER / CONFIRM): rename, add and remove clients, assign,
re-role and unassign employees, in one transaction; or, with `dry_run`, only the summary of the
access each employee would gain or lose.

Every kind of access change becomes its own process request (`process_requests.record_request`),
recorded with its workflow start in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.groups.domain.authorisation import BUSINESS_ACCOUNT_MANAGER, group_for_manager
from services.groups.domain.client_groups import (
    GroupView,
    check_group_name,
    check_name_free,
    check_word,
    flush_name,
    group_views,
)
from services.groups.domain.common import (
    MAX_CLIENTS_PER_CALL,
    MAX_EMPLOYEES_PER_CALL,
    accounts_by_client,
    among,
    collapse_spaces,
    group_account_count,
    parse_uuid,
    uuid_list,
)
from services.groups.domain.employees import Directory, Person, check_role
from services.groups.domain.membership import check_clients_available, insert_members
from services.groups.domain.process_requests import has_requests_in_flight, record_request
from services.groups.models import (
    ClientGroup,
    EmployeeAssignment,
    GroupMember,
    Operation,
    ProcessRequest,
)
from services.kit.auth import Principal
from services.kit.errors import Validator

CONFIRM_WORDS = frozenset({"CONFIRMER", "CONFIRM"})


@dataclass(frozen=True)
class AccessChange:
    employee_id: uuid.UUID
    username: str
    role_before: str | None
    role_after: str | None
    accounts_before: int
    accounts_after: int
    granted: int
    revoked: int
    role_changed: int


@dataclass(frozen=True)
class AccessSummary:
    changes: list[AccessChange]
    clients_added: int = 0
    clients_removed: int = 0
    accounts_added: int = 0
    accounts_removed: int = 0


@dataclass(frozen=True)
class UpdateResult:
    group: GroupView
    summary: AccessSummary
    requests: list[ProcessRequest]


@dataclass(frozen=True)
class _Plan:
    """A change to a group, checked, and the access it moves (counts only)."""

    rename: str | None
    add: list[uuid.UUID]
    remove: list[uuid.UUID]
    assign: dict[uuid.UUID, str]
    unassign: list[uuid.UUID]
    people: dict[uuid.UUID, Person]
    summary: AccessSummary
    had_assignments: bool
    has_assignments: bool
    # The group's program accounts once the change is saved (counted once, reused).
    accounts_after: int


async def _plan_update(
    session: AsyncSession,
    group: ClientGroup,
    now: datetime,
    *,
    name: str,
    add: list[uuid.UUID],
    remove: list[uuid.UUID],
    assign: dict[uuid.UUID, str],
    unassign: list[uuid.UUID],
    assign_fields: dict[uuid.UUID, str],
    people: dict[uuid.UUID, Person],
) -> _Plan:
    v = Validator()
    # Only the named clients are looked up: a group may hold thousands of clients.
    named = [*add, *remove]
    members = (
        set(
            (
                await session.execute(
                    select(GroupMember.client_id).where(
                        GroupMember.group_id == group.id, among(GroupMember.client_id, named)
                    )
                )
            ).scalars()
        )
        if named
        else set()
    )
    assigned = {
        a.employee_id: a
        for a in (
            await session.execute(
                select(EmployeeAssignment).where(EmployeeAssignment.group_id == group.id)
            )
        ).scalars()
    }
    for i, client in enumerate(remove):
        v.check(client in members, f"remove_client_ids[{i}]", "is not in this group")
    for i, employee in enumerate(unassign):
        v.check(
            employee in assigned, f"unassign_employee_ids[{i}]", "is not assigned to this group"
        )
    for employee, field_name in assign_fields.items():
        # Three refusals, three codes: nobody the caller may see, someone who is not an
        # assignable employee here, and the manager (who already sees every client).
        person = people.get(employee)
        if person is None:
            v.add(field_name, "is no user this provider can see", "unknown_user")
        elif BUSINESS_ACCOUNT_MANAGER in person.roles_in(group.provider_id):
            v.add(
                field_name,
                "is a business account manager, who already sees every client",
                "business_account_manager",
            )
        elif not person.assignable_in(group.provider_id):
            v.add(
                field_name,
                "is not an active employee of this provider holding program_account_manager, "
                "editor or read_only",
                "not_an_assignable_employee",
            )
    v.raise_if_any()
    rename = name if name and name != group.name else None
    if rename is not None:
        await check_name_free(session, group.provider_id, rename, other_than=group.id)
    new_clients = [c for c in add if c not in members]
    if new_clients:
        await check_clients_available(session, group.provider_id, now, "add_client_ids", add)
    counts = await accounts_by_client(session, [*new_clients, *remove])
    before = await group_account_count(session, group.id)
    added = sum(counts.get(c, 0) for c in new_clients)
    removed = sum(counts.get(c, 0) for c in remove)
    after = before - removed + added
    changes: list[AccessChange] = []
    for employee in sorted(set(assigned) | set(assign), key=str):
        current = assigned.get(employee)
        role_before = current.role if current else None
        role_after = None if employee in unassign else assign.get(employee, role_before)
        username = people[employee].username if employee in people else current.username  # type: ignore[union-attr]
        if role_before is None:
            change = AccessChange(employee, username, None, role_after, 0, after, after, 0, 0)
        elif role_after is None:
            change = AccessChange(employee, username, role_before, None, before, 0, 0, before, 0)
        else:
            kept = before - removed
            change = AccessChange(
                employee,
                username,
                role_before,
                role_after,
                before,
                after,
                added,
                removed,
                kept if role_after != role_before else 0,
            )
        if change.granted or change.revoked or change.role_changed:
            changes.append(change)
    summary = AccessSummary(changes, len(new_clients), len(remove), added, removed)
    final_assigned = (set(assigned) | set(assign)) - set(unassign)
    return _Plan(
        rename=rename,
        add=new_clients,
        remove=remove,
        assign={
            e: r for e, r in assign.items() if assigned.get(e) is None or assigned[e].role != r
        },
        unassign=unassign,
        people=people,
        summary=summary,
        had_assignments=bool(assigned),
        has_assignments=bool(final_assigned),
        accounts_after=after,
    )


async def update_group(
    *,
    session: AsyncSession,
    actor: Principal | None,
    directory: Directory,
    now: datetime,
    task_queue: str,
    provider_id: str,
    group_id: str,
    name: str,
    add_client_ids: Sequence[str],
    remove_client_ids: Sequence[str],
    assign: Sequence[tuple[str, str]],
    unassign_employee_ids: Sequence[str],
    confirmation: str,
    dry_run: bool,
) -> UpdateResult:
    """Saves a group's changes (CONFIRMER), or with `dry_run` only answers their access summary.

    Each kind of access change becomes its own process request: employees assigned (or whose
    role changes), employees unassigned, clients added (when someone is assigned), clients
    removed. The rows and the outbox entries are written in this one transaction.
    """
    group = await group_for_manager(session, actor, provider_id, group_id)
    assert actor is not None
    v = Validator()
    name = collapse_spaces(name)
    if name:
        check_group_name(v, name)
    add = uuid_list(v, "add_client_ids", add_client_ids, MAX_CLIENTS_PER_CALL)
    remove = uuid_list(v, "remove_client_ids", remove_client_ids, MAX_CLIENTS_PER_CALL)
    unassign = uuid_list(v, "unassign_employee_ids", unassign_employee_ids, MAX_EMPLOYEES_PER_CALL)
    v.check(len(assign) <= MAX_EMPLOYEES_PER_CALL, "assign", "too many employees at once")
    roles: dict[uuid.UUID, str] = {}
    assign_fields: dict[uuid.UUID, str] = {}
    for i, (raw_employee, raw_role) in enumerate(assign[:MAX_EMPLOYEES_PER_CALL]):
        employee = parse_uuid(v, f"assign[{i}].employee_id", raw_employee)
        role = check_role(v, f"assign[{i}].role", raw_role)
        if employee is None or role is None:
            continue
        if employee in roles:
            v.check(False, f"assign[{i}].employee_id", "is listed twice", code="unique_items")
            continue
        roles[employee] = role
        assign_fields[employee] = f"assign[{i}].employee_id"
    for i, client in enumerate(add):
        v.check(
            client not in remove,
            f"add_client_ids[{i}]",
            "is also listed for removal",
            code="add_and_remove",
        )
    for i, employee in enumerate(unassign):
        v.check(
            employee not in roles,
            f"unassign_employee_ids[{i}]",
            "is also listed to assign",
            code="assign_and_unassign",
        )
    if not (name or add or remove or roles or unassign) and not v.violations:
        v.check(False, "body", "nothing to change", code="nothing_to_change")
    if not dry_run:
        check_word(v, confirmation, CONFIRM_WORDS, "CONFIRMER")
    v.raise_if_any()
    # Identity first, with no lock held; then the group is locked for the rest of the change.
    people = (
        await directory.people(sorted({*roles, *unassign}, key=str)) if roles or unassign else {}
    )
    group = await group_for_manager(session, actor, provider_id, group_id, lock=not dry_run)
    plan = await _plan_update(
        session,
        group,
        now,
        name=name,
        add=add,
        remove=remove,
        assign=roles,
        unassign=unassign,
        assign_fields=assign_fields,
        people=people,
    )
    if dry_run:
        [view] = await group_views(session, [group])
        return UpdateResult(view, plan.summary, [])
    in_flight = await has_requests_in_flight(session, group.id)
    if plan.rename is not None:
        group.name = plan.rename
        await flush_name(session, group.provider_id, plan.rename)
    group.updated_at = now
    if plan.remove:
        await session.execute(
            delete(GroupMember).where(
                GroupMember.group_id == group.id, among(GroupMember.client_id, plan.remove)
            )
        )
    await insert_members(session, group, now, plan.add)
    for employee, role in plan.assign.items():
        statement = pg_insert(EmployeeAssignment).values(
            group_id=group.id,
            employee_id=employee,
            provider_id=group.provider_id,
            username=plan.people[employee].username,
            role=role,
            assigned_at=now,
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[EmployeeAssignment.group_id, EmployeeAssignment.employee_id],
                set_={"role": role, "username": statement.excluded.username, "assigned_at": now},
            )
        )
    if plan.unassign:
        await session.execute(
            delete(EmployeeAssignment).where(
                EmployeeAssignment.group_id == group.id,
                EmployeeAssignment.employee_id.in_(plan.unassign),
            )
        )
    requests: list[ProcessRequest] = []
    initiator = (actor.subject, actor.username)
    if plan.assign:
        names = ", ".join(f"{plan.people[e].username} ({r})" for e, r in plan.assign.items())
        requests.append(
            await record_request(
                session,
                now,
                task_queue,
                group,
                Operation.ASSIGN_EMPLOYEES,
                initiator,
                f"Assign {names}",
                employees=list(plan.assign),
                group_accounts=plan.accounts_after,
            )
        )
    if plan.unassign:
        names = ", ".join(
            plan.people[e].username if e in plan.people else str(e) for e in plan.unassign
        )
        requests.append(
            await record_request(
                session,
                now,
                task_queue,
                group,
                Operation.UNASSIGN_EMPLOYEES,
                initiator,
                f"Unassign {names}",
                employees=list(plan.unassign),
                group_accounts=plan.accounts_after,
            )
        )
    if plan.add and plan.has_assignments:
        requests.append(
            await record_request(
                session,
                now,
                task_queue,
                group,
                Operation.ADD_CLIENTS,
                initiator,
                f"Add {len(plan.add)} client(s)",
                clients=plan.add,
            )
        )
    if plan.remove and (plan.had_assignments or in_flight):
        requests.append(
            await record_request(
                session,
                now,
                task_queue,
                group,
                Operation.REMOVE_CLIENTS,
                initiator,
                f"Remove {len(plan.remove)} client(s)",
                clients=plan.remove,
            )
        )
    [view] = await group_views(session, [group], accounts={group.id: plan.accounts_after})
    return UpdateResult(view, plan.summary, requests)
