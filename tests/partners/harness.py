"""What partners tests share: identity, support and partners running for real, and factories.

Real PostgreSQL, each service on a real gRPC port, outbox relays to a real Temporal server (the
dev server, or the time-skipping one), a worker built by `build_worker` with the worker's own
service token. Nothing is mocked. Factories make organisations and accounts straight in
identity's database (not the rule under test) and everything else through the public contracts.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar, cast

import grpc
from guichet.identity.v1 import identity_pb2, identity_pb2_grpc
from guichet.partners.v1 import partners_pb2 as pb, partners_pb2_grpc
from guichet.support.v1 import support_pb2, support_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from services.devstack.signin import sign_in
from services.identity.passwords import Passwords
from services.identity.servicer import SPEC as IDENTITY_SPEC
from services.identity.settings import IdentitySettings
from services.kit.clock import Clock, system_clock
from services.kit.identity_client import connect_identity
from services.kit.mail import new_sealing_key
from services.kit.runtime import ServiceContext, start_service
from services.kit.settings import CommonSettings
from services.kit.smtpsink import SmtpSink
from services.kit.testing import DatabaseServer, wait_until
from services.partners.servicer import SPEC, build
from services.partners.settings import PartnersSettings
from services.support.servicer import SPEC as SUPPORT_SPEC
from services.support.settings import SupportSettings
from tests.identity.harness import DELIVERY_PARTNER, OPERATOR, Account, Identity, bearer, unique
from workflows.contracts import partners as contract
from workflows.settings import WorkerSettings
from workflows.worker import build_worker

ADMIN_USERNAME = "Partners.Root"
ADMIN_PASSWORD = "bootstrap-secret-for-partners-tests"
# ops_admin needs a second factor: the bootstrap admin\'s TOTP (160 bits of base32).
ADMIN_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
CLIENTS = ("gateway", "worker", "platform", "partners", "support")
SECRETS = {name: f"{name}-secret-0123456789abcdefgh" for name in CLIENTS}
Metadata = tuple[tuple[str, str], ...]
T = TypeVar("T")

# A minimal valid proof of each kind.
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
VALID_IBAN = "FR7630006000011234567890189"
OTHER_IBAN = "DE89370400440532013000"


class TestClock:
    """The service's clock: real time, unless a test moves it (deadlines, local days)."""

    __test__ = False

    def __init__(self) -> None:
        self.offset = timedelta(0)
        self.pinned: datetime | None = None

    def __call__(self) -> datetime:
        return self.pinned or datetime.now(UTC) + self.offset


async def eventually(check: Callable[[], Awaitable[T | None]], *, within: float = 20.0) -> T:
    """Polls until `check` returns something truthy (relays and workers are asynchronous)."""
    return await wait_until(check, within=within, every=0.1)


