"""Alembic environment of the gateway: its own metadata (the Idempotency-Key store)."""

from services.gateway.models import Base
from services.kit.alembic_env import run_migrations

run_migrations(Base.metadata)
