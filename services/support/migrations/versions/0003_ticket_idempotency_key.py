"""Tickets carry the caller's idempotency key, unique per organisation when given

So a partner message whose opening is retried (its answer lost) or raced finds the ticket the
first call opened instead of opening a second one.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tickets", sa.Column("idempotency_key", sa.String(length=100), nullable=True))
    op.create_index(
        "uq_tickets_idempotency_key",
        "tickets",
        ["organisation_id", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "uq_tickets_idempotency_key",
        table_name="tickets",
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )
    op.drop_column("tickets", "idempotency_key")
