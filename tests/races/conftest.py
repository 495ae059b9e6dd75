"""The running stack, the two-tenant world and a gateway client (see harness.py)."""

from __future__ import annotations

from tests.security.harness import fresh_tokens, http, stack, world

__all__ = ["fresh_tokens", "http", "stack", "world"]
