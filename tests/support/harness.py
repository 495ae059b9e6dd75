"""What support tests share: a running identity and support, stubs, a clock, factories.

Real PostgreSQL, identity and support on real gRPC ports, support's outbox and signal relays to a
real Temporal server, the worker (SLA workflow, its activity calling support with the worker's own
service token, mail delivery) on a private task queue. Factories make organisations and accounts
straight in identity's database (not the rule under test) and log in over gRPC.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar, cast

import grpc
from guichet.identity.v1 import identity_pb2, identity_pb2_grpc
from guichet.support.v1 import support_pb2 as pb, support_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from services.devstack.signin import sign_in
from services.identity.passwords import Passwords
from services.identity.servicer import SPEC as IDENTITY_SPEC
from services.identity.settings import IdentitySettings
from services.kit.identity_client import connect_identity
from services.kit.mail import new_sealing_key
from services.kit.runtime import ServiceContext, start_service
from services.kit.settings import CommonSettings
from services.kit.smtpsink import SmtpSink
from services.kit.testing import DatabaseServer, wait_until
from services.support.servicer import SPEC, build
from services.support.settings import SupportSettings
from tests.identity.harness import (
    DELIVERY_PARTNER,
    ERP_CUSTOMER,
    OPERATOR,
    PASSWORD,
    Account,
    Identity,
    Kind,
    bearer,
    unique,
)
from workflows.settings import WorkerSettings
from workflows.worker import build_worker

ADMIN_USERNAME = "Support.Root"
ADMIN_PASSWORD = "bootstrap-secret-for-support-tests"
# ops_admin needs a second factor: the bootstrap admin\'s TOTP (160 bits of base32).
ADMIN_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
SECRETS = {name: f"{name}-secret-0123456789abcdefgh" for name in ("gateway", "worker", "support")}
TEAM_EMAIL = "sla-team@example.org"
OFFICE = "09:00-12:00,13:00-18:00"
Metadata = tuple[tuple[str, str], ...]
T = TypeVar("T")


class TestClock:
    """The service's clock: real time, unless a test pins it (to the time-skipping server's)."""

    __test__ = False

    def __init__(self) -> None:
        self.pinned: datetime | None = None

    def __call__(self) -> datetime:
        return self.pinned or datetime.now(UTC)


async def eventually(check: Callable[[], Awaitable[T | None]], *, within: float = 20.0) -> T:
    """Polls until `check` returns something truthy (the relays and the worker are async)."""
    return await wait_until(check, within=within, every=0.1)


@dataclass
class Support:
    """A running support service and what tests use to drive it."""

    stub: support_pb2_grpc.SupportServiceAsyncStub
    identity: Identity
    settings: SupportSettings
    sessions: async_sessionmaker[AsyncSession]
    context: ServiceContext
    port: int
    clock: TestClock
    admin: Metadata
    tokens: dict[str, Metadata] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def service(self, client_id: str = "worker") -> Metadata:
        """A service token, as the worker or another service would hold."""
        issued = await self.identity.stub.IssueServiceToken(
            identity_pb2.IssueServiceTokenRequest(
                client_id=client_id, client_secret=SECRETS[client_id]
            )
        )
        return bearer(issued.access_token)

    async def login(self, account: Account) -> Metadata:
        return await self.identity.token(account)

    async def agent(self) -> tuple[Account, Metadata]:
        org = await self.identity.organisation(OPERATOR)
        account = await self.identity.account(org, "support_agent")
        return account, await self.login(account)

    async def calendar(self, **overrides: Any) -> pb.Calendar:
        request = pb.CreateCalendarRequest(
            name=unique("Calendar "),
            time_zone="Europe/Paris",
            weekly_hours=[OFFICE] * 5 + ["", ""],
            country="FR",
        )
        for key, value in overrides.items():
            if isinstance(value, list):
                del getattr(request, key)[:]
                getattr(request, key).extend(value)
            else:
                setattr(request, key, value)
        response: pb.CreateCalendarResponse = await self.stub.CreateCalendar(
            request, metadata=self.admin
        )
        return response.calendar

    async def plan(
        self,
        calendar_id: str | None = None,
        *,
        minutes: tuple[int, int, int] = (240, 480, 2400),
        warning_percent: int = 0,
    ) -> pb.Plan:
        """A plan whose normal-priority targets are `minutes` (first, next, resolution)."""
        if calendar_id is None:
            calendar_id = (await self.calendar()).id
        # low: twice the minutes, normal: the minutes, high: half, urgent: a quarter.
        scales = (
            (pb.TICKET_PRIORITY_LOW, 2.0),
            (pb.TICKET_PRIORITY_NORMAL, 1.0),
            (pb.TICKET_PRIORITY_HIGH, 0.5),
            (pb.TICKET_PRIORITY_URGENT, 0.25),
        )
        targets = [
            pb.SlaTarget(
                priority=priority,
                first_response_minutes=max(int(minutes[0] * scale), 1),
                next_response_minutes=max(int(minutes[1] * scale), 1),
                resolution_minutes=max(int(minutes[2] * scale), 1),
            )
            for priority, scale in scales
        ]
        response: pb.CreatePlanResponse = await self.stub.CreatePlan(
            pb.CreatePlanRequest(
                code=unique("P").upper(),
                name="Plan",
                calendar_id=calendar_id,
                warning_percent=warning_percent,
                targets=targets,
            ),
            metadata=self.admin,
        )
        return response.plan

    async def customer(
        self,
        plan_id: str | None = None,
        *,
        kind: Kind = ERP_CUSTOMER,
        operations_email: str = "",
    ) -> tuple[str, Account, Metadata]:
        """A customer organisation under contract, with one user (customer_user or
        partner_manager) and their token."""
        org = await self.identity.organisation(kind)
        role = "customer_user" if kind == ERP_CUSTOMER else "partner_manager"
        account = await self.identity.account(org, role)
        if plan_id is None:
            plan_id = (await self.plan()).id
        await self.stub.SetContract(
            pb.SetContractRequest(
                organisation_id=org, plan_id=plan_id, operations_email=operations_email
            ),
            metadata=self.admin,
        )
        return org, account, await self.login(account)

    async def category(
        self, audience: pb.CategoryAudience.ValueType = pb.CATEGORY_AUDIENCE_CUSTOMER
    ) -> pb.Category:
        response: pb.CreateCategoryResponse = await self.stub.CreateCategory(
            pb.CreateCategoryRequest(
                code=unique("C").upper(),
                name="Facturation",
                audience=audience,
                entries=[
                    pb.FaqEntryInput(
                        question="La facture ne s'imprime pas",
                        answer="Vérifiez l'imprimante par défaut.",
                    )
                ],
            ),
            metadata=self.admin,
        )
        return response.category

    async def open(self, token: Metadata, category_id: str, **fields: Any) -> pb.Ticket:
        request = pb.OpenTicketRequest(
            category_id=category_id,
            title="E-mail du contact non enregistré",
            description="Client 100 créé via ATW0001, l'e-mail du contact Bruno manque.",
            screen_code="ATW0001",
            example_record="client 100",
        )
        for key, value in fields.items():
            setattr(request, key, value)
        response: pb.OpenTicketResponse = await self.stub.OpenTicket(request, metadata=token)
        return response.ticket

    async def history(self, ticket_id: str, token: Metadata | None = None) -> pb.GetTicketResponse:
        response: pb.GetTicketResponse = await self.stub.GetTicket(
            pb.GetTicketRequest(ticket_id=ticket_id), metadata=token or self.admin
        )
        return response


@asynccontextmanager
async def support_on(
    pg: DatabaseServer, client: Client, smtp: SmtpSink, database: str
) -> AsyncIterator[Support]:
    """Identity and support (on a fresh database named `database`) with their worker, all on
    `client`'s Temporal: the real dev server for the tests that need real time."""
    url = await pg.migrated_database(SPEC.migrations_dir, database)
    target = client.service_client.config.target_host
    async with (
        identity_service(pg, smtp, target) as (identity, port),
        support_service(
            identity=identity, identity_port=port, database_url=url, client=client, smtp=smtp
        ) as (support, _worker),
    ):
        yield support


