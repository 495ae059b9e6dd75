"""Group names are unique per provider compared as people read them, not by lower()

A stored comparison key per name (`services.kit.names.name_key`: NFKC, case folded, invisible
characters and spacing removed) carries the uniqueness constraint, so the database settles
races. Existing rows get their key here; a row whose key an older row already has keeps none and
is reported, with names that mix scripts confusably, in the new table `name_clashes` and in the
migration's log, instead of failing the migration or picking a winner silently.

Revision ID: 0003_writes_name_keys
Revises: 0002
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.kit.name_keys import create_name_clashes, fill_name_keys

revision: str = "0003_writes_name_keys"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_name_clashes(op)
    op.add_column("client_groups", sa.Column("name_key", sa.Text(), nullable=True))
    fill_name_keys(op.get_bind(), table="client_groups", scope=("provider_id",))
    op.drop_index("uq_client_groups_provider_name", table_name="client_groups")
    op.create_index("uq_client_groups_provider_name_key", "client_groups", ["provider_id", "name_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_client_groups_provider_name_key", table_name="client_groups")
    op.create_index(
        "uq_client_groups_provider_name",
        "client_groups",
        ["provider_id", sa.text("lower(name)")],
        unique=True,
    )
    op.drop_column("client_groups", "name_key")
    op.drop_table("name_clashes")
