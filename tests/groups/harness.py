"""What the groups tests share: identity, groups and a worker, running for real, and factories.

`running_world` starts identity (real PostgreSQL, gRPC on port 0), the groups service (its own
database, its outbox relay to the given Temporal) and, unless told not to, a worker on a fresh
task queue that calls groups with its own service token. Factories make a provider with its
manager and employees (accounts written straight to identity's tables, as the identity tests do),
and clients with program accounts and relationships (through the internal RPCs).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from guichet.groups.v1 import groups_pb2 as pb, groups_pb2_grpc
from guichet.identity.v1 import identity_pb2_grpc
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.worker import Worker

from services.devstack.signin import sign_in
from services.groups.models import AccessGrant
from services.groups.servicer import SPEC as GROUPS_SPEC
from services.groups.settings import GroupsSettings
from services.identity.passwords import Passwords
from services.identity.servicer import SPEC as IDENTITY_SPEC
from services.identity.settings import IdentitySettings
from services.kit.errors import RemoteProblem
from services.kit.grpcclient import ServiceTokenSource
from services.kit.identity_client import connect_identity
from services.kit.mail import new_sealing_key
from services.kit.runtime import start_service
from services.kit.settings import CommonSettings
from services.kit.smtpsink import SmtpSink
from services.kit.temporal import SEARCH_ATTRIBUTES
from services.kit.testing import DatabaseServer, wait_until
from tests.identity.harness import (
    ADMIN_PASSWORD,
    ADMIN_TOTP_SECRET,
    ADMIN_USERNAME,
    SERVICE_PROVIDER,
    Account,
    Identity,
    bearer,
    unique,
)
from workflows.settings import WorkerSettings
from workflows.worker import build_worker

Metadata = tuple[tuple[str, str], ...]
WORKER_CLIENT = ("worker", "worker-secret-0123456789abcdef")
GATEWAY_CLIENT = ("gateway", "gateway-secret-0123456789abcdef")
GROUPS_CLIENT = ("groups", "groups-secret-0123456789abcdef0")
CONFIRM = "CONFIRMER"
EDITOR = pb.DELEGATED_ROLE_EDITOR
READ_ONLY = pb.DELEGATED_ROLE_READ_ONLY
MANAGER = pb.DELEGATED_ROLE_PROGRAM_ACCOUNT_MANAGER
COMPLETED = pb.PROCESS_REQUEST_STATUS_COMPLETED
FAILED = pb.PROCESS_REQUEST_STATUS_FAILED


async def fails(call: Awaitable[Any]) -> RemoteProblem:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return RemoteProblem.from_rpc_error(error)
    raise AssertionError("the call succeeded")


def fields(problem: RemoteProblem) -> set[str]:
    return {name for name, _ in problem.violations}


def timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


@dataclass
class Provider:
    id: str
    manager: Account
    manager_auth: Metadata
    employees: dict[str, Account]  # by role: program_account_manager, editor, read_only
    clients: list[str] = field(default_factory=list)


@dataclass
class World:
    identity: Identity
    identity_addr: str
    groups: groups_pb2_grpc.GroupsServiceAsyncStub
    groups_addr: str
    sessions: async_sessionmaker[AsyncSession]
    worker_settings: WorkerSettings
    worker_tokens: ServiceTokenSource
    task_queue: str
    temporal: Client

    @property
    def ops(self) -> Metadata:
        return self.identity.admin

    async def service(self) -> Metadata:
        return bearer(await self.worker_tokens.token())

    def worker(self, **overrides: Any) -> Worker:
        settings = self.worker_settings.model_copy(update=overrides)
        return build_worker(
            self.temporal, settings, task_queue=self.task_queue, tokens=self.worker_tokens
        )

    async def provider(self, name: str | None = None) -> Provider:
        provider_id = await self.identity.organisation(SERVICE_PROVIDER, name or unique("SP "))
        manager = await self.identity.account(provider_id, "business_account_manager")
        employees = {
            role: await self.identity.account(provider_id, role, last_name=role.title())
            for role in ("program_account_manager", "editor", "read_only")
        }
        return Provider(provider_id, manager, await self.identity.token(manager), employees)

    async def clients(
        self,
        provider: Provider | None,
        count: int,
        *,
        accounts: int = 3,
        status: int = pb.RELATIONSHIP_STATUS_ACTIVE,
        names: list[str] | None = None,
        expire_time: datetime | None = None,
        closed: int = 0,
    ) -> list[str]:
        """Client businesses with program accounts (the first `closed` of each closed) and,
        when a provider is given, a relationship with it."""
        records = []
        for i in range(count):
            client_id = str(uuid.uuid4())
            records.append(
                pb.ClientRecord(
                    id=client_id,
                    name=names[i] if names else unique("Client "),
                    program_accounts=[
                        pb.ProgramAccountRecord(
                            id=str(uuid.uuid4()),
                            number=f"{100000000 + i}RM{j:04d}",
                            status=pb.PROGRAM_ACCOUNT_STATUS_CLOSED
                            if j < closed
                            else pb.PROGRAM_ACCOUNT_STATUS_ACTIVE,
                        )
                        for j in range(accounts)
                    ],
                )
            )
        for start in range(0, len(records), 2000):
            await self.groups.RecordClients(
                pb.RecordClientsRequest(clients=records[start : start + 2000]), metadata=self.ops
            )
        ids = [r.id for r in records]
        if provider is not None:
            await self.relate(provider, ids, status=status, expire_time=expire_time)
            provider.clients += ids
        return ids

    async def relate(
        self,
        provider: Provider,
        client_ids: list[str],
        *,
        status: int = pb.RELATIONSHIP_STATUS_ACTIVE,
        expire_time: datetime | None = None,
    ) -> pb.RecordRelationshipsResponse:
        expiry = expire_time or datetime.now(UTC) + timedelta(days=365)
        response: pb.RecordRelationshipsResponse = await self.groups.RecordRelationships(
            pb.RecordRelationshipsRequest(
                relationships=[
                    pb.RelationshipRecord(
                        provider_id=provider.id,
                        client_id=client,
                        status=status,  # type: ignore[arg-type]
                        expire_time=timestamp(expiry),
                    )
                    for client in client_ids
                ]
            ),
            metadata=self.ops,
        )
        return response

    async def group(
        self, provider: Provider, client_ids: list[str], name: str | None = None
    ) -> str:
        response: pb.CreateGroupResponse = await self.groups.CreateGroup(
            pb.CreateGroupRequest(
                provider_id=provider.id, name=name or unique("Groupe "), client_ids=client_ids
            ),
            metadata=provider.manager_auth,
        )
        return response.group.id

    async def assign(
        self, provider: Provider, group_id: str, employee: Account, role: int = EDITOR
    ) -> pb.UpdateGroupResponse:
        response: pb.UpdateGroupResponse = await self.groups.UpdateGroup(
            pb.UpdateGroupRequest(
                provider_id=provider.id,
                group_id=group_id,
                assign=[pb.EmployeeRole(employee_id=employee.id, role=role)],  # type: ignore[arg-type]
                confirmation=CONFIRM,
            ),
            metadata=provider.manager_auth,
        )
        return response

    async def request(self, provider: Provider, request_id: str) -> pb.ProcessRequest:
        response: pb.GetProcessRequestResponse = await self.groups.GetProcessRequest(
            pb.GetProcessRequestRequest(provider_id=provider.id, process_request_id=request_id),
            metadata=provider.manager_auth,
        )
        return response.process_request

    async def finished(
        self, provider: Provider, request_id: str, *, within: float = 60
    ) -> pb.ProcessRequest:
        """Polls a process request until it is completed or failed."""

        async def ended() -> pb.ProcessRequest | None:
            found = await self.request(provider, request_id)
            return found if found.status in (COMPLETED, FAILED) else None

        return await wait_until(
            ended, what=f"process request {request_id} completed or failed", within=within
        )

    async def grants(
        self, *, employee: str | None = None, group: str | None = None
    ) -> dict[tuple[str, str], str]:
        """(program account, employee) → role, as the database holds them."""
        query = select(AccessGrant)
        if employee is not None:
            query = query.where(AccessGrant.employee_id == uuid.UUID(employee))
        if group is not None:
            query = query.where(AccessGrant.group_id == uuid.UUID(group))
        async with self.sessions.begin() as session:
            rows = (await session.execute(query)).scalars().all()
        return {(str(g.program_account_id), str(g.employee_id)): g.role for g in rows}

    async def grant_count(self, employee: str) -> int:
        async with self.sessions.begin() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(AccessGrant)
                .where(AccessGrant.employee_id == uuid.UUID(employee))
            )
        return int(count or 0)


async def register_search_attributes(client: Client) -> None:
    """The time-skipping test server starts without our search attributes; the dev server gets
    them from its command line."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in SEARCH_ATTRIBUTES
            },
        )
    )


