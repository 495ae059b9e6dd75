"""`make dev`'s promises, checked on the real processes: health, login, reflection, mail."""

from __future__ import annotations

import json

import grpc
import httpx
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.devstack.components import COMPONENTS, Component
from services.devstack.demo import DEMO_PASSWORD
from services.devstack.signin import fresh_code
from services.devstack.stack import ADMIN_USERNAME, Stack, start_waves


async def test_gateway_is_healthy_and_ready(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 200


async def test_operator_logs_in_through_the_gateway(stack: Stack) -> None:
    """ops_admin always has a second factor: the password step answers 202 with a ticket, the
    code of the admin's authenticator app completes it."""
    async with httpx.AsyncClient(base_url=stack.gateway_url) as client:
        response = await client.post(
            "/v1/auth/token",
            json={"username": ADMIN_USERNAME, "password": stack.secrets.admin_password},
        )
        assert response.status_code == 202, response.text
        assert "totp" in response.json()["methods"]
        code = await fresh_code(stack.secrets.admin_totp_secret, ADMIN_USERNAME)
        response = await client.post(
            "/v1/auth/second-factor", json={"ticket": response.json()["ticket"], "code": code}
        )
        assert response.status_code == 200, response.text
        assert response.cookies.get("guichet_device")
        token = response.json()["access_token"]
        me = await client.get("/v1/me", headers={"authorization": f"Bearer {token}"})
        assert me.status_code == 200
        assert me.json()["username"] == ADMIN_USERNAME


async def test_demo_user_set_password_from_the_mailed_link(stack: Stack) -> None:
    """Demo users were created over gRPC and chose their password from the mail (outbox →
    Temporal → SMTP): logging in proves the whole chain ran, case-insensitively too."""
    async with httpx.AsyncClient(base_url=stack.gateway_url) as client:
        response = await client.post(
            "/v1/auth/token", json={"username": "Dupont.Marie", "password": DEMO_PASSWORD}
        )
        assert response.status_code == 200, response.text


async def test_wrong_password_is_a_problem_document(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url) as client:
        response = await client.post(
            "/v1/auth/token", json={"username": ADMIN_USERNAME, "password": "not-the-password"}
        )
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        body = response.json()
        assert body["status"] == 401
        assert "Traceback" not in response.text


async def test_identity_lists_its_service_through_reflection(stack: Stack) -> None:
    async with grpc.aio.insecure_channel(stack.grpc_address("identity")) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        names: list[str] = []
        async for response in stub.ServerReflectionInfo(iter([request])):
            names += [s.name for s in response.list_services_response.service]
        assert "guichet.identity.v1.IdentityService" in names
        assert "grpc.health.v1.Health" in names


async def test_every_process_serves_prometheus_metrics(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url) as client:
        answer = await client.post(
            "/v1/auth/token",
            json={"username": ADMIN_USERNAME, "password": stack.secrets.admin_password},
        )
        assert answer.status_code == 202  # the password step of a sign-in with a second factor

    async def scrape(name: str) -> str:
        component = next(c for c in COMPONENTS if c.name == name)
        port = stack.metrics_port(component)
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/metrics")
        assert response.status_code == 200
        return response.text

    identity = await scrape("identity")
    assert 'grpc_method="Login",grpc_service="guichet.identity.v1.IdentityService"' in identity
    assert "guichet_grpc_server_handling_seconds_bucket" in identity
    assert 'guichet_db_pool_connections{service="identity",state="in_use"}' in identity
    gateway = await scrape("gateway")
    assert 'route="/v1/auth/token"' in gateway
    worker = await scrape("worker")
    assert "temporal_" in worker  # the SDK's own metrics: pollers, slots, latencies


def test_the_stack_starts_the_services_together_then_each_caller_after_what_it_calls() -> None:
    waves = start_waves(COMPONENTS)
    position = {c.name: i for i, wave in enumerate(waves) for c in wave}
    assert sorted(position) == sorted(c.name for c in COMPONENTS)
    services = {c.name for c in COMPONENTS if c.database and c.protocol == "grpc"}
    assert {c.name for c in waves[0]} == services
    for component in COMPONENTS:
        if component.name not in services:
            assert all(position[callee] < position[component.name] for callee in component.calls)
    assert position["web"] > position["gateway"] > 0


def test_callers_that_call_each_other_have_no_start_order() -> None:
    a = Component("a", "a", None, protocol="none", calls=("b",))
    b = Component("b", "b", None, protocol="none", calls=("a",))
    with pytest.raises(ValueError, match="cycle"):
        start_waves([a, b])


def test_every_process_serves_on_uvloop(stack: Stack) -> None:
    """The gRPC services (`services.kit.runtime`) and the gateway (uvicorn's `loop="auto"`)
    say which loop serves them once it runs: uvloop's, not asyncio's own."""
    for component in COMPONENTS:
        if component.name in ("worker", "web"):
            continue
        message = "gateway serving" if component.name == "gateway" else "serving"
        log = (stack.state_dir / "logs" / f"{component.name}.log").read_text()
        entries = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        loops = [entry["event_loop"] for entry in entries if entry.get("message") == message]
        assert loops and set(loops) == {"uvloop.Loop"}, (component.name, loops)
