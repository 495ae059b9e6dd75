"""Sign-in throttles shared by every replica, device cookies, and second factors

`login_failures` replaces `login_throttle` (its rows move over as `user:<name>` keys): failures
are now counted per username for unknown devices, per known device, per address and per second
factor, with growing locks and an expiry. `rate_limits` brakes the public routes that mail or
hash per address for every gateway replica. `hmac_keys` signs device cookies and second-factor
tickets. TOTP authenticators, recovery codes, passkeys and WebAuthn challenges are the second
factors; organisations may require one for the roles that act for others, and a refresh-token
family remembers how its session was authenticated (`amr`).

Revision ID: 0004_auth_second_factor
Revises: 0003_writes_name_keys
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_auth_second_factor"
down_revision: str | None = "0003_writes_name_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", TZ, nullable=False),
        sa.Column("locked_until", TZ, nullable=True),
        sa.Column("expires_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_failures")),
    )
    op.create_index(
        op.f("ix_login_failures_expires_at"), "login_failures", ["expires_at"], unique=False
    )
    # The old counters keep counting under their new key (a lock in force stays in force).
    op.execute(
        "INSERT INTO login_failures (key, failures, last_failure_at, locked_until, expires_at) "
        "SELECT 'user:' || username_key, failures, window_started_at, locked_until, "
        "GREATEST(window_started_at, COALESCE(locked_until, window_started_at)) "
        "+ interval '1 day' FROM login_throttle"
    )
    op.drop_table("login_throttle")
    op.create_table(
        "rate_limits",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("tat", TZ, nullable=False),
        sa.Column("refused", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_limits")),
    )
    op.create_index(op.f("ix_rate_limits_tat"), "rate_limits", ["tat"], unique=False)
    op.create_table(
        "hmac_keys",
        sa.Column("kid", sa.String(length=32), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_hmac_keys")),
    )
    op.create_table(
        "totp_credentials",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("secret_sealed", sa.Text(), nullable=False),
        sa.Column("confirmed_at", TZ, nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_totp_credentials_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_totp_credentials")),
    )
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("used_at", TZ, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_recovery_codes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
        sa.UniqueConstraint(
            "user_id", "code_hash", name=op.f("uq_recovery_codes_user_id_code_hash")
        ),
    )
    op.create_table(
        "passkeys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("credential_id", sa.String(length=1400), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("sign_count", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("user_verified", sa.Boolean(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("last_used_at", TZ, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_passkeys_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_passkeys")),
        sa.UniqueConstraint("credential_id", name=op.f("uq_passkeys_credential_id")),
    )
    op.create_index(op.f("ix_passkeys_user_id"), "passkeys", ["user_id"], unique=False)
    op.create_table(
        "webauthn_challenges",
        sa.Column("challenge_hash", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("expires_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("challenge_hash", name=op.f("pk_webauthn_challenges")),
    )
    op.create_index(
        op.f("ix_webauthn_challenges_expires_at"),
        "webauthn_challenges",
        ["expires_at"],
        unique=False,
    )
    op.add_column(
        "organisations",
        sa.Column(
            "second_factor_required", sa.Boolean(), server_default=sa.false(), nullable=False
        ),
    )
    op.add_column(
        "refresh_tokens",
        sa.Column("amr", sa.String(length=40), server_default="pwd", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("refresh_tokens", "amr")
    op.drop_column("organisations", "second_factor_required")
    op.drop_index(op.f("ix_webauthn_challenges_expires_at"), table_name="webauthn_challenges")
    op.drop_table("webauthn_challenges")
    op.drop_index(op.f("ix_passkeys_user_id"), table_name="passkeys")
    op.drop_table("passkeys")
    op.drop_table("recovery_codes")
    op.drop_table("totp_credentials")
    op.drop_table("hmac_keys")
    op.drop_index(op.f("ix_rate_limits_tat"), table_name="rate_limits")
    op.drop_table("rate_limits")
    op.create_table(
        "login_throttle",
        sa.Column("username_key", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started_at", TZ, nullable=False),
        sa.Column("locked_until", TZ, nullable=True),
        sa.PrimaryKeyConstraint("username_key", name=op.f("pk_login_throttle")),
    )
    op.execute(
        "INSERT INTO login_throttle (username_key, failures, window_started_at, locked_until) "
        "SELECT substr(key, 6), failures, last_failure_at, locked_until FROM login_failures "
        "WHERE key LIKE 'user:%' AND length(key) <= 69"
    )
    op.drop_index(op.f("ix_login_failures_expires_at"), table_name="login_failures")
    op.drop_table("login_failures")
