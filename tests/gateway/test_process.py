"""`python -m services.gateway` as a real process: serves, logs JSON, drains on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

import httpx

from services.kit.ports import free_port
from services.kit.testing import DatabaseServer, scaled, wait_until
from tests.gateway.conftest import RefusingServer


async def test_serves_then_drains_in_flight_requests_on_sigterm(
    refusing_identity: RefusingServer, pg: DatabaseServer
) -> None:
    port = free_port()
    database_url = await pg.new_database("gateway_process")
    migrate = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.gateway",
        "migrate",
        env={**os.environ, "DATABASE_URL": database_url, "LOG_JSON": "true"},
    )
    assert await asyncio.wait_for(migrate.wait(), timeout=scaled(60)) == 0
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(port),
        "IDENTITY_ADDR": refusing_identity.address,
        "LOG_JSON": "true",
        "SHUTDOWN_GRACE": "10",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.gateway",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

            async def healthy() -> bool:
                assert process.returncode is None, "gateway exited early"
                try:
                    return (await client.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(healthy, what="the gateway process to answer /healthz", within=20)
            assert (await client.get("/readyz")).status_code == 200
            # A slow request is in flight when SIGTERM arrives: it still gets its answer.
            slow = asyncio.create_task(
                client.post(
                    "/v1/password/forgot",
                    json={"login": "SLOW"},
                    headers={"x-request-id": "drain-test-0001"},
                )
            )
            await wait_until(
                lambda: any(
                    seen.get("x-request-id") == "drain-test-0001"
                    for seen in refusing_identity.servicer.metadata
                ),
                what="the slow request to reach identity",
                within=10,
            )
            process.send_signal(signal.SIGTERM)
            response = await slow
            assert response.status_code == 202
        await asyncio.wait_for(process.wait(), timeout=scaled(15))
        assert process.returncode == 0
        assert process.stderr is not None
        lines = (await process.stderr.read()).decode().splitlines()
        entries = [json.loads(line) for line in lines if line.startswith("{")]
        access = [e for e in entries if e.get("request_id") == "drain-test-0001"]
        assert access and access[0]["http_status"] == 202
        assert all(e["service"] == "gateway" for e in entries)
        # uvloop serves (a runtime dependency, picked by uvicorn's loop="auto"), not asyncio's
        # own loop: about a tenth of the gateway's CPU per request (docs/performance.md).
        serving = [e for e in entries if e.get("message") == "gateway serving"]
        assert [e["event_loop"] for e in serving] == ["uvloop.Loop"]
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
