"""One identity service for the package: migrated database, gRPC on port 0, mail worker, and
beside it a real membership service (its own database), which answers the association fee check
of account validation. Identity starts first, while membership is not up yet (as in `make dev`):
it reaches membership on the first validation."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import cast

import grpc
import pytest
from guichet.identity.v1 import identity_pb2, identity_pb2_grpc
from guichet.membership.v1 import membership_pb2_grpc
from temporalio.testing import WorkflowEnvironment

from services.devstack.signin import sign_in
from services.identity.passwords import Passwords
from services.identity.servicer import SPEC
from services.identity.settings import IdentitySettings
from services.kit.mail import new_sealing_key
from services.kit.ports import free_port
from services.kit.runtime import start_service
from services.kit.smtpsink import SmtpSink
from services.kit.testing import DatabaseServer
from services.membership.servicer import SPEC as MEMBERSHIP_SPEC
from services.membership.settings import MembershipSettings
from tests.identity.harness import (
    ADMIN_PASSWORD,
    ADMIN_TOTP_SECRET,
    ADMIN_USERNAME,
    MEMBERSHIP_CLIENT_ID,
    MEMBERSHIP_CLIENT_SECRET,
    SERVICE_CLIENT_ID,
    SERVICE_CLIENT_SECRET,
    Identity,
)
from workflows.settings import WorkerSettings
from workflows.worker import build_worker

MIGRATIONS = Path(SPEC.migrations_dir)


@pytest.fixture(scope="package")
async def identity_url(pg: DatabaseServer) -> str:
    url = await pg.migrated_database(MIGRATIONS, "identity")
    return url


@pytest.fixture(scope="package")
async def membership_url(pg: DatabaseServer) -> str:
    url = await pg.migrated_database(Path(MEMBERSHIP_SPEC.migrations_dir), "membership")
    return url


@pytest.fixture(scope="package")
async def identity(
    identity_url: str,
    membership_url: str,
    smtp_sink: SmtpSink,
    temporal_env: WorkflowEnvironment,
) -> AsyncIterator[Identity]:
    key = new_sealing_key()
    queue = f"identity-{uuid.uuid4()}"
    # Identity must know where membership will listen before membership (which verifies tokens
    # with identity's JWKS) can start: the one port chosen up front.
    membership_addr = f"127.0.0.1:{free_port()}"
    settings = IdentitySettings(
        service_name="identity",
        database_url=identity_url,
        grpc_host="127.0.0.1",
        grpc_port=0,
        shutdown_grace=0,
        log_json=False,
        temporal_address=temporal_env.client.service_client.config.target_host,
        temporal_task_queue=queue,
        mail_sealing_key=key,
        service_clients=(
            f"{SERVICE_CLIENT_ID}={SERVICE_CLIENT_SECRET},groups={'g' * 32},"
            f"{MEMBERSHIP_CLIENT_ID}={MEMBERSHIP_CLIENT_SECRET}"
        ),
        membership_addr=membership_addr,
        bootstrap_admin_username=ADMIN_USERNAME,
        bootstrap_admin_password=ADMIN_PASSWORD,
        bootstrap_admin_email="root.admin@example.org",
        link_resend_cooldown_seconds=0,
        bootstrap_admin_totp_secret=ADMIN_TOTP_SECRET,
        # Every test signs in from 192.0.2.1: the per-address brake would join unrelated tests'
        # failures (tests/identity/test_throttles.py gives it its own addresses).
        address_lockout_threshold=1_000_000,
    )
    worker = build_worker(
        temporal_env.client,
        WorkerSettings(smtp_port=smtp_sink.port, mail_sealing_key=key, temporal_task_queue=queue),
        task_queue=queue,
    )
    async with worker, AsyncExitStack() as stack:
        context, server = await start_service(SPEC, settings)
        stack.push_async_callback(context.exit_stack.aclose)
        stack.push_async_callback(server.stop)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        stack.push_async_callback(channel.close)
        membership_settings = MembershipSettings(
            service_name="membership",
            database_url=membership_url,
            grpc_host="127.0.0.1",
            grpc_port=int(membership_addr.rsplit(":", 1)[1]),
            shutdown_grace=0,
            log_json=False,
            temporal_address=settings.temporal_address,
            temporal_task_queue=queue,
            identity_addr=f"127.0.0.1:{server.port}",
            service_client_id=MEMBERSHIP_CLIENT_ID,
            service_client_secret=MEMBERSHIP_CLIENT_SECRET,
            mail_sealing_key=key,
        )
        membership_context, membership_server = await start_service(
            MEMBERSHIP_SPEC, membership_settings
        )
        stack.push_async_callback(membership_context.exit_stack.aclose)
        stack.push_async_callback(membership_server.stop)
        membership_channel = grpc.aio.insecure_channel(membership_addr)
        stack.push_async_callback(membership_channel.close)
        stub = cast(
            "identity_pb2_grpc.IdentityServiceAsyncStub",
            identity_pb2_grpc.IdentityServiceStub(channel),
        )
        admin = await sign_in(
            stub,
            ADMIN_USERNAME,
            ADMIN_PASSWORD,
            totp_secret=ADMIN_TOTP_SECRET,
            scope=identity_url,
        )
        service = await stub.IssueServiceToken(
            identity_pb2.IssueServiceTokenRequest(
                client_id=SERVICE_CLIENT_ID, client_secret=SERVICE_CLIENT_SECRET
            )
        )
        yield Identity(
            settings=settings,
            stub=stub,
            sessions=context.sessions,
            passwords=Passwords.from_settings(settings),
            smtp=smtp_sink,
            admin_token=admin.access_token,
            service_token=service.access_token,
            membership=cast(
                "membership_pb2_grpc.MembershipServiceAsyncStub",
                membership_pb2_grpc.MembershipServiceStub(membership_channel),
            ),
        )