@asynccontextmanager
async def identity_service(
    pg: DatabaseServer, smtp: SmtpSink, temporal_address: str
) -> AsyncIterator[tuple[Identity, int]]:
    url = await pg.migrated_database(IDENTITY_SPEC.migrations_dir, "identity")
    settings = IdentitySettings(
        service_name="identity",
        database_url=url,
        grpc_host="127.0.0.1",
        grpc_port=0,
        shutdown_grace=0,
        log_json=False,
        temporal_address=temporal_address,
        temporal_task_queue=f"identity-{uuid.uuid4()}",
        mail_sealing_key=new_sealing_key(),
        service_clients=",".join(f"{k}={v}" for k, v in SECRETS.items()),
        bootstrap_admin_username=ADMIN_USERNAME,
        bootstrap_admin_password=ADMIN_PASSWORD,
        bootstrap_admin_totp_secret=ADMIN_TOTP_SECRET,
        link_resend_cooldown_seconds=0,
    )
    async with AsyncExitStack() as stack:
        context, server = await start_service(IDENTITY_SPEC, settings)
        stack.push_async_callback(context.exit_stack.aclose)
        stack.push_async_callback(server.stop)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        stack.push_async_callback(channel.close)
        stub = cast(
            "identity_pb2_grpc.IdentityServiceAsyncStub",
            identity_pb2_grpc.IdentityServiceStub(channel),
        )
        admin = await sign_in(
            stub, ADMIN_USERNAME, ADMIN_PASSWORD, totp_secret=ADMIN_TOTP_SECRET, scope=url
        )
        yield (
            Identity(
                settings=settings,
                stub=stub,
                sessions=context.sessions,
                passwords=Passwords.from_settings(settings),
                smtp=smtp,
                admin_token=admin.access_token,
                service_token="",
            ),
            server.port,
        )


