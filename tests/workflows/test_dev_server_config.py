"""The dev server's dynamic config (`services.kit.temporal.DEV_SERVER_DYNAMIC_CONFIG`) is in force.

A key the server does not read is silently ignored: session 5 replaced the host-level cache's size
with the per-shard one, which this server does not use, and its cache fell back to 8,096 runs, so
ten thousand live SLA runs were reloaded from SQLite at every task (bench/sla.py). The server's
own metrics say what it applies.
"""

from __future__ import annotations

import subprocess

import httpx

from services.kit.binaries import temporal_cli
from services.kit.ports import free_port
from services.kit.temporal import DEV_SERVER_DYNAMIC_CONFIG, dev_server_args
from services.kit.testing import wait_until


def _mutable_state_cache(metrics_port: int) -> float | None:
    try:
        text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return None
    for line in text.splitlines():
        if line.startswith("cache_size{") and 'cache_type="mutablestate"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_the_history_cache_holds_the_runs_it_is_sized_for() -> None:
    metrics_port = free_port()
    server = subprocess.Popen(
        [
            str(temporal_cli()),
            "server",
            "start-dev",
            "--headless",
            "--ip",
            "127.0.0.1",
            "--port",
            str(free_port()),
            "--http-port",
            str(free_port()),
            "--metrics-port",
            str(metrics_port),
            "--log-level",
            "error",
            *dev_server_args(),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        size = await wait_until(
            lambda: _mutable_state_cache(metrics_port), what="the dev server's metrics"
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert size == float(DEV_SERVER_DYNAMIC_CONFIG["history.hostLevelCacheMaxSize"])
    assert size >= 10_000  # bench/sla.py's live runs
