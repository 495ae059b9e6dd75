"""What the fault tests share: the running stack, tokens, stubs, SQL, and the fault record.

Every fault test drives the real processes (as `make dev` runs them), breaks one of them the way
production would (SIGKILL, a restart, Temporal or PostgreSQL stopped), and then checks the final
state exactly in the owning service's database. What it finds missing or duplicated is `lost`,
recorded for the reliability report and asserted to be 0.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
import grpc
import httpx
from guichet.groups.v1 import groups_pb2 as gpb, groups_pb2_grpc
from guichet.identity.v1 import identity_pb2, identity_pb2_grpc
from guichet.partners.v1 import partners_pb2_grpc
from guichet.support.v1 import support_pb2 as spb, support_pb2_grpc
from sqlalchemy.engine import make_url

from services.devstack.demo import DEMO_PASSWORD
from services.devstack.stack import ADMIN_USERNAME, Stack
from services.kit.testing import wait_until

T = TypeVar("T")
Metadata = tuple[tuple[str, str], ...]
ACCOUNTS_PER_CLIENT = 10


async def eventually(
    check: Callable[[], Awaitable[T | None]], *, within: float = 60.0, every: float = 0.25
) -> T:
    """Polls until `check` returns something truthy; fails the test when `within` (stretched
    for the machine's load) passes."""
    return await wait_until(check, within=within, every=every)


def record_fault(
    record_property: Callable[[str, object], None], name: str, *, tried: int, lost: int
) -> None:
    """One entry of the reliability report (tests/reliability_report.py); `lost` must be 0."""
    record_property("reliability", {"kind": "fault", "name": name, "tried": tried, "lost": lost})


@dataclass
class Chaos:
    """The stack under test, with what the fault tests need to drive and inspect it."""

    stack: Stack
    http: httpx.AsyncClient = field(init=False)
    channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.http = httpx.AsyncClient(base_url=self.stack.gateway_url, timeout=30)

    async def close(self) -> None:
        await self.http.aclose()
        for channel in self.channels.values():
            await channel.close()

    def channel(self, name: str) -> grpc.aio.Channel:
        if name not in self.channels:
            self.channels[name] = grpc.aio.insecure_channel(self.stack.grpc_address(name))
        return self.channels[name]

    @property
    def identity(self) -> identity_pb2_grpc.IdentityServiceStub:
        return identity_pb2_grpc.IdentityServiceStub(self.channel("identity"))

    @property
    def groups(self) -> groups_pb2_grpc.GroupsServiceStub:
        return groups_pb2_grpc.GroupsServiceStub(self.channel("groups"))

    @property
    def support(self) -> support_pb2_grpc.SupportServiceStub:
        return support_pb2_grpc.SupportServiceStub(self.channel("support"))

    @property
    def partners(self) -> partners_pb2_grpc.PartnersServiceStub:
        return partners_pb2_grpc.PartnersServiceStub(self.channel("partners"))

    # --- who calls ----------------------------------------------------------------------------

    async def token(self, username: str) -> str:
        """A fresh access token (they live 5 minutes; fault tests outlast that)."""
        password = self.stack.secrets.admin_password if username == ADMIN_USERNAME else None
        login = await self.identity.Login(
            identity_pb2.LoginRequest(username=username, password=password or DEMO_PASSWORD),
            timeout=30,
        )
        return str(login.tokens.access_token)

    async def metadata(self, username: str) -> Metadata:
        return (("authorization", f"Bearer {await self.token(username)}"),)

    async def headers(self, username: str) -> dict[str, str]:
        return {"authorization": f"Bearer {await self.token(username)}"}

    # --- databases ----------------------------------------------------------------------------

    @asynccontextmanager
    async def db(self, service: str) -> AsyncIterator[asyncpg.Connection]:
        url = make_url(self.stack.database_urls[service])
        connection = await asyncpg.connect(
            host=url.host,
            port=url.port,
            user=url.username,
            password=url.password,
            database=url.database,
        )
        try:
            yield connection
        finally:
            await connection.close()

    async def fetchval(self, service: str, sql: str, *args: Any) -> Any:
        async with self.db(service) as connection:
            return await connection.fetchval(sql, *args)

    async def fetch(self, service: str, sql: str, *args: Any) -> Sequence[asyncpg.Record]:
        async with self.db(service) as connection:
            return list(await connection.fetch(sql, *args))

    # --- groups ---------------------------------------------------------------------------------

    async def provider_and_employee(self) -> tuple[str, str]:
        """The demo provider (SP-DUPONT, manager dupont.jean) and its employee martin.claire."""
        headers = await self.headers("dupont.jean")
        me = (await self.http.get("/v1/me", headers=headers)).json()
        provider = next(
            m["organisation_id"]
            for m in me["memberships"]
            if m["role"] == "business_account_manager"
        )
        employees = await self.http.get(f"/v1/providers/{provider}/employees", headers=headers)
        employee = next(
            e["id"] for e in employees.json()["items"] if e["username"] == "martin.claire"
        )
        return provider, employee

    async def record_group(self, provider_id: str, size: int) -> str:
        """`size` program accounts over size/10 fresh clients, related to the provider, in a new
        group (bulk gRPC calls, as bench/delegation.py records them)."""
        ops = await self.metadata(ADMIN_USERNAME)
        bam = await self.metadata("dupont.jean")
        clients = [
            gpb.ClientRecord(
                id=str(uuid.uuid4()),
                name=f"Chaos client {i:06d}",
                program_accounts=[
                    gpb.ProgramAccountRecord(id=str(uuid.uuid4()), number=f"{i:09d}RM{j:04d}")
                    for j in range(ACCOUNTS_PER_CLIENT)
                ],
            )
            for i in range(max(size // ACCOUNTS_PER_CLIENT, 1))
        ]
        step = 50_000 // ACCOUNTS_PER_CLIENT
        for start in range(0, len(clients), step):
            chunk = clients[start : start + step]
            await self.groups.RecordClients(
                gpb.RecordClientsRequest(clients=chunk), metadata=ops, timeout=300
            )
            await self.groups.RecordRelationships(
                gpb.RecordRelationshipsRequest(
                    relationships=[
                        gpb.RelationshipRecord(
                            provider_id=provider_id,
                            client_id=c.id,
                            status=gpb.RELATIONSHIP_STATUS_ACTIVE,
                        )
                        for c in chunk
                    ]
                ),
                metadata=ops,
                timeout=300,
            )
        created = await self.groups.CreateGroup(
            gpb.CreateGroupRequest(
                provider_id=provider_id,
                name=f"Chaos {size} {uuid.uuid4().hex[:8]}",
                client_ids=[c.id for c in clients],
            ),
            metadata=bam,
            timeout=300,
        )
        return str(created.group.id)

    async def assign(self, provider_id: str, group_id: str, employee_id: str) -> str:
        """Assigns the employee to the group as editor through the gateway; the request's id."""
        response = await self.http.post(
            f"/v1/providers/{provider_id}/groups/{group_id}/changes",
            json={"assign": [{"employee_id": employee_id, "role": "editor"}]},
            params={"confirmation": "CONFIRMER"},
            headers=await self.headers("dupont.jean"),
        )
        assert response.status_code == 202, response.text
        [request] = response.json()["process_requests"]
        return str(request["id"])

    async def request_row(self, request_id: str) -> asyncpg.Record:
        [row] = await self.fetch(
            "groups",
            "SELECT status, done, total, failed FROM process_requests WHERE id = $1",
            uuid.UUID(request_id),
        )
        return row

    async def finished(self, request_id: str, *, within: float) -> asyncpg.Record:
        async def check() -> asyncpg.Record | None:
            row = await self.request_row(request_id)
            return row if row["status"] in ("completed", "failed") else None

        return await eventually(check, within=within, every=0.5)

    async def grants(self, employee_id: str, group_id: str) -> tuple[int, int]:
        """(rows, distinct program accounts) granted to the employee through the group."""
        [row] = await self.fetch(
            "groups",
            "SELECT count(*) AS rows, count(DISTINCT program_account_id) AS accounts "
            "FROM access_grants WHERE employee_id = $1 AND group_id = $2",
            uuid.UUID(employee_id),
            uuid.UUID(group_id),
        )
        return int(row["rows"]), int(row["accounts"])

    async def expected_accounts(self, group_id: str) -> int:
        return int(
            await self.fetchval(
                "groups",
                "SELECT count(*) FROM group_members m JOIN program_accounts pa "
                "ON pa.client_id = m.client_id WHERE m.group_id = $1",
                uuid.UUID(group_id),
            )
        )

    async def delegation_outcome(
        self, request_id: str, group_id: str, employee_id: str, size: int, *, within: float
    ) -> tuple[int, dict[str, Any]]:
        """Waits for the request to finish; answers what was lost (grants missing or duplicated,
        or the request not completed exactly) and what was seen, for the assertion message."""
        row = await self.finished(request_id, within=within)
        rows, accounts = await self.grants(employee_id, group_id)
        seen = {**dict(row), "grant_rows": rows, "distinct_accounts": accounts}
        lost = abs(size - accounts) + (rows - accounts)
        if (row["status"], row["done"], row["total"], row["failed"]) != (
            "completed",
            size,
            size,
            0,
        ):
            lost = max(lost, 1)
        return lost, seen


# --- support -------------------------------------------------------------------------------------

PRIORITIES = (
    spb.TICKET_PRIORITY_LOW,
    spb.TICKET_PRIORITY_NORMAL,
    spb.TICKET_PRIORITY_HIGH,
    spb.TICKET_PRIORITY_URGENT,
)


async def organisation(
    chaos: Chaos, code: str, kind: identity_pb2.OrganisationKind.ValueType
) -> str:
    """A demo organisation's id, by its code (ERP-BOIS, DP-NAPOLI…)."""
    admin = await chaos.metadata(ADMIN_USERNAME)
    listed = await chaos.identity.ListOrganisations(
        identity_pb2.ListOrganisationsRequest(kind=kind), metadata=admin
    )
    return str(next(o.id for o in listed.organisations if o.code == code))


async def short_plan(chaos: Chaos, organisation_id: str) -> str:
    """A 24/7 test plan: first response due 1 minute after opening, warning at 50 % (30 s);
    resolution far away. Returns a customer category to open tickets in."""
    admin = await chaos.metadata(ADMIN_USERNAME)
    suffix = uuid.uuid4().hex[:6].upper()
    calendar = await chaos.support.CreateCalendar(
        spb.CreateCalendarRequest(
            name=f"Chaos 24/7 {suffix}", time_zone="UTC", weekly_hours=["00:00-24:00"] * 7
        ),
        metadata=admin,
    )
    plan = await chaos.support.CreatePlan(
        spb.CreatePlanRequest(
            code=f"CHAOS{suffix}",
            name=f"Chaos {suffix}",
            calendar_id=calendar.calendar.id,
            warning_percent=50,
            targets=[
                spb.SlaTarget(
                    priority=priority,
                    first_response_minutes=1,
                    next_response_minutes=1,
                    resolution_minutes=600,
                )
                for priority in PRIORITIES
            ],
        ),
        metadata=admin,
    )
    await chaos.support.SetContract(
        spb.SetContractRequest(organisation_id=organisation_id, plan_id=plan.plan.id),
        metadata=admin,
    )
    category = await chaos.support.CreateCategory(
        spb.CreateCategoryRequest(
            code=f"CHAOS{suffix}", name=f"Chaos {suffix}", audience=spb.CATEGORY_AUDIENCE_CUSTOMER
        ),
        metadata=admin,
    )
    return str(category.category.id)


async def workflow_started(chaos: Chaos, service: str, workflow_id: str) -> None:
    async def check() -> bool:
        started = await chaos.fetchval(
            service, "SELECT started_at FROM outbox WHERE workflow_id = $1", workflow_id
        )
        return started is not None

    await eventually(check, within=60)