@asynccontextmanager
async def support_service(
    *,
    identity: Identity,
    identity_port: int,
    database_url: str,
    client: Client,
    smtp: SmtpSink,
    clock: TestClock | None = None,
    **overrides: Any,
) -> AsyncIterator[tuple[Support, Worker]]:
    """Support on port 0 with its relays on `client`'s server, and a worker on a fresh queue."""
    clock = clock or TestClock()
    queue = f"support-{uuid.uuid4()}"
    key = new_sealing_key()
    target = client.service_client.config.target_host
    values: dict[str, Any] = {
        "service_name": "support",
        "database_url": database_url,
        "grpc_host": "127.0.0.1",
        "grpc_port": 0,
        "shutdown_grace": 0,
        "log_json": False,
        "temporal_address": target,
        "temporal_task_queue": queue,
        "identity_addr": f"127.0.0.1:{identity_port}",
        "service_client_id": "support",
        "service_client_secret": SECRETS["support"],
        "mail_sealing_key": key,
        "support_team_email": TEAM_EMAIL,
        "signal_poll_interval": 0.2,
    }
    settings = SupportSettings(**(values | overrides))
    spec = replace(SPEC, build=partial(build, clock=clock))
    async with AsyncExitStack() as stack:
        context, server = await start_service(spec, settings)
        stack.push_async_callback(context.exit_stack.aclose)
        stack.push_async_callback(server.stop)
        worker_settings = WorkerSettings(
            smtp_port=smtp.port,
            mail_sealing_key=key,
            temporal_task_queue=queue,
            identity_addr=f"127.0.0.1:{identity_port}",
            support_addr=f"127.0.0.1:{server.port}",
            service_client_id="worker",
            service_client_secret=SECRETS["worker"],
        )
        link = connect_identity(cast(CommonSettings, worker_settings))
        stack.push_async_callback(link.close)
        worker = build_worker(client, worker_settings, task_queue=queue, tokens=link.tokens)
        await stack.enter_async_context(worker)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        stack.push_async_callback(channel.close)
        stub = cast(
            "support_pb2_grpc.SupportServiceAsyncStub",
            support_pb2_grpc.SupportServiceStub(channel),
        )
        yield (
            Support(
                stub=stub,
                identity=identity,
                settings=settings,
                sessions=context.sessions,
                context=context,
                port=server.port,
                clock=clock,
                admin=identity.admin,  # signed in with its TOTP
            ),
            worker,
        )


__all__ = ["DELIVERY_PARTNER", "ERP_CUSTOMER", "PASSWORD", "bearer"]