async def fails(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    """Awaits a call that must fail and returns the error."""
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error
    raise AssertionError("the call succeeded")


@dataclass(frozen=True)
class StoreFixture:
    id: str
    name: str
    manager: Account
    token: Metadata
    products: list[pb.Product]


@dataclass
class Partners:
    """The running services and what tests use to drive them."""

    stub: partners_pb2_grpc.PartnersServiceAsyncStub
    support: support_pb2_grpc.SupportServiceAsyncStub | None
    identity: Identity
    settings: PartnersSettings
    sessions: async_sessionmaker[AsyncSession]
    context: ServiceContext
    port: int
    identity_port: int
    support_port: int | None
    clock: TestClock
    admin: Metadata
    platform: Metadata
    worker: Metadata
    support_plan: str = ""

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def operator(self, role: str = "support_agent") -> tuple[Account, Metadata]:
        org = await self.identity.organisation(OPERATOR)
        account = await self.identity.account(org, role)
        return account, await self.identity.token(account)

    async def store(self, *, products: int = 3, register: bool = True) -> StoreFixture:
        """A delivery_partner organisation with a partner manager, registered here (menu made
        by an operator), under a support contract when support runs."""
        name = unique("Pizzeria ")
        org = await self.identity.organisation(DELIVERY_PARTNER, name)
        manager = await self.identity.account(org, "partner_manager")
        made: list[pb.Product] = []
        if register:
            await self.stub.RegisterStore(
                pb.RegisterStoreRequest(
                    store_id=org, operations_email=f"ops.{org[:8]}@example.org", phone="+33 1 23"
                ),
                metadata=self.admin,
            )
            for index in range(products):
                response = await self.stub.CreateProduct(
                    pb.CreateProductRequest(
                        store_id=org,
                        name=f"Pizza {index + 1}",
                        description="Tomate, mozzarella",
                        price_cents=1000 + 100 * index,
                    ),
                    metadata=self.admin,
                )
                made.append(response.product)
            if self.support is not None and self.support_plan:
                await self.support.SetContract(
                    support_pb2.SetContractRequest(organisation_id=org, plan_id=self.support_plan),
                    metadata=self.admin,
                )
        return StoreFixture(org, name, manager, await self.identity.token(manager), made)

    async def order(
        self,
        store: StoreFixture,
        *,
        items: list[tuple[int, int]] | None = None,
        paid: bool = True,
        courier: bool = True,
    ) -> pb.OrderDetail:
        """An accepted order from the platform: `items` are (product index, quantity)."""
        wanted = items or [(0, 2), (1, 1)]
        response = await self.stub.SubmitOrder(
            pb.SubmitOrderRequest(
                store_id=store.id,
                code=unique("C").upper(),
                items=[
                    pb.SubmittedItem(product_id=store.products[i].id, quantity=q) for i, q in wanted
                ],
                customer_name="Alice Martin",
                customer_phone="+33 6 11 22 33 44",
                courier_name="Karim" if courier else "",
                courier_phone="+33 6 55 66 77 88" if courier else "",
                paid=paid,
            ),
            metadata=self.platform,
        )
        detail: pb.OrderDetail = response.order
        return detail

    async def detail(self, store: StoreFixture, order_id: str) -> pb.OrderDetail:
        response = await self.stub.GetOrder(
            pb.GetOrderRequest(store_id=store.id, order_id=order_id), metadata=store.token
        )
        detail: pb.OrderDetail = response.order
        return detail

    async def set_up_support(self) -> None:
        """Support's side of partners' messages: a plan and the four partner categories."""
        if self.support is None:
            return
        calendar = await self.support.CreateCalendar(
            support_pb2.CreateCalendarRequest(
                name=unique("Partners "),
                time_zone="Europe/Paris",
                weekly_hours=["09:00-18:00"] * 7,
                country="FR",
            ),
            metadata=self.admin,
        )
        targets = [
            support_pb2.SlaTarget(
                priority=priority,
                first_response_minutes=60,
                next_response_minutes=120,
                resolution_minutes=600,
            )
            for priority in (
                support_pb2.TICKET_PRIORITY_LOW,
                support_pb2.TICKET_PRIORITY_NORMAL,
                support_pb2.TICKET_PRIORITY_HIGH,
                support_pb2.TICKET_PRIORITY_URGENT,
            )
        ]
        plan = await self.support.CreatePlan(
            support_pb2.CreatePlanRequest(
                code=unique("P").upper(),
                name="Partners",
                calendar_id=calendar.calendar.id,
                targets=targets,
            ),
            metadata=self.admin,
        )
        self.support_plan = plan.plan.id
        existing = await self.support.ListCategories(
            support_pb2.ListCategoriesRequest(audience=support_pb2.CATEGORY_AUDIENCE_PARTNER),
            metadata=self.admin,
        )
        known = {c.code for c in existing.categories}
        for position, code in enumerate(contract.SUPPORT_CATEGORY_CODES.values()):
            if code in known:
                continue
            await self.support.CreateCategory(
                support_pb2.CreateCategoryRequest(
                    code=code,
                    name=code.title(),
                    audience=support_pb2.CATEGORY_AUDIENCE_PARTNER,
                    position=position,
                    entries=[support_pb2.FaqEntryInput(question="Q?", answer="A.")],
                ),
                metadata=self.admin,
            )


async def service_token(stub: identity_pb2_grpc.IdentityServiceAsyncStub, client: str) -> Metadata:
    response = await stub.IssueServiceToken(
        identity_pb2.IssueServiceTokenRequest(client_id=client, client_secret=SECRETS[client])
    )
    return bearer(response.access_token)


@asynccontextmanager
async def identity_service(
    pg: DatabaseServer, smtp: SmtpSink, temporal_address: str
) -> AsyncIterator[tuple[Identity, int]]:
    """Identity on port 0, with cheap password hashing (not what these tests are about)."""
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
        argon2_memory_cost_kib=64,
        argon2_time_cost=1,
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
    pg: DatabaseServer,
    *,
    identity_port: int,
    temporal_address: str,
    queue: str,
    clock: Clock = system_clock,
) -> AsyncIterator[tuple[support_pb2_grpc.SupportServiceAsyncStub, int]]:
    url = await pg.migrated_database(SUPPORT_SPEC.migrations_dir, "support")
    settings = SupportSettings(
        service_name="support",
        database_url=url,
        grpc_host="127.0.0.1",
        grpc_port=0,
        shutdown_grace=0,
        log_json=False,
        temporal_address=temporal_address,
        temporal_task_queue=queue,
        identity_addr=f"127.0.0.1:{identity_port}",
        service_client_id="support",
        service_client_secret=SECRETS["support"],
        mail_sealing_key=new_sealing_key(),
    )
    async with AsyncExitStack() as stack:
        context, server = await start_service(SUPPORT_SPEC, settings, clock=clock)
        stack.push_async_callback(context.exit_stack.aclose)
        stack.push_async_callback(server.stop)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        stack.push_async_callback(channel.close)
        stub = cast(
            "support_pb2_grpc.SupportServiceAsyncStub",
            support_pb2_grpc.SupportServiceStub(channel),
        )
        yield stub, server.port


