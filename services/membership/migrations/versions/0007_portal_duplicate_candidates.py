"""Precomputed duplicate candidates: the review reads them instead of computing per request

`duplicate_changes` records each write that may change an association's duplicates (with the
write); the service's refresher recomputes that association's report into `duplicate_reports`
and `duplicate_groups` and consumes the changes. Every association that has records starts with
one change, so that its first report is computed once the service runs.

Revision ID: 0007_portal_duplicate_candidates
Revises: 0006_writes_name_keys
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007_portal_duplicate_candidates"
down_revision: str | None = "0006_writes_name_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "duplicate_changes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("association_id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duplicate_changes")),
    )
    op.create_index(
        "ix_duplicate_changes_association", "duplicate_changes", ["association_id"], unique=False
    )
    op.create_table(
        "duplicate_reports",
        sa.Column("association_id", sa.Uuid(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("certain_groups", sa.Integer(), nullable=False),
        sa.Column("certain_pairs", sa.BigInteger(), nullable=False),
        sa.Column("probable_groups", sa.Integer(), nullable=False),
        sa.Column("probable_pairs", sa.BigInteger(), nullable=False),
        sa.Column("elapsed_ms", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("association_id", name=op.f("pk_duplicate_reports")),
    )
    op.create_table(
        "duplicate_groups",
        sa.Column("association_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("key", sa.String(length=200, collation="C"), nullable=False),
        sa.Column("record_ids", postgresql.ARRAY(sa.Uuid()), nullable=False),
        sa.PrimaryKeyConstraint("association_id", "kind", "key", name=op.f("pk_duplicate_groups")),
    )
    op.execute(
        "INSERT INTO duplicate_changes (association_id, at) "
        "SELECT DISTINCT association_id, now() FROM client_records"
    )


def downgrade() -> None:
    op.drop_table("duplicate_groups")
    op.drop_table("duplicate_reports")
    op.drop_index("ix_duplicate_changes_association", table_name="duplicate_changes")
    op.drop_table("duplicate_changes")
