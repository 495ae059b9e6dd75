"""Idempotency-Key on the real processes: a connection dropped after the commit, then retried,
creates the thing once; a second gateway process on the same database answers the same keys.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import text

from services.devstack.components import GATEWAY
from services.devstack.stack import Stack
from services.kit.db import create_engine
from services.kit.ports import free_port
from services.kit.testing import wait_until


async def _admin(stack: Stack) -> dict[str, str]:
    """The ops admin's bearer (its sign-in costs a TOTP step: the stack takes it)."""
    return {"Authorization": f"Bearer {await stack.admin_token()}"}


async def _named(client: httpx.AsyncClient, auth: dict[str, str], name: str) -> list[str]:
    """Ids of the erp_customer organisations called `name` (all pages)."""
    found: list[str] = []
    token = ""
    while True:
        params: dict[str, Any] = {"kind": "erp_customer", "page_size": 500}
        if token:
            params["page_token"] = token
        page = await client.get("/v1/organisations", params=params, headers=auth)
        assert page.status_code == 200, page.text
        body = page.json()
        found += [o["id"] for o in body["items"] if o["name"] == name]
        token = body.get("next_page_token") or ""
        if not token:
            return found


def _raw_post(url: str, path: str, headers: dict[str, str], body: bytes) -> socket.socket:
    """Sends a whole POST on a plain socket and returns the socket, unread."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=10)
    lines = [f"POST {path} HTTP/1.1", f"Host: {parts.netloc}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    return sock


def _reset(sock: socket.socket) -> None:
    """Drops the connection the way a phone losing its network does: a reset, nothing read."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


async def test_a_write_whose_answer_was_lost_is_retried_and_happens_once(stack: Stack) -> None:
    name = f"Retry {uuid.uuid4().hex[:8]}"
    body = json.dumps({"kind": "erp_customer", "name": name}).encode()
    key = str(uuid.uuid4())
    engine = create_engine(stack.database_urls["gateway"], pool_size=1)
    try:
        async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
            auth = await _admin(stack)
            headers = {**auth, "Content-Type": "application/json", "Idempotency-Key": key}
            sock = await asyncio.to_thread(
                _raw_post, stack.gateway_url, "/v1/organisations", headers, body
            )
            try:
                # Identity committed the organisation, and the gateway kept the answer…
                created = await wait_until(
                    lambda: _named(client, auth, name), what="the organisation to be created"
                )

                async def kept() -> bool:
                    async with engine.connect() as connection:
                        status = await connection.scalar(
                            text("SELECT status_code FROM idempotency_keys WHERE key = :key"),
                            {"key": key},
                        )
                    return bool(status == 201)

                await wait_until(kept, what="the gateway to keep the answer")
            finally:
                _reset(sock)  # … which the client never read.
            retried = await client.post("/v1/organisations", content=body, headers=headers)
            assert retried.status_code == 201, retried.text
            assert retried.headers["idempotent-replayed"] == "true"
            assert retried.json()["id"] == created[0]
            assert await _named(client, auth, name) == created, "created once"
            # A retry that reuses the key for something else is refused, and creates nothing.
            other = json.dumps({"kind": "erp_customer", "name": name + " bis"}).encode()
            reused = await client.post("/v1/organisations", content=other, headers=headers)
            assert reused.status_code == 422
            assert reused.json()["type"].endswith("/idempotency_key_reused")
            assert await _named(client, auth, name + " bis") == []
    finally:
        await engine.dispose()


@pytest.fixture
async def second_gateway(stack: Stack) -> AsyncIterator[str]:
    """Another replica: a second `python -m services.gateway` process, same database."""
    port = free_port()
    env = {**stack.env_for(GATEWAY), "HTTP_PORT": str(port)}
    env.pop("METRICS_PORT", None)
    log = (stack.state_dir / "logs" / "gateway-2.log").open("ab")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.gateway", env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=2) as client:

            async def ready() -> bool:
                assert process.returncode is None, "the second gateway exited"
                try:
                    return (await client.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(ready, what="the second gateway to be ready", within=60)
        yield url
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
        log.close()


async def test_two_gateway_processes_share_the_keys(stack: Stack, second_gateway: str) -> None:
    name = f"Replica {uuid.uuid4().hex[:8]}"
    key = str(uuid.uuid4())
    async with (
        httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as one,
        httpx.AsyncClient(base_url=second_gateway, timeout=30) as two,
    ):
        auth = await _admin(stack)
        headers = {**auth, "Idempotency-Key": key}
        body = {"kind": "erp_customer", "name": name}
        first = await one.post("/v1/organisations", json=body, headers=headers)
        again = await two.post("/v1/organisations", json=body, headers=headers)
        assert first.status_code == again.status_code == 201, (first.text, again.text)
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        assert await _named(one, auth, name) == [first.json()["id"]]
