"""Warranty claims and fee payments carry the currency of their amount

A page shows money in the currency the data carries, never a symbol written by hand; every
amount so far was in euros.

Revision ID: 0004_i18n_currency
Revises: 0003_i18n_option_texts
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_i18n_currency"
down_revision: str | None = "0003_i18n_option_texts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("warranty_claims", "fee_payments"):
        op.add_column(
            table, sa.Column("currency", sa.String(length=3), nullable=False, server_default="EUR")
        )


def downgrade() -> None:
    for table in ("fee_payments", "warranty_claims"):
        op.drop_column(table, "currency")
