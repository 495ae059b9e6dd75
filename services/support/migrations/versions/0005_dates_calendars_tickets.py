"""Calendars observe holiday categories; tickets carry a deadline and a link set by a service

A calendar chooses the `holidays` categories it observes (empty: public holidays, as before).
A ticket opened by a service for something of its own (an order escalation) carries that
service's deadline (`respond_by`, its SLA) and what it is about (`link_*`, shown both ways).

Revision ID: 0005_dates_calendars_tickets
Revises: 0004_i18n_translations
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005_dates_calendars_tickets"
down_revision: str | None = "0004_i18n_translations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "calendars",
        sa.Column(
            "holiday_categories",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            server_default=sa.text("'[]'::jsonb"),
        ),
    )
    op.alter_column("calendars", "holiday_categories", server_default=None)
    op.add_column("calendars", sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("tickets", sa.Column("respond_by", sa.DateTime(timezone=True), nullable=True))
    for name, length in (("link_kind", 32), ("link_id", 64), ("link_label", 100)):
        op.add_column(
            "tickets",
            sa.Column(name, sa.String(length=length), nullable=False, server_default=""),
        )
        op.alter_column("tickets", name, server_default=None)


def downgrade() -> None:
    for name in ("link_label", "link_id", "link_kind", "respond_by"):
        op.drop_column("tickets", name)
    op.drop_column("calendars", "updated_at")
    op.drop_column("calendars", "holiday_categories")
