"""Password logins per second per core through the gateway, beside the raw argon2id ceiling.

Starts what a login touches, as `make dev` runs it (PostgreSQL, Temporal, identity and the
gateway as separate processes) on free ports, provisions the demo accounts, then drives
`POST /v1/auth/token` from concurrent keep-alive connections for a fixed time. In the same run it
measures how many argon2id verifications one core does with the same OWASP parameters: the
ceiling a login can never beat (issue #29: a login must reach ≥ 0.8 of it).

Two ratios, both printed with their verdict:

- **wall clock** (the issue's definition): logins/s divided by the cores, against one thread's
  raw verifications/s. True only on a quiet machine: anything else running takes cores from
  the stack and not from the one-thread ceiling.
- **CPU time** (holds on a shared machine): logins per CPU-second spent by the processes a login
  runs in (gateway, identity, PostgreSQL; read from /proc), against raw verifications per
  CPU-second of the verifying thread. On a quiet, saturated machine the two agree, minus the
  load generator's share. The logins run in rounds (`--rounds`, 4), and the ceiling is
  measured before, between and after them with the stack idle, then averaged: a core's speed
  drifts within a minute, even on a quiet machine. Each round's own ratio is printed too.

It also prints each process's CPU per login, identity's split between its event loop and its
other threads (the argon2id pool), and the servers' CPU beside the hashes against what the
target leaves for it (a quarter of a raw verification).

The load generator speaks HTTP/1.1 over asyncio streams (one pre-encoded request per login): it
shares the cores with the stack, so it should cost as little as the login it measures allows.
Keycloak's sizing guide plans 15 password logins/s per vCPU; the floor set for Guichet is 25.
Run: `make bench` (or `python -m bench.login --seconds 20 --concurrency 8`). With
`--cheap-hashes`, identity hashes with argon2id at its smallest: what a login costs beside the
hash, alone; against a normal run, the difference is what sharing the cores with 19 MiB hashes
costs the servers (their caches emptied at each wake-up, docs/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from sqlalchemy.engine import make_url
from temporalio.testing import WorkflowEnvironment

from services.devstack.components import DEFAULT_PORTS, GATEWAY, IDENTITY, WORKER
from services.devstack.demo import DEMO_PASSWORD, load_demo_data
from services.devstack.stack import ADMIN_USERNAME, Stack
from services.kit.binaries import temporal_cli
from services.kit.ports import free_port
from services.kit.temporal import dev_server_args
from services.kit.testing import database_server

# OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1 (what identity uses).

KEYCLOAK_PER_VCPU = 15.0
FLOOR_PER_CORE = 25.0
# Issue #29: a login through the gateway costs at most 1/0.8 of a raw verification.
TARGET_RATIO = 0.8
# The processes a login runs in; their CPU is what a login costs the servers.
SERVER_PARTS = ("gateway", "identity", "postgres")
BENCH_USER = "dupont.jean"


def raw_verify_rate(seconds: float, threads: int = 1) -> tuple[float, float]:
    """argon2id verifications per second from `threads` threads (argon2-cffi releases the GIL,
    as identity's verifications in worker threads do), and per CPU-second of those threads:
    1 thread is one core's ceiling."""
    hasher = PasswordHasher(memory_cost=19456, time_cost=2, parallelism=1)
    digest = hasher.hash(DEMO_PASSWORD)
    start = time.perf_counter()

    def verify_until_deadline() -> tuple[int, float]:
        count = 0
        cpu = time.thread_time()
        while time.perf_counter() - start < seconds:
            hasher.verify(digest, DEMO_PASSWORD)
            count += 1
        return count, time.thread_time() - cpu

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(lambda _: verify_until_deadline(), range(threads)))
    total = sum(count for count, _ in results)
    cpu = sum(spent for _, spent in results)
    return total / (time.perf_counter() - start), total / cpu


def login_request(base_url: str, username: str, password: str) -> bytes:
    """The whole HTTP/1.1 request of one login, encoded once."""
    host = urlsplit(base_url).netloc
    body = json.dumps({"username": username, "password": password}).encode()
    head = (
        f"POST /v1/auth/token HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    """Sends one request on a kept-alive connection and reads its answer; returns the status."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def drive_logins(base_url: str, seconds: float, concurrency: int) -> tuple[int, int, float]:
    """`concurrency` connections, each posting logins back to back until the deadline."""
    ok = failed = 0
    request = login_request(base_url, BENCH_USER, DEMO_PASSWORD)
    address = urlsplit(base_url)
    deadline = time.perf_counter() + seconds

    async def one_client() -> None:
        nonlocal ok, failed
        reader, writer = await asyncio.open_connection(address.hostname, address.port)
        try:
            while time.perf_counter() < deadline:
                if await _exchange(reader, writer, request) == 200:
                    ok += 1
                else:
                    failed += 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(concurrency)))
    return ok, failed, time.perf_counter() - start


