"""An escalation's ticket carries its deadline, its number, and when it was closed

The message to support of an order escalation keeps the escalation's support deadline (the
ticket's SLA in support) and the ticket's number once opened; the escalation records when the
workflow closed that ticket with the outcome.

Revision ID: 0003_dates_escalation_tickets
Revises: 0002
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_dates_escalation_tickets"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("support_messages", sa.Column("ticket_number", sa.BigInteger(), nullable=True))
    op.add_column(
        "support_messages", sa.Column("respond_by", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "escalations", sa.Column("ticket_closed_at", sa.DateTime(timezone=True), nullable=True)
    )
    # Escalation messages written before: their deadline is the escalation's.
    op.execute(
        """
        UPDATE support_messages AS m SET respond_by = e.support_deadline
        FROM escalations AS e
        WHERE e.support_message_id = m.id AND m.subject_kind = 'escalation'
        """
    )


def downgrade() -> None:
    op.drop_column("escalations", "ticket_closed_at")
    op.drop_column("support_messages", "respond_by")
    op.drop_column("support_messages", "ticket_number")
