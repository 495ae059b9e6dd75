"""Banner program names are unique, compared as people read them

A stored comparison key per name (`services.kit.names.name_key`: NFKC, case folded, invisible
characters and spacing removed) carries the uniqueness constraint, so the database settles
races. Existing rows get their key here; a row whose key an older row already has keeps none and
is reported, with names that mix scripts confusably, in the new table `name_clashes` and in the
migration's log, instead of failing the migration or picking a winner silently.

Revision ID: 0006_writes_name_keys
Revises: 0005_dates_time_zones
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.kit.name_keys import create_name_clashes, fill_name_keys

revision: str = "0006_writes_name_keys"
down_revision: str | None = "0005_dates_time_zones"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_name_clashes(op)
    op.add_column("programs", sa.Column("name_key", sa.Text(), nullable=True))
    fill_name_keys(op.get_bind(), table="programs")
    op.create_index("uq_programs_name_key", "programs", ["name_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_programs_name_key", table_name="programs")
    op.drop_column("programs", "name_key")
    op.drop_table("name_clashes")
