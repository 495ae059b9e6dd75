"""Settings of the groups service (environment variables, validated at start)."""

from __future__ import annotations

from pydantic import Field

from services.kit.settings import ServiceSettings


class GroupsSettings(ServiceSettings):
    """DATABASE_URL, GRPC_PORT (50052), IDENTITY_ADDR, TEMPORAL_ADDRESS and the common settings."""

    grpc_port: int = Field(default=50052, ge=0, le=65535)
