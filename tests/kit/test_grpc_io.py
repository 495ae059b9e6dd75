"""gRPC's socket I/O on the polling thread (services/kit/grpc_io.py): the setting's copies agree,
an operator's value wins, and the setting still does what it is there for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from services.kit.grpc_io import (
    GRPC_EXPERIMENTS,
    GRPC_EXPERIMENTS_VARIABLE,
    grpc_io_environment,
)
from services.kit.testing import scaled

ROOT = Path(__file__).resolve().parents[2]

# Unary calls between a grpc.aio client and server in one process; prints how many times per
# call EventEngine's threads and the others went to sleep (each sleep is a later wake-up).
_CALLS = """
import asyncio, json, os, grpc
def sleeps():
    found = {}
    for task in os.listdir("/proc/self/task"):
        name = open(f"/proc/self/task/{task}/comm").read().strip()
        status = open(f"/proc/self/task/{task}/status").read().splitlines()
        count = int(next(l for l in status if l.startswith("voluntary")).split()[1])
        key = "event_engine" if name == "event_engine" else "others"
        found[key] = found.get(key, 0) + count
    return found
async def main():
    async def echo(request, context):
        return request
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "t.T", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary("/t.T/Echo")
        for _ in range(50):
            await call(b"x")
        before = sleeps()
        for _ in range(300):
            await call(b"x")
        after = sleeps()
    await server.stop(None)
    print(json.dumps({k: (after.get(k, 0) - before.get(k, 0)) / 300 for k in after}))
asyncio.run(main())
os._exit(0)
"""


def _sleeps_per_call(environ: dict[str, str]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", _CALLS],
        env=environ,
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_the_setting_is_given_unless_the_operator_gave_one() -> None:
    assert grpc_io_environment({}) == {GRPC_EXPERIMENTS_VARIABLE: GRPC_EXPERIMENTS}
    assert grpc_io_environment({GRPC_EXPERIMENTS_VARIABLE: "some_experiment"}) == {}
    assert grpc_io_environment({GRPC_EXPERIMENTS_VARIABLE: ""}) == {}


def test_the_image_and_make_start_processes_with_the_same_setting() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert f"ENV {GRPC_EXPERIMENTS_VARIABLE}={GRPC_EXPERIMENTS}\n" in dockerfile
    assert f"export {GRPC_EXPERIMENTS_VARIABLE} ?= {GRPC_EXPERIMENTS}\n" in makefile


def test_with_the_setting_event_engine_threads_stay_asleep_during_calls() -> None:
    """Without it, EventEngine's threads wake about six times per call (client and server side);
    with it, the polling thread does the I/O and they do not wake at all. If a grpcio upgrade
    drops the old I/O path, the first assertion fails: re-measure before dropping the setting."""
    plain = {k: v for k, v in os.environ.items() if k != GRPC_EXPERIMENTS_VARIABLE}
    tuned = {**plain, **grpc_io_environment(plain)}
    assert _sleeps_per_call(tuned).get("event_engine", 0.0) < 0.5
    assert _sleeps_per_call(plain)["event_engine"] > 2
