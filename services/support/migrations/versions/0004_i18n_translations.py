"""Categories and FAQ entries carry translations; tickets carry their customer's language

Categories and their questions and answers may be written in other languages by the support
team (a JSON object per row, by BCP 47 tag), shown to readers of that language with a fallback
to the original. A ticket records the language it was opened in, so that the mails to its
customer (opened, answered) are written in it; existing tickets were opened in French.

Revision ID: 0004_i18n_translations
Revises: 0003
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_i18n_translations"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("categories", "faq_entries"):
        op.add_column(
            table,
            sa.Column(
                "translations",
                postgresql.JSONB(astext_type=sa.Text()),
                nullable=False,
                server_default=sa.text("'{}'::jsonb"),
            ),
        )
    op.add_column(
        "tickets",
        sa.Column("language", sa.String(length=16), nullable=False, server_default="fr"),
    )


def downgrade() -> None:
    op.drop_column("tickets", "language")
    for table in ("faq_entries", "categories"):
        op.drop_column(table, "translations")
