"""Alembic environment of membership: its own metadata, run the house way."""

from services.kit.alembic_env import run_migrations
from services.membership.models import Base

run_migrations(Base.metadata)
