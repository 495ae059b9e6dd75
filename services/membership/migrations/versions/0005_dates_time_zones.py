"""Time zones, anniversaries and one letter per renewal

Programs live in a time zone (existing ones: Europe/Paris, the default the service used to assume
as UTC dates), a workshop may name its own; associations set theirs. Memberships keep the
anniversary their renewals are computed from (29 February comes back in leap years), count their
yearly renewals, and copy the workshop's code. Anniversary letters are keyed by the renewal, not
its date, so a corrected date does not mail a second letter; a letter sent again on request is
recorded.

Existing letters are numbered per membership in date order; a membership's current renewal takes
the number of the letter that announced its date, else the number after the last letter.

Revision ID: 0005_dates_time_zones
Revises: 0004_i18n_currency
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005_dates_time_zones"
down_revision: str | None = "0004_i18n_currency"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "programs",
        sa.Column("time_zone", sa.String(length=64), nullable=False, server_default="Europe/Paris"),
    )
    op.alter_column("programs", "time_zone", server_default=None)

    op.add_column("workshop_memberships", sa.Column("anniversary", sa.Date(), nullable=True))
    op.execute("UPDATE workshop_memberships SET anniversary = renewal_date")
    op.alter_column("workshop_memberships", "anniversary", nullable=False)
    op.add_column(
        "workshop_memberships",
        sa.Column("time_zone", sa.String(length=64), nullable=False, server_default=""),
    )
    op.alter_column("workshop_memberships", "time_zone", server_default=None)
    op.add_column(
        "workshop_memberships",
        sa.Column("workshop_code", sa.String(length=64), nullable=False, server_default=""),
    )
    op.alter_column("workshop_memberships", "workshop_code", server_default=None)

    op.add_column("renewal_letters", sa.Column("renewal_number", sa.Integer(), nullable=True))
    op.execute(
        """
        UPDATE renewal_letters AS l SET renewal_number = n.number
        FROM (
            SELECT membership_id, renewal_date,
                   row_number() OVER (PARTITION BY membership_id ORDER BY renewal_date) AS number
            FROM renewal_letters
        ) AS n
        WHERE n.membership_id = l.membership_id AND n.renewal_date = l.renewal_date
        """
    )
    op.alter_column("renewal_letters", "renewal_number", nullable=False)
    op.drop_constraint("pk_renewal_letters", "renewal_letters", type_="primary")
    op.create_primary_key("pk_renewal_letters", "renewal_letters", ["membership_id", "renewal_number"])

    op.add_column("workshop_memberships", sa.Column("renewal_number", sa.Integer(), nullable=True))
    op.execute(
        """
        UPDATE workshop_memberships AS m SET renewal_number = COALESCE(
            (SELECT l.renewal_number FROM renewal_letters AS l
              WHERE l.membership_id = m.id AND l.renewal_date = m.renewal_date),
            (SELECT max(l.renewal_number) + 1 FROM renewal_letters AS l
              WHERE l.membership_id = m.id),
            1)
        """
    )
    op.alter_column("workshop_memberships", "renewal_number", nullable=False)

    op.create_table(
        "renewal_letter_resends",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("membership_id", sa.Uuid(), nullable=False),
        sa.Column("renewal_number", sa.Integer(), nullable=False),
        sa.Column("renewal_date", sa.Date(), nullable=False),
        sa.Column("recipients", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["workshop_memberships.id"],
            name=op.f("fk_renewal_letter_resends_membership_id_workshop_memberships"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_renewal_letter_resends")),
    )
    op.create_index(
        "ix_renewal_letter_resends_letter",
        "renewal_letter_resends",
        ["membership_id", "renewal_number", "at"],
    )
    op.create_table(
        "association_settings",
        sa.Column("association_id", sa.Uuid(), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("association_id", name=op.f("pk_association_settings")),
    )


def downgrade() -> None:
    op.drop_table("association_settings")
    op.drop_index("ix_renewal_letter_resends_letter", table_name="renewal_letter_resends")
    op.drop_table("renewal_letter_resends")
    op.drop_column("workshop_memberships", "renewal_number")
    # Two letters of one renewal (a corrected date) keep their dates apart: the old key holds.
    op.drop_constraint("pk_renewal_letters", "renewal_letters", type_="primary")
    op.create_primary_key("pk_renewal_letters", "renewal_letters", ["membership_id", "renewal_date"])
    op.drop_column("renewal_letters", "renewal_number")
    op.drop_column("workshop_memberships", "workshop_code")
    op.drop_column("workshop_memberships", "time_zone")
    op.drop_column("workshop_memberships", "anniversary")
    op.drop_column("programs", "time_zone")
