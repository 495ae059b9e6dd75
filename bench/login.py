"""Password logins per second per core through the gateway, beside the raw argon2id ceiling.

Starts the real system (PostgreSQL, Temporal, identity, worker, gateway as separate processes,
as `make dev` does) on free ports, provisions one user, then drives `POST /v1/auth/token` from
concurrent clients for a fixed time. In the same run it measures how many argon2id verifications
one core does with the same OWASP parameters: the ceiling a login can never beat.

Keycloak's sizing guide plans 15 password logins/s per vCPU; the floor set for Guichet is 25.
Run: `make bench` (or `python -m bench.login --seconds 20 --concurrency 8`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from argon2 import PasswordHasher
from temporalio.testing import WorkflowEnvironment

from services.devstack.components import DEFAULT_PORTS
from services.devstack.demo import DEMO_PASSWORD, load_demo_data
from services.devstack.stack import ADMIN_USERNAME, Stack
from services.kit.binaries import temporal_cli
from services.kit.ports import free_port
from services.kit.temporal import dev_server_search_attribute_args
from services.kit.testing import database_server

# OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1 (what identity uses).

KEYCLOAK_PER_VCPU = 15.0
FLOOR_PER_CORE = 25.0


def raw_verify_rate(seconds: float, threads: int = 1) -> float:
    """argon2id verifications per second from `threads` threads (argon2-cffi releases the GIL,
    as identity's verifications in worker threads do): 1 thread is one core's ceiling."""
    hasher = PasswordHasher(memory_cost=19456, time_cost=2, parallelism=1)
    digest = hasher.hash(DEMO_PASSWORD)
    start = time.perf_counter()

    def verify_until_deadline() -> int:
        count = 0
        while time.perf_counter() - start < seconds:
            hasher.verify(digest, DEMO_PASSWORD)
            count += 1
        return count

    with ThreadPoolExecutor(threads) as pool:
        total = sum(pool.map(lambda _: verify_until_deadline(), range(threads)))
    return total / (time.perf_counter() - start)


async def drive_logins(base_url: str, seconds: float, concurrency: int) -> tuple[int, int, float]:
    ok = failed = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:

        async def one_client() -> None:
            nonlocal ok, failed
            while time.perf_counter() < deadline:
                response = await client.post(
                    "/v1/auth/token",
                    json={"username": "dupont.jean", "password": DEMO_PASSWORD},
                )
                if response.status_code == 200:
                    ok += 1
                else:
                    failed += 1

        start = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        return ok, failed, time.perf_counter() - start


def cpu_seconds_by_part(stack: Stack, since: dict[str, float] | None = None) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each part of the stack, from /proc: the
    stack's components by pid, PostgreSQL's and Temporal's processes by name, and this process
    (the load generator). With `since`, the difference from that earlier reading."""
    tick = os.sysconf("SC_CLK_TCK")
    names = {running.process.pid: running.component.name for running in stack.running}
    names[os.getpid()] = "load generator (this process)"
    totals: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        command = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        pid = int(entry.name)
        part = names.get(pid) or (
            "postgres"
            if command.startswith("postgres")
            else "temporal"
            if command.startswith("temporal")
            else None
        )
        if part is not None:
            cpu = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            totals[part] = totals.get(part, 0.0) + cpu
    if since is None:
        return totals
    return {part: cpu - since.get(part, 0.0) for part, cpu in totals.items()}


async def main(seconds: float, concurrency: int) -> None:
    cores = os.cpu_count() or 1
    with database_server() as pg, tempfile.TemporaryDirectory() as state:
        temporal = await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_cli(),
            dev_server_extra_args=["--log-level", "error", *dev_server_search_attribute_args()],
        )
        stack = Stack(
            Path(state),
            {name: free_port() for name in DEFAULT_PORTS},
            database_admin_url=pg.admin_url,
            temporal_address=temporal.client.service_client.config.target_host,
            echo=False,
            # The bench measures login cost, not the per-IP brake on the auth routes.
            extra_env={"AUTH_RATE_LIMIT_PER_MINUTE": "100000000", "LOG_LEVEL": "WARNING"},
        )
        try:
            await stack.start()
            await load_demo_data(
                stack.grpc_address("identity"),
                ADMIN_USERNAME,
                stack.secrets.admin_password,
                stack.smtp,
            )
            await drive_logins(stack.gateway_url, 2.0, concurrency)  # warm-up
            before = cpu_seconds_by_part(stack)
            ok, failed, elapsed = await drive_logins(stack.gateway_url, seconds, concurrency)
            spent = cpu_seconds_by_part(stack, since=before)
        finally:
            await stack.stop()
            await temporal.shutdown()
    ceiling = await asyncio.to_thread(raw_verify_rate, 5.0)
    machine = await asyncio.to_thread(raw_verify_rate, 5.0, cores)
    rate = ok / elapsed
    per_core = rate / cores
    print(f"cores                         {cores}")
    print(f"logins through the gateway    {ok} ok, {failed} failed in {elapsed:.1f} s")
    print(f"logins/s                      {rate:.1f}")
    print(f"logins/s per core             {per_core:.1f}")
    print(f"raw argon2id verify/s (1 core) {ceiling:.1f}   <- the ceiling, same parameters")
    print(f"raw argon2id verify/s ({cores} threads) {machine:.1f}   <- every core")
    print(f"ratio login/raw per core      {per_core / ceiling:.2f}")
    print(f"ratio logins/raw, all cores   {rate / machine:.2f}")
    print(f"vs Keycloak plan (15/vCPU)    {per_core / KEYCLOAK_PER_VCPU:.2f}x")
    print(f"floor 25/core                 {'met' if per_core >= FLOOR_PER_CORE else 'NOT met'}")
    print("CPU per login, by process (ms):")
    for part, cpu in sorted(spent.items(), key=lambda item: -item[1]):
        print(f"  {part:<28}{1000 * cpu / max(ok, 1):7.2f}")
    print(f"  {'all':<28}{1000 * sum(spent.values()) / max(ok, 1):7.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=8)
    options = parser.parse_args()
    asyncio.run(main(options.seconds, options.concurrency))
    os._exit(0)