@asynccontextmanager
async def partners_service(
    pg: DatabaseServer,
    *,
    identity: Identity,
    identity_port: int,
    temporal_address: str,
    queue: str,
    support: support_pb2_grpc.SupportServiceAsyncStub | None = None,
    support_port: int | None = None,
    clock: TestClock | None = None,
    **overrides: Any,
) -> AsyncIterator[Partners]:
    """Partners on port 0 with its own database and its outbox relay on `temporal_address`."""
    clock = clock or TestClock()
    url = await pg.migrated_database(SPEC.migrations_dir, "partners")
    values: dict[str, Any] = {
        "service_name": "partners",
        "database_url": url,
        "grpc_host": "127.0.0.1",
        "grpc_port": 0,
        "shutdown_grace": 0,
        "log_json": False,
        "temporal_address": temporal_address,
        "temporal_task_queue": queue,
        "identity_addr": f"127.0.0.1:{identity_port}",
        # No support: a closed port, so that tickets stay pending (never someone else's server).
        "support_addr": f"127.0.0.1:{support_port or 9}",
        "service_client_id": "partners",
        "service_client_secret": SECRETS["partners"],
    }
    settings = PartnersSettings(**(values | overrides))
    spec = replace(SPEC, build=partial(build, clock=clock))
    async with AsyncExitStack() as stack:
        context, server = await start_service(spec, settings)
        stack.push_async_callback(context.exit_stack.aclose)
        stack.push_async_callback(server.stop)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        stack.push_async_callback(channel.close)
        stub = cast(
            "partners_pb2_grpc.PartnersServiceAsyncStub",
            partners_pb2_grpc.PartnersServiceStub(channel),
        )
        yield Partners(
            stub=stub,
            support=support,
            identity=identity,
            settings=settings,
            sessions=context.sessions,
            context=context,
            port=server.port,
            identity_port=identity_port,
            support_port=support_port,
            clock=clock,
            admin=identity.admin,  # signed in with its TOTP
            platform=await service_token(identity.stub, "platform"),
            worker=await service_token(identity.stub, "worker"),
        )


@asynccontextmanager
async def worker(
    client: Client, partners: Partners, smtp: SmtpSink, queue: str
) -> AsyncIterator[Worker]:
    """The real worker (every workflow), as the `worker` service client, on `queue`."""
    settings = WorkerSettings(
        smtp_port=smtp.port,
        mail_sealing_key=new_sealing_key(),
        temporal_task_queue=queue,
        identity_addr=f"127.0.0.1:{partners.identity_port}",
        partners_addr=partners.address,
        support_addr=f"127.0.0.1:{partners.support_port or 9}",
        service_client_id="worker",
        service_client_secret=SECRETS["worker"],
    )
    link = connect_identity(cast(CommonSettings, settings))
    try:
        running = build_worker(client, settings, task_queue=queue, tokens=link.tokens)
        async with running:
            yield running
    finally:
        await link.close()
