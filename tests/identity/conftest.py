"""One identity service for the package: migrated database, gRPC on port 0, mail worker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import cast

import grpc
import pytest
from guichet.identity.v1 import identity_pb2, identity_pb2_grpc
from temporalio.testing import WorkflowEnvironment

from services.identity.passwords import Passwords
from services.identity.servicer import SPEC
from services.identity.settings import IdentitySettings
from services.kit.db import upgrade
from services.kit.mail import new_sealing_key
from services.kit.runtime import start_service
from services.kit.smtpsink import SmtpSink
from services.kit.testing import DatabaseServer
from tests.identity.harness import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    SERVICE_CLIENT_ID,
    SERVICE_CLIENT_SECRET,
    Identity,
)
from workflows.settings import WorkerSettings
from workflows.worker import build_worker

MIGRATIONS = Path(SPEC.migrations_dir)


@pytest.fixture(scope="package")
async def identity_url(pg: DatabaseServer) -> str:
    url = await pg.new_database("identity")
    await upgrade(MIGRATIONS, url)
    return url


@pytest.fixture(scope="package")
async def identity(
    identity_url: str, smtp_sink: SmtpSink, temporal_env: WorkflowEnvironment
) -> AsyncIterator[Identity]:
    key = new_sealing_key()
    queue = f"identity-{uuid.uuid4()}"
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
        service_clients=f"{SERVICE_CLIENT_ID}={SERVICE_CLIENT_SECRET},groups={'g' * 32}",
        bootstrap_admin_username=ADMIN_USERNAME,
        bootstrap_admin_password=ADMIN_PASSWORD,
        bootstrap_admin_email="root.admin@example.org",
        link_resend_cooldown_seconds=0,
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
        stub = cast(
            "identity_pb2_grpc.IdentityServiceAsyncStub",
            identity_pb2_grpc.IdentityServiceStub(channel),
        )
        admin = await stub.Login(
            identity_pb2.LoginRequest(username=ADMIN_USERNAME, password=ADMIN_PASSWORD)
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
            admin_token=admin.tokens.access_token,
            service_token=service.access_token,
        )
