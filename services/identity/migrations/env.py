"""Alembic environment of identity: its own metadata, run the house way."""

from services.identity.models import Base
from services.kit.alembic_env import run_migrations

run_migrations(Base.metadata)
