"""The gateway's own table: the Idempotency-Key store, shared by every gateway replica.

The gateway holds no business data; it keeps what a retried request needs to be answered the
same way (see `services.gateway.idempotency`). A row is one key of one caller: the request it
was first used for (a fingerprint), and either a lease (the request is in flight) or the answer
to replay. Rows expire; the gateway purges them.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Index, Integer, LargeBinary, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.kit.db import new_metadata

TZ = DateTime(timezone=True)
# Applied by `python -m services.gateway migrate` (and by the chart's migrate Job).
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class Base(DeclarativeBase):
    metadata = new_metadata()


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_expires_at", "expires_at"),)

    # Whose key: the access token's subject, or "anonymous" on the public creating routes.
    principal: Mapped[str] = mapped_column(String(255), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # SHA-256 of the request (method, path, query, content type, canonical body).
    fingerprint: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(2048))
    # None while the first request is in flight; then the answer to replay.
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_headers: Mapped[list[Any] | None] = mapped_column(JSONB)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    # While in flight: past this instant the request is taken for dead and the key may be
    # claimed again (a gateway that died mid-request must not hold the key for 24 hours).
    locked_until: Mapped[datetime | None] = mapped_column(TZ)
    created_at: Mapped[datetime] = mapped_column(TZ)
    expires_at: Mapped[datetime] = mapped_column(TZ)
