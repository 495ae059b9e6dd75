"""Password hashing with argon2id, off the event loop, with a decoy for unknown accounts."""

from __future__ import annotations

import asyncio
import math
import os
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from services.identity.settings import IdentitySettings

T = TypeVar("T")


def usable_cpus(cgroup: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """The CPUs this process may use: those it may run on (a cpuset), capped by the container's
    CPU quota (cgroup v2 `cpu.max`, rounded up), never less than one."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = cgroup.read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota to honour
    return max(cpus, 1)


class Passwords:
    """argon2id at the configured (OWASP) cost.

    Hashing takes tens of milliseconds of CPU, so it runs in worker threads (argon2-cffi releases
    the GIL) and never stalls the other calls this process serves. Its own pool, by default one
    thread per usable CPU (this worker process's share of them): more threads than cores only
    make each 19 MiB hash evict the others' memory from the caches (measured: 2 threads 84
    verifies/s on 2 cores, 6 threads 73/s); the logins beyond that wait in the pool's queue.
    """

    def __init__(
        self,
        *,
        memory_cost_kib: int,
        time_cost: int,
        parallelism: int,
        threads: int | None = None,
    ) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost_kib,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        self._decoy: str | None = None
        self.threads = threads or usable_cpus()
        self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="argon2")

    @classmethod
    def from_settings(cls, settings: IdentitySettings) -> Passwords:
        return cls(
            memory_cost_kib=settings.argon2_memory_cost_kib,
            time_cost=settings.argon2_time_cost,
            parallelism=settings.argon2_parallelism,
            # The pod's CPUs are shared by its worker processes (GUICHET_WORKERS).
            threads=settings.argon2_threads or max(usable_cpus() // settings.workers, 1),
        )

    def close(self) -> None:
        """Lets queued hashes finish (a draining server still answers them), then the threads go."""
        self._pool.shutdown(wait=True)

    async def hash(self, password: str) -> str:
        return await self._in_pool(self._hasher.hash, password)

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
            return await self._in_pool(self._hasher.verify, encoded, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def _in_pool(self, work: Callable[..., T], *args: str) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, work, *args)

    async def _decoy_hash(self) -> str:
        if self._decoy is None:
            self._decoy = await self.hash(secrets.token_urlsafe(16))
        return self._decoy
