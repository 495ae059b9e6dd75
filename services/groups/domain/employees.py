"""Employees and their role assignments: who may be assigned to a provider's groups (an active
program_account_manager, editor or read_only, never a business_account_manager), as identity
answers through the `Directory`, and the groups each one is assigned to.

Assigning and unassigning happen in a group's changes (`group_changes.update_group`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.groups.domain.authorisation import BUSINESS_ACCOUNT_MANAGER, provider_for_manager
from services.groups.models import ClientGroup, DelegatedRole, EmployeeAssignment
from services.kit.auth import Principal
from services.kit.errors import Validator
from services.kit.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page

# Employees holding one of these roles in the provider may be assigned to its groups.
ASSIGNABLE_ROLES = frozenset(role.value for role in DelegatedRole)


@dataclass(frozen=True)
class Person:
    id: uuid.UUID
    username: str
    first_name: str
    last_name: str
    active: bool
    memberships: dict[str, frozenset[str]]

    def roles_in(self, organisation_id: uuid.UUID) -> frozenset[str]:
        return self.memberships.get(str(organisation_id), frozenset())

    def assignable_in(self, provider_id: uuid.UUID) -> bool:
        """An active employee holding program_account_manager, editor or read_only, and not the
        business_account_manager (who already sees every client)."""
        roles = self.roles_in(provider_id)
        return (
            self.active and bool(roles & ASSIGNABLE_ROLES) and BUSINESS_ACCOUNT_MANAGER not in roles
        )


class Directory(Protocol):
    """Who the provider's people are; identity answers, with the caller's own token."""

    async def people(self, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Person]:
        """The people the caller may see among `user_ids` (others are simply absent)."""
        ...

    async def members(
        self, provider_id: uuid.UUID, roles: Sequence[str], page_size: int, page_token: str
    ) -> tuple[list[Person], str]:
        """Active holders of one of `roles` in the provider, by username; and the next token."""
        ...


@dataclass(frozen=True)
class AssignmentView:
    employee_id: uuid.UUID
    username: str
    role: str
    group_id: uuid.UUID
    group_name: str


@dataclass(frozen=True)
class EmployeeView:
    person: Person
    roles: list[str]
    assignments: list[AssignmentView]


def check_role(v: Validator, field_name: str, role: str) -> str | None:
    if role not in ASSIGNABLE_ROLES:
        v.check(False, field_name, "must be program_account_manager, editor or read_only")
        return None
    return role


async def _assignments_of(
    session: AsyncSession, provider_id: uuid.UUID, employees: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[AssignmentView]]:
    found: dict[uuid.UUID, list[AssignmentView]] = {e: [] for e in employees}
    if not employees:
        return found
    rows = await session.execute(
        select(EmployeeAssignment, ClientGroup.name)
        .join(ClientGroup, ClientGroup.id == EmployeeAssignment.group_id)
        .where(
            EmployeeAssignment.provider_id == provider_id,
            EmployeeAssignment.employee_id.in_(employees),
        )
        .order_by(func.lower(ClientGroup.name))
    )
    for a, group_name in rows.all():
        found[a.employee_id].append(
            AssignmentView(a.employee_id, a.username, a.role, a.group_id, group_name)
        )
    return found


async def list_employees(
    *,
    session: AsyncSession,
    actor: Principal | None,
    directory: Directory,
    provider_id: str,
    page_size: int,
    page_token: str,
) -> Page[EmployeeView]:
    """The employees who may be assigned (never a business account manager), with their groups."""
    provider = provider_for_manager(actor, provider_id)
    v = Validator()
    v.check(
        0 <= page_size <= MAX_PAGE_SIZE, "page.page_size", f"must be between 0 and {MAX_PAGE_SIZE}"
    )
    v.raise_if_any()
    people, token = await directory.members(
        provider, sorted(ASSIGNABLE_ROLES), page_size or DEFAULT_PAGE_SIZE, page_token
    )
    eligible = [p for p in people if p.assignable_in(provider)]
    assignments = await _assignments_of(session, provider, [p.id for p in eligible])
    return Page(
        [
            EmployeeView(p, sorted(p.roles_in(provider) & ASSIGNABLE_ROLES), assignments[p.id])
            for p in eligible
        ],
        token,
    )
