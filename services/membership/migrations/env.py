"""Alembic environment of membership: its own metadata, run the house way."""

from services.membership.models import Base

from services.kit.alembic_env import run_migrations

run_migrations(Base.metadata)
