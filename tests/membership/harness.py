"""What the membership tests share: identity, membership and a worker, running for real.

`running_world` starts identity (real PostgreSQL, gRPC on port 0), the membership service (its
own database, its outbox and signal relays to the given Temporal) and, unless told not to, a
worker on a fresh task queue that delivers mail and runs the renewal workflow with its own
service token. Factories make workshops and associations with their people (accounts written
straight to identity's tables, as the identity tests do) and a program.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from guichet.identity.v1 import identity_pb2_grpc
from guichet.membership.v1 import membership_pb2 as pb, membership_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.worker import Worker

from services.devstack.signin import sign_in
from services.identity.passwords import Passwords
from services.identity.servicer import SPEC as IDENTITY_SPEC
from services.identity.settings import IdentitySettings
from services.kit.clock import Clock, system_clock
from services.kit.errors import RemoteProblem
from services.kit.grpcclient import ServiceTokenSource
from services.kit.identity_client import connect_identity
from services.kit.mail import new_sealing_key
from services.kit.runtime import ServiceContext, start_service
from services.kit.settings import CommonSettings
from services.kit.smtpsink import ReceivedMail, SmtpSink
from services.kit.temporal import SEARCH_ATTRIBUTES
from services.kit.testing import DatabaseServer, wait_until
from services.membership.servicer import SPEC as MEMBERSHIP_SPEC
from services.membership.settings import MembershipSettings
from tests.identity.harness import (
    ADMIN_PASSWORD,
    ADMIN_TOTP_SECRET,
    ADMIN_USERNAME,
    ASSOCIATION,
    OPERATOR,
    WORKSHOP,
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
MEMBERSHIP_CLIENT = ("membership", "membership-secret-0123456789abc")
IDENTITY_CLIENT = ("identity", "identity-secret-0123456789abcde")


async def fails(call: Awaitable[Any]) -> RemoteProblem:
    """Awaits a call that must fail and returns what the caller sees."""
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


def days_from_today(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


@dataclass
class Workshop:
    id: str
    owner: Account
    auth: Metadata


@dataclass
class Association:
    id: str
    admin: Account
    auth: Metadata
    member: Account
    member_auth: Metadata


@dataclass
class World:
    identity: Identity
    identity_addr: str
    stub: membership_pb2_grpc.MembershipServiceAsyncStub
    membership_addr: str
    context: ServiceContext
    settings: MembershipSettings
    worker_settings: WorkerSettings
    worker_tokens: ServiceTokenSource
    task_queue: str
    temporal: Client
    smtp: SmtpSink
    operator_auth: Metadata

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self.context.sessions

    @property
    def ops(self) -> Metadata:
        """The bootstrap ops_admin."""
        return self.identity.admin

    async def service(self) -> Metadata:
        return bearer(await self.worker_tokens.token())

    def worker(self, client: Client | None = None) -> Worker:
        return build_worker(
            client or self.temporal,
            self.worker_settings,
            task_queue=self.task_queue,
            tokens=self.worker_tokens,
        )

    async def workshop(self, name: str | None = None) -> Workshop:
        workshop_id = await self.identity.organisation(WORKSHOP, name or unique("Garage "))
        owner = await self.identity.account(workshop_id, "workshop_owner")
        return Workshop(workshop_id, owner, await self.identity.token(owner))

    async def association(self) -> Association:
        association_id = await self.identity.organisation(ASSOCIATION, unique("Protection "))
        admin = await self.identity.account(association_id, "association_admin")
        member = await self.identity.account(association_id, "member")
        return Association(
            association_id,
            admin,
            await self.identity.token(admin),
            member,
            await self.identity.token(member),
        )

    async def program(self, options: int = 3) -> pb.Program:
        created: pb.CreateProgramResponse = await self.stub.CreateProgram(
            pb.CreateProgramRequest(
                code=unique("P")[:12].upper(),
                name=unique("Programme Atelier "),
                description="Bannière des ateliers indépendants",
                benefits=["Garantie main d'œuvre nationale", "Formations techniques"],
            ),
            metadata=self.ops,
        )
        program = created.program
        for index in range(options):
            await self.stub.AddProgramOption(
                pb.AddProgramOptionRequest(
                    program_id=program.id,
                    code=f"OPT{index}",
                    name=f"Option {index}",
                    benefit=f"Bénéfice {index}",
                ),
                metadata=self.ops,
            )
        listed: pb.ListProgramsResponse = await self.stub.ListPrograms(
            pb.ListProgramsRequest(), metadata=self.ops
        )
        return next(p for p in listed.programs if p.id == program.id)

    async def membership(
        self,
        workshop: Workshop,
        program: pb.Program,
        *,
        renewal_date: str | None = None,
        options: int = 1,
    ) -> pb.WorkshopMembership:
        tag = uuid.uuid4().hex[:8]
        response: pb.CreateWorkshopMembershipResponse = await self.stub.CreateWorkshopMembership(
            pb.CreateWorkshopMembershipRequest(
                workshop_id=workshop.id,
                program_id=program.id,
                renewal_date=renewal_date or days_from_today(200),
                workshop=pb.WorkshopInfo(
                    email=f"atelier.{tag}@example.org", phone="+33 1 23 45 67 89", city="Lyon"
                ),
                wholesaler=pb.Contact(name="Grossiste Rhône", email=f"grossiste.{tag}@example.org"),
                distributor=pb.Contact(name="DDA Centre", email=f"dda.{tag}@example.org"),
                option_ids=[o.id for o in program.options[:options]],
            ),
            metadata=self.ops,
        )
        return response.membership

    async def wait(
        self, check: Any, *, within: float = 30.0, every: float = 0.1, what: str = "condition"
    ) -> Any:
        """Polls `check()` (sync or async) until it returns something truthy."""
        return await wait_until(
            check, what=None if what == "condition" else what, within=within, every=every
        )

    async def mails(
        self, address: str, *, count: int = 1, within: float = 30.0
    ) -> list[ReceivedMail]:
        """The mails `address` received once there are `count` of them: mail goes through a
        DeliverMail workflow, so this waits, on a deadline that stretches with the load."""

        def arrived() -> list[ReceivedMail] | None:
            received = self.smtp.to(address)
            return received if len(received) >= count else None

        mails: list[ReceivedMail] = await wait_until(
            arrived, what=f"{count} mail(s) to {address}", within=within
        )
        return mails


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
    identity_temporal: Client | None = None,
    clock: Clock = system_clock,
    **membership_overrides: Any,
) -> AsyncIterator[World]:
    """Identity (on `identity_temporal`, default `temporal`), membership and a worker (on
    `temporal`), sharing one fresh task queue and mail key. Membership reads `clock` (a
    `PinnedClock` that follows the time-skipping server, in renewal tests)."""
    target = temporal.service_client.config.target_host
    identity_target = (identity_temporal or temporal).service_client.config.target_host
    queue = f"membership-{uuid.uuid4()}"
    identity_url = await pg.migrated_database(Path(IDENTITY_SPEC.migrations_dir), "identity")
    membership_url = await pg.migrated_database(Path(MEMBERSHIP_SPEC.migrations_dir), "membership")
    key = new_sealing_key()
    clients = (WORKER_CLIENT, GATEWAY_CLIENT, MEMBERSHIP_CLIENT, IDENTITY_CLIENT)
    identity_settings = IdentitySettings(
        service_name="identity",
        database_url=identity_url,
        grpc_host="127.0.0.1",
        grpc_port=0,
        shutdown_grace=0,
        log_json=False,
        temporal_address=identity_target,
        temporal_task_queue=f"identity-{queue}",
        mail_sealing_key=new_sealing_key(),
        service_clients=",".join(f"{c}={s}" for c, s in clients),
        bootstrap_admin_username=ADMIN_USERNAME,
        bootstrap_admin_password=ADMIN_PASSWORD,
        bootstrap_admin_totp_secret=ADMIN_TOTP_SECRET,
        bootstrap_admin_email="root.admin@example.org",
        access_token_ttl_seconds=3600,
    )
    async with AsyncExitStack() as stack:
        identity_context, identity_server = await start_service(IDENTITY_SPEC, identity_settings)
        stack.push_async_callback(identity_context.exit_stack.aclose)
        stack.push_async_callback(identity_server.stop)
        identity_addr = f"127.0.0.1:{identity_server.port}"
        settings = MembershipSettings(
            service_name="membership",
            database_url=membership_url,
            grpc_host="127.0.0.1",
            grpc_port=0,
            shutdown_grace=0,
            log_json=False,
            temporal_address=target,
            temporal_task_queue=queue,
            identity_addr=identity_addr,
            service_client_id=MEMBERSHIP_CLIENT[0],
            service_client_secret=MEMBERSHIP_CLIENT[1],
            mail_sealing_key=key,
            signal_poll_interval=0.2,
            **membership_overrides,
        )
        context, server = await start_service(MEMBERSHIP_SPEC, settings, clock=clock)
        stack.push_async_callback(context.exit_stack.aclose)
        stack.push_async_callback(server.stop)
        membership_addr = f"127.0.0.1:{server.port}"
        identity_channel = grpc.aio.insecure_channel(identity_addr)
        membership_channel = grpc.aio.insecure_channel(membership_addr)
        stack.push_async_callback(identity_channel.close)
        stack.push_async_callback(membership_channel.close)
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
        operators = await identity.organisation(OPERATOR, unique("Ops "))
        agent = await identity.account(operators, "support_agent")
        world = World(
            identity=identity,
            identity_addr=identity_addr,
            stub=cast(
                "membership_pb2_grpc.MembershipServiceAsyncStub",
                membership_pb2_grpc.MembershipServiceStub(membership_channel),
            ),
            membership_addr=membership_addr,
            context=context,
            settings=settings,
            worker_settings=WorkerSettings(
                mail_sealing_key=key,
                temporal_task_queue=queue,
                membership_addr=membership_addr,
                identity_addr=identity_addr,
                smtp_port=smtp.port,
            ),
            worker_tokens=link.tokens,
            task_queue=queue,
            temporal=temporal,
            smtp=smtp,
            operator_auth=await identity.token(agent),
        )
        if with_worker:
            await stack.enter_async_context(world.worker())
        yield world


def today() -> date:
    return datetime.now(UTC).date()