def _processes() -> dict[int, tuple[int, str, str, float]]:
    """pid → (parent pid, command, command line, CPU seconds so far) of every process."""
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[int, tuple[int, str, str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        command = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        cpu = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        found[int(entry.name)] = (int(fields[1]), command, cmdline, cpu)
    return found


def _descendants(root: int, processes: dict[int, tuple[int, str, str, float]]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (parent, *_) in processes.items():
        children.setdefault(parent, []).append(pid)
    found, todo = {root}, [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def cpu_seconds_by_part(
    stack: Stack, postgres_port: int, since: dict[str, float] | None = None
) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each part of this run, from /proc: the stack's
    components by pid, this run's PostgreSQL (its postmaster, found by port, and the backends
    it forked), this run's Temporal (a child of this process) and this process (the load
    generator). Other programs on a shared machine are not counted. With `since`, the
    difference from that earlier reading."""
    processes = _processes()
    totals: dict[str, float] = {}
    for pid, part in _parts(stack, postgres_port, processes).items():
        if pid in processes:
            totals[part] = totals.get(part, 0.0) + processes[pid][3]
    if since is None:
        return totals
    return {part: cpu - since.get(part, 0.0) for part, cpu in totals.items()}


def _parts(
    stack: Stack, postgres_port: int, processes: dict[int, tuple[int, str, str, float]]
) -> dict[int, str]:
    """pid → the part of this run it belongs to (see `cpu_seconds_by_part`)."""
    parts = {running.process.pid: running.component.name for running in stack.running}
    parts[os.getpid()] = "load generator (this process)"
    port = f"-p {postgres_port}"
    for pid, (_, command, cmdline, _) in processes.items():
        if command.startswith("postgres") and port in cmdline:
            parts.update(dict.fromkeys(_descendants(pid, processes), "postgres"))
    for pid in _descendants(os.getpid(), processes):
        if processes[pid][1].startswith("temporal"):
            parts.update(dict.fromkeys(_descendants(pid, processes), "temporal"))
    return parts


def wakeups_by_part(
    stack: Stack, postgres_port: int, since: dict[str, int] | None = None
) -> dict[str, int]:
    """How many times the threads of each part went to sleep (and so were woken again), from
    each thread's voluntary context switches. On a machine whose cores all hash, each wake-up
    takes a core from a hash, and both then run on caches the other emptied."""
    processes = _processes()
    totals: dict[str, int] = {}
    for pid, part in _parts(stack, postgres_port, processes).items():
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:  # gone meanwhile
            continue
        for task in tasks:
            try:
                status = (task / "status").read_text().splitlines()
            except OSError:
                continue
            for line in status:
                if line.startswith("voluntary_ctxt_switches"):
                    totals[part] = totals.get(part, 0) + int(line.split()[1])
    if since is None:
        return totals
    return {part: count - since.get(part, 0) for part, count in totals.items()}


def thread_cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU seconds of a process's main thread (identity's event loop: gRPC, the statements,
    tokens) and of its other threads (the argon2id pool, gRPC's poller), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    main = others = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        cpu = (int(fields[11]) + int(fields[12])) / tick
        if task.name == str(pid):
            main += cpu
        else:
            others += cpu
    return main, others


def budget_per_login(ceiling_per_cpu: float, every_core_per_cpu: float) -> tuple[float, float]:
    """CPU seconds a login may cost at the target, and what is left of it for everything but the
    hash when the hash costs what it costs with every core hashing (the cores share their L3
    cache and memory: on a 2-core machine one verification then takes 0-11 % more CPU than on
    an idle one). A stack that hashes on every core can never beat `every_core / ceiling`."""
    at_target = 1 / (TARGET_RATIO * ceiling_per_cpu)
    return at_target, at_target - 1 / every_core_per_cpu


def verdict(ratio: float) -> str:
    return f"{'met' if ratio >= TARGET_RATIO else 'NOT met'} (target >= {TARGET_RATIO})"


# `--cheap-hashes`: argon2id at its smallest (8 KiB, one pass), so that a login's CPU is what
# runs beside the hash, without the hash and without its contention for the caches.
CHEAP_HASHES = {"ARGON2_MEMORY_COST_KIB": "8", "ARGON2_TIME_COST": "1"}
# Each measure of the ceiling between two rounds of logins.
RAW_SECONDS = 3.0


async def main(
    seconds: float, concurrency: int, *, rounds: int = 4, cheap_hashes: bool = False
) -> None:
    cores = os.cpu_count() or 1
    load_at_start = os.getloadavg()[0]
    with database_server() as pg, tempfile.TemporaryDirectory() as state:
        temporal = await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_cli(),
            dev_server_extra_args=["--log-level", "error", *dev_server_args()],
        )
        stack = Stack(
            Path(state),
            {name: free_port() for name in DEFAULT_PORTS},
            database_admin_url=pg.admin_url,
            temporal_address=temporal.client.service_client.config.target_host,
            echo=False,
            # Logins count failures only; the per-address brake (of the routes that mail, and of
            # every auth route before issue #26) would only stop this one client address.
            extra_env={
                "AUTH_RATE_LIMIT_PER_MINUTE": "0",
                "LOG_LEVEL": "WARNING",
                **(CHEAP_HASHES if cheap_hashes else {}),
            },
        )
        try:
            # Only what a login runs in: the other services would idle beside it and bill
            # their background work to the logins. The worker delivers the demo accounts'
            # "choose your password" mails, then goes.
            await stack.start_infrastructure()
            await stack.start_component(IDENTITY)
            await stack.start_component(WORKER)
            await stack.start_component(GATEWAY)
            await load_demo_data(
                stack.grpc_address("identity"),
                ADMIN_USERNAME,
                stack.secrets.admin_password,
                stack.smtp,
                admin_totp_secret=stack.secrets.admin_totp_secret,
                large=False,
            )
            await stack.kill(WORKER.name, signal.SIGTERM)
            await drive_logins(stack.gateway_url, 2.0, concurrency)  # warm-up
            port = make_url(pg.admin_url).port or 5432
            identity_pid = next(
                running.process.pid
                for running in stack.running
                if running.component.name == IDENTITY.name
            )
            # The logins run in rounds, each between two measures of the ceiling taken with
            # the stack idle: a core's speed drifts within a minute (a shared L3, a host's other
            # guests), by 10 % between two measures a minute apart on a quiet machine.
            ok = failed = 0
            elapsed = loop_cpu = pool_cpu = 0.0
            spent: dict[str, float] = {}
            wakeups: dict[str, int] = {}
            round_ratios: list[float] = []
            ceilings = [await asyncio.to_thread(raw_verify_rate, RAW_SECONDS)]
            for _ in range(rounds):
                before = cpu_seconds_by_part(stack, port)
                wakeups_before = wakeups_by_part(stack, port)
                threads_before = thread_cpu_seconds(identity_pid)
                done = await drive_logins(stack.gateway_url, seconds / rounds, concurrency)
                round_spent = cpu_seconds_by_part(stack, port, since=before)
                round_wakeups = wakeups_by_part(stack, port, since=wakeups_before)
                threads_after = thread_cpu_seconds(identity_pid)
                ceilings.append(await asyncio.to_thread(raw_verify_rate, RAW_SECONDS))
                ok, failed, elapsed = ok + done[0], failed + done[1], elapsed + done[2]
                loop_cpu += threads_after[0] - threads_before[0]
                pool_cpu += threads_after[1] - threads_before[1]
                for part, cpu in round_spent.items():
                    spent[part] = spent.get(part, 0.0) + cpu
                for part, count in round_wakeups.items():
                    wakeups[part] = wakeups.get(part, 0) + count
                round_server = sum(round_spent.get(part, 0.0) for part in SERVER_PARTS)
                bracket = (ceilings[-2][1] + ceilings[-1][1]) / 2
                if round_server:
                    round_ratios.append(done[0] / round_server / bracket)
        finally:
            await stack.stop()
            await temporal.shutdown()
    ceiling = sum(rate for rate, _ in ceilings) / len(ceilings)
    ceiling_per_cpu = sum(per_cpu for _, per_cpu in ceilings) / len(ceilings)
    machine, machine_per_cpu = await asyncio.to_thread(raw_verify_rate, 5.0, cores)
    rate = ok / elapsed
    per_core = rate / cores
    server_cpu = sum(spent.get(part, 0.0) for part in SERVER_PARTS)
    per_server_cpu = ok / server_cpu if server_cpu else 0.0
    wall_ratio = per_core / ceiling
    cpu_ratio = per_server_cpu / ceiling_per_cpu
    print(f"cores                          {cores} (load average {load_at_start:.1f} at start)")
    if cheap_hashes:
        print(
            "CHEAP HASHES (argon2id at 8 KiB, one pass): the CPU per login below is what runs"
            " beside the hash;\n  the ratios do not measure the target"
        )
    print(f"logins through the gateway     {ok} ok, {failed} failed in {elapsed:.1f} s")
    print(f"logins/s                       {rate:.1f}")
    print(f"logins/s per core              {per_core:.1f}")
    print(f"raw argon2id verify/s (1 core) {ceiling:.1f}   <- the ceiling, same parameters")
    print(f"raw argon2id verify/s ({cores} threads) {machine:.1f}   <- every core")
    print(f"ratio login/raw per core, wall clock  {wall_ratio:.2f}  {verdict(wall_ratio)}")
    print("  (wall clock holds on a quiet machine only: other programs take cores from the stack)")
    print(f"logins per server CPU-second   {per_server_cpu:.1f}  ({' + '.join(SERVER_PARTS)})")
    print(
        f"raw verifies per CPU-second    {ceiling_per_cpu:.1f}"
        f"  ({len(ceilings)} measures around {rounds} rounds of logins:"
        f" {min(c for _, c in ceilings):.1f} to {max(c for _, c in ceilings):.1f};"
        f" {machine_per_cpu:.1f} with {cores} threads hashing at once)"
    )
    print(f"ratio login/raw per core, CPU time    {cpu_ratio:.2f}  {verdict(cpu_ratio)}")
    print(
        "  each round against the ceiling measured around it: "
        + ", ".join(f"{ratio:.2f}" for ratio in round_ratios)
    )
    print(f"ratio logins/raw, all cores    {rate / machine:.2f}")
    print(f"vs Keycloak plan (15/vCPU)     {per_core / KEYCLOAK_PER_VCPU:.2f}x")
    print(f"floor 25/core                  {'met' if per_core >= FLOOR_PER_CORE else 'NOT met'}")
    print(f"CPU per login, by process (ms; a raw verification: {1000 / ceiling_per_cpu:.2f}):")
    for part, cpu in sorted(spent.items(), key=lambda item: -item[1]):
        print(f"  {part:<30}{1000 * cpu / max(ok, 1):7.2f}")
    print(
        f"  {'servers (' + ', '.join(SERVER_PARTS) + ')':<30}{1000 * server_cpu / max(ok, 1):7.2f}"
    )
    print(f"  {'all':<30}{1000 * sum(spent.values()) / max(ok, 1):7.2f}")
    print("thread wake-ups per login, by process:")
    for part in SERVER_PARTS:
        print(f"  {part:<30}{wakeups.get(part, 0) / max(ok, 1):7.2f}")
    print("identity by thread (ms per login):")
    print(f"  {'event loop (gRPC, SQL, tokens)':<30}{1000 * loop_cpu / max(ok, 1):7.2f}")
    print(f"  {'other threads (argon2id pool)':<30}{1000 * pool_cpu / max(ok, 1):7.2f}")
    beside = server_cpu - pool_cpu
    print(
        f"servers' CPU beside the hashes   {1000 * beside / max(ok, 1):7.2f}"
        f"  (the target allows {1000 * (1 / TARGET_RATIO - 1) / ceiling_per_cpu:.2f})"
    )
    at_target, left = budget_per_login(ceiling_per_cpu, machine_per_cpu)
    print(
        f"a login at the target costs    {1000 * at_target:7.2f}  ms of CPU; the hash alone, with"
        f" every core hashing, {1000 / machine_per_cpu:.2f}:\n"
        f"  {1000 * left:.2f} ms left for the servers and the hash's slowdown beside them, against"
        f" {1000 * (server_cpu / max(ok, 1) - 1 / machine_per_cpu):.2f} spent"
        f" (best reachable with free servers: {machine_per_cpu / ceiling_per_cpu:.2f})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--cheap-hashes",
        action="store_true",
        help="identity hashes with argon2id at 8 KiB and one pass: measures what a login costs"
        " beside the hash, alone; compared with a normal run, the difference is what sharing the"
        " cores with the hashes costs",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="the logins' seconds are split into this many rounds, each between two measures"
        " of the raw ceiling",
    )
    options = parser.parse_args()
    asyncio.run(
        main(
            options.seconds,
            options.concurrency,
            rounds=max(1, options.rounds),
            cheap_hashes=options.cheap_hashes,
        )
    )
    os._exit(0)
