"""Password hashing with argon2id, off the event loop, with a decoy for unknown accounts."""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from services.identity.settings import IdentitySettings


class Passwords:
    """argon2id at the configured (OWASP) cost.

    Hashing takes tens of milliseconds of CPU, so it runs in a worker thread (argon2-cffi releases
    the GIL) and never stalls the other calls this process serves.
    """

    def __init__(self, *, memory_cost_kib: int, time_cost: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost_kib,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        self._decoy: str | None = None

    @classmethod
    def from_settings(cls, settings: IdentitySettings) -> Passwords:
        return cls(
            memory_cost_kib=settings.argon2_memory_cost_kib,
            time_cost=settings.argon2_time_cost,
            parallelism=settings.argon2_parallelism,
        )

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, encoded: str | None, password: str) -> bool:
        """True when `password` matches; with no hash, spends the same time and says False."""
        if encoded is None:
            await self._verify(await self._decoy_hash(), password)
            return False
        return await self._verify(encoded, password)

    def needs_rehash(self, encoded: str) -> bool:
        """True when the hash was made with other parameters than today's."""
        try:
            return self._hasher.check_needs_rehash(encoded)
        except InvalidHashError:
            return True

    async def warm_up(self) -> None:
        """Computes the decoy hash at start, so the first unknown login is not faster or slower."""
        await self._decoy_hash()

    async def _verify(self, encoded: str, password: str) -> bool:
        try:
            return await asyncio.to_thread(self._hasher.verify, encoded, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def _decoy_hash(self) -> str:
        if self._decoy is None:
            self._decoy = await self.hash(secrets.token_urlsafe(16))
        return self._decoy
