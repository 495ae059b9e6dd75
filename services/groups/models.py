"""Groups' tables: clients and program accounts, relationships, groups, delegated access, requests.

Client businesses are identity organisations referenced by id; their name is copied here (folded
for search) because searching a provider's available clients by name is this service's query.
Timestamps are set by the domain from its clock, as in identity.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.kit.db import new_metadata
from services.kit.name_keys import name_clashes_table
from services.kit.outbox import outbox_table


class Base(DeclarativeBase):
    metadata = new_metadata()


class RelationshipStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"


class ProgramAccountStatus(StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"


class DelegatedRole(StrEnum):
    PROGRAM_ACCOUNT_MANAGER = "program_account_manager"
    EDITOR = "editor"
    READ_ONLY = "read_only"


class RequestStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    FAILED = "failed"
    COMPLETED = "completed"


class Operation(StrEnum):
    ASSIGN_EMPLOYEES = "assign_employees"
    UNASSIGN_EMPLOYEES = "unassign_employees"
    ADD_CLIENTS = "add_clients"
    REMOVE_CLIENTS = "remove_clients"
    DELETE_GROUP = "delete_group"
    RELATIONSHIP_EXPIRED = "relationship_expired"
    PROGRAM_ACCOUNTS_ADDED = "program_accounts_added"


class Scope(StrEnum):
    """Which program accounts a process request walks through."""

    # The accounts of the group's clients at the time of each batch (employee changes).
    GROUP = "group"
    # The accounts of the clients listed for the request (client changes, deletion, expiry).
    CLIENTS = "clients"
    # The accounts that failed in the previous attempt (a retry).
    FAILURES = "failures"


def _one_of(column: str, values: type[StrEnum]) -> str:
    listed = ", ".join(f"'{member.value}'" for member in values)
    return f"{column} IN ({listed})"


TZ = DateTime(timezone=True)


class ClientBusiness(Base):
    __tablename__ = "client_businesses"
    __table_args__ = (Index("ix_client_businesses_search_name", "search_name", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # The name folded for search (accents stripped, case folded), kept in step by the domain.
    search_name: Mapped[str] = mapped_column(String(200, collation="C"))
    created_at: Mapped[datetime] = mapped_column(TZ)


class ProgramAccount(Base):
    __tablename__ = "program_accounts"
    __table_args__ = (
        # The keyset the delegation walks: a client's accounts in id order.
        Index("ix_program_accounts_client_id", "client_id", "id", postgresql_include=["status"]),
        CheckConstraint(_one_of("status", ProgramAccountStatus), name="status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("client_businesses.id"))
    number: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(TZ)


class Relationship(Base):
    """A business relationship between a service provider and a client business."""

    __tablename__ = "relationships"
    __table_args__ = (
        UniqueConstraint("provider_id", "client_id"),
        CheckConstraint(_one_of("status", RelationshipStatus), name="status"),
        Index("ix_relationships_provider_status", "provider_id", "status", "client_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    provider_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("client_businesses.id"))
    status: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime | None] = mapped_column(TZ)
    # Bumped on every change of status or expiry: the expiry timer of an older term is a no-op.
    term: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(TZ)
    updated_at: Mapped[datetime] = mapped_column(TZ)


class ClientGroup(Base):
    __tablename__ = "client_groups"
    __table_args__ = (
        # Unique per provider against active and deleted groups alike (deleted rows stay),
        # compared as people read them (services.kit.names.name_key).
        Index("uq_client_groups_provider_name_key", "provider_id", "name_key", unique=True),
        Index("ix_client_groups_provider_active", "provider_id", "deleted_at", "name"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    provider_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    name: Mapped[str] = mapped_column(String(100))
    # NULL only for a row whose key an older row had when keys came (see name_clashes).
    name_key: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ)
    updated_at: Mapped[datetime] = mapped_column(TZ)
    deleted_at: Mapped[datetime | None] = mapped_column(TZ)
    created_by: Mapped[str] = mapped_column(String(100))


class GroupMember(Base):
    """A client in a group. A client is in at most one group per provider: the database says so."""

    __tablename__ = "group_members"
    __table_args__ = (
        UniqueConstraint("provider_id", "client_id"),
        Index("ix_group_members_client", "client_id"),
    )

    group_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("client_groups.id"), primary_key=True)
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("client_businesses.id"), primary_key=True
    )
    provider_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    added_at: Mapped[datetime] = mapped_column(TZ)


class EmployeeAssignment(Base):
    """An employee of the provider assigned to a group with a role."""

    __tablename__ = "employee_assignments"
    __table_args__ = (
        CheckConstraint(_one_of("role", DelegatedRole), name="role"),
        Index("ix_employee_assignments_provider_employee", "provider_id", "employee_id"),
    )

    group_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("client_groups.id"), primary_key=True)
    employee_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    provider_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    # The username when assigned, for summaries (identity stays the source of truth).
    username: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    assigned_at: Mapped[datetime] = mapped_column(TZ)


class AccessGrant(Base):
    """What the delegation writes: an employee's role on one program account, through a group.

    The key makes every write idempotent (an employee belongs to one provider, and a client to
    at most one group of that provider, so one group at most explains a row).
    """

    __tablename__ = "access_grants"
    __table_args__ = (CheckConstraint(_one_of("role", DelegatedRole), name="role"),)

    program_account_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    employee_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    group_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    client_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    role: Mapped[str] = mapped_column(String(32))
    process_request_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    granted_at: Mapped[datetime] = mapped_column(TZ)


class ProcessRequest(Base):
    """One change of access, applied by the Delegation workflow (`delegation/<id>`)."""

    __tablename__ = "process_requests"
    __table_args__ = (
        CheckConstraint(_one_of("status", RequestStatus), name="status"),
        CheckConstraint(_one_of("operation", Operation), name="operation"),
        CheckConstraint(_one_of("scope", Scope), name="scope"),
        Index("ix_process_requests_provider_created", "provider_id", "created_at", "id"),
        Index("ix_process_requests_provider_status", "provider_id", "status", "created_at", "id"),
        Index("ix_process_requests_group", "group_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    provider_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    group_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("client_groups.id"))
    group_name: Mapped[str] = mapped_column(String(100))
    operation: Mapped[str] = mapped_column(String(32))
    initiator_id: Mapped[str] = mapped_column(String(100))
    initiator_name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(16))
    # Only these employees' access is touched; None: every employee assigned to the group.
    employee_ids: Mapped[list[uuid.UUID] | None] = mapped_column(ARRAY(Uuid))
    summary: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    workflow_id: Mapped[str] = mapped_column(String(300))
    # Keyset position: the last (client id, program account id) processed in this attempt.
    cursor_client: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    cursor_account: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    done: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    failed: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(TZ)
    updated_at: Mapped[datetime] = mapped_column(TZ)
    finished_at: Mapped[datetime | None] = mapped_column(TZ)


class ProcessRequestClient(Base):
    """The clients whose program accounts a CLIENTS-scoped request walks through."""

    __tablename__ = "process_request_clients"

    process_request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("process_requests.id", ondelete="CASCADE"), primary_key=True
    )
    client_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)


class ProcessRequestFailure(Base):
    """A program account one attempt of a request could not update, and why."""

    __tablename__ = "process_request_failures"

    process_request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("process_requests.id", ondelete="CASCADE"), primary_key=True
    )
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    program_account_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    reason: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(TZ)


outbox = outbox_table(Base.metadata)
name_clashes = name_clashes_table(Base.metadata)
