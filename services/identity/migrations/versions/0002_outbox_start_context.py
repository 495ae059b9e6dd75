"""Outbox rows carry the trace of the change that recorded them and the workflow's search attributes

So a workflow started by the relay continues the request's trace, and is found by its business key
in the Temporal UI from the moment it starts.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "outbox", sa.Column("trace_context", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )
    op.add_column(
        "outbox",
        sa.Column("search_attributes", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("outbox", "search_attributes")
    op.drop_column("outbox", "trace_context")