@asynccontextmanager
async def running_world(
    pg: DatabaseServer,
    temporal: Client,
    smtp: SmtpSink,
    *,
    with_worker: bool = True,
    worker_overrides: dict[str, Any] | None = None,
) -> AsyncIterator[World]:
    target = temporal.service_client.config.target_host
    queue = f"groups-{uuid.uuid4()}"
    identity_url = await pg.migrated_database(Path(IDENTITY_SPEC.migrations_dir), "identity")
    groups_url = await pg.migrated_database(Path(GROUPS_SPEC.migrations_dir), "groups")
    key = new_sealing_key()
    identity_settings = IdentitySettings(
        service_name="identity",
        database_url=identity_url,
        grpc_host="127.0.0.1",
        grpc_port=0,
        shutdown_grace=0,
        log_json=False,
        temporal_address=target,
        temporal_task_queue=queue,
        mail_sealing_key=key,
        service_clients=",".join(
            f"{c}={s}" for c, s in (WORKER_CLIENT, GATEWAY_CLIENT, GROUPS_CLIENT)
        ),
        bootstrap_admin_username=ADMIN_USERNAME,
        bootstrap_admin_password=ADMIN_PASSWORD,
        bootstrap_admin_totp_secret=ADMIN_TOTP_SECRET,
        bootstrap_admin_email="root.admin@example.org",
    )
    async with AsyncExitStack() as stack:
        identity_context, identity_server = await start_service(IDENTITY_SPEC, identity_settings)
        stack.push_async_callback(identity_context.exit_stack.aclose)
        stack.push_async_callback(identity_server.stop)
        identity_addr = f"127.0.0.1:{identity_server.port}"
        groups_settings = GroupsSettings(
            service_name="groups",
            database_url=groups_url,
            grpc_host="127.0.0.1",
            grpc_port=0,
            shutdown_grace=0,
            log_json=False,
            temporal_address=target,
            temporal_task_queue=queue,
            identity_addr=identity_addr,
            service_client_id=GROUPS_CLIENT[0],
            service_client_secret=GROUPS_CLIENT[1],
        )
        groups_context, groups_server = await start_service(GROUPS_SPEC, groups_settings)
        stack.push_async_callback(groups_context.exit_stack.aclose)
        stack.push_async_callback(groups_server.stop)
        groups_addr = f"127.0.0.1:{groups_server.port}"
        identity_channel = grpc.aio.insecure_channel(identity_addr)
        groups_channel = grpc.aio.insecure_channel(groups_addr)
        stack.push_async_callback(identity_channel.close)
        stack.push_async_callback(groups_channel.close)
        identity_stub = cast(
            "identity_pb2_grpc.IdentityServiceAsyncStub",
            identity_pb2_grpc.IdentityServiceStub(identity_channel),
        )
        admin = await sign_in(
            identity_stub,
            ADMIN_USERNAME,
            ADMIN_PASSWORD,
            totp_secret=ADMIN_TOTP_SECRET,
            scope=identity_url,
        )
        link = connect_identity(
            CommonSettings(
                identity_addr=identity_addr,
                service_client_id=WORKER_CLIENT[0],
                service_client_secret=WORKER_CLIENT[1],
            )
        )
        stack.push_async_callback(link.close)
        assert link.tokens is not None
        identity = Identity(
            settings=identity_settings,
            stub=identity_stub,
            sessions=identity_context.sessions,
            passwords=Passwords.from_settings(identity_settings),
            smtp=smtp,
            admin_token=admin.access_token,
            service_token="",
        )
        world = World(
            identity=identity,
            identity_addr=identity_addr,
            groups=cast(
                "groups_pb2_grpc.GroupsServiceAsyncStub",
                groups_pb2_grpc.GroupsServiceStub(groups_channel),
            ),
            groups_addr=groups_addr,
            sessions=groups_context.sessions,
            worker_settings=WorkerSettings(
                mail_sealing_key=key,
                temporal_task_queue=queue,
                groups_addr=groups_addr,
                identity_addr=identity_addr,
                **(worker_overrides or {}),
            ),
            worker_tokens=link.tokens,
            task_queue=queue,
            temporal=temporal,
        )
        if with_worker:
            await stack.enter_async_context(world.worker())
        yield world
