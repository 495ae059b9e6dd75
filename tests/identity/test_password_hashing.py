"""argon2id hashing: right and wrong passwords, the decoy, no more hashes at once than threads."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any, Literal

from argon2 import PasswordHasher

from services.identity.passwords import Passwords, usable_cpus

CHEAP = {"memory_cost_kib": 1024, "time_cost": 1, "parallelism": 1}


class CountingHasher(PasswordHasher):
    """A real hasher that records how many of its verifications overlapped at most."""

    def __init__(self) -> None:
        super().__init__(memory_cost=1024, time_cost=1, parallelism=1)
        self._lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            time.sleep(0.02)  # long enough for the other calls to start if the pool lets them
            return super().verify(hash, password)
        finally:
            with self._lock:
                self.running -= 1


async def test_verifies_the_right_password_only_and_spends_a_verification_on_unknown_accounts() -> (
    None
):
    passwords = Passwords(**CHEAP, threads=1)
    try:
        encoded = await passwords.hash("correct horse battery")
        assert await passwords.verify(encoded, "correct horse battery")
        assert not await passwords.verify(encoded, "correct horse battery!")
        assert not await passwords.verify(None, "correct horse battery")
        assert not await passwords.verify("not an argon2 hash", "correct horse battery")
    finally:
        passwords.close()


async def test_no_more_verifications_run_at_once_than_the_pool_has_threads() -> None:
    passwords = Passwords(**CHEAP, threads=2)
    counting = CountingHasher()
    passwords._hasher = counting
    try:
        encoded = counting.hash("a passphrase")
        results = await asyncio.gather(
            *(passwords.verify(encoded, "a passphrase") for _ in range(8))
        )
        assert results == [True] * 8
        assert counting.most_at_once == 2
    finally:
        passwords.close()


def test_the_pool_defaults_to_one_thread_per_usable_cpu() -> None:
    settings: dict[str, Any] = dict(CHEAP)
    passwords = Passwords(**settings)
    try:
        assert passwords.threads == usable_cpus() >= 1
    finally:
        passwords.close()


def test_usable_cpus_honour_the_containers_cpu_quota(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("max 100000\n")
    unlimited = usable_cpus(cpu_max)
    assert unlimited == usable_cpus(tmp_path / "absent") >= 1
    cpu_max.write_text("50000 100000\n")  # half a CPU: still one thread
    assert usable_cpus(cpu_max) == 1
    cpu_max.write_text(f"{unlimited * 300000} 100000\n")  # a quota above the cpuset: the cpuset
    assert usable_cpus(cpu_max) == unlimited
