"""The running stack and two tenants of every kind, shared by tests/security and tests/races.

The stack is the one `make dev` runs (`services.devstack.stack.Stack`, every component its own
OS process, as tests/e2e starts it); it is started once per session, however many of our
conftests ask for it, so the security matrix, the races and the bad-input tests share it.
Everything the tests need is built here through the public contracts: the gateway's REST API,
and gRPC for the few internal calls that have no REST route (recording clients and
relationships in groups, the platform's order intake in partners), exactly as the demo loader
does.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from guichet.groups.v1 import groups_pb2, groups_pb2_grpc
from guichet.identity.v1 import identity_pb2, identity_pb2_grpc
from guichet.partners.v1 import partners_pb2, partners_pb2_grpc
from temporalio.testing import WorkflowEnvironment

from services.devstack.components import COMPONENTS, DEFAULT_PORTS
from services.devstack.stack import ADMIN_USERNAME, Stack
from services.kit.ports import free_port
from services.kit.testing import DatabaseServer, wait_until

PASSWORD = "Securite-Guichet-2026!"
_LINK = re.compile(r"token=([A-Za-z0-9_\-\.~%]+)")

# --- the stack, started once however many conftests ask ------------------------------------------

_shared: dict[str, Any] = {"stack": None, "users": 0, "lock": None, "failed": None}


@pytest.fixture(scope="session")
async def stack(
    pg: DatabaseServer, temporal_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """Every process of Guichet on free ports (as tests/e2e), without the demo data.

    Reference-counted so that tests/security and tests/races, which both import this fixture
    into their conftest, share one stack instead of starting two.
    """
    if _shared["lock"] is None:
        _shared["lock"] = asyncio.Lock()
    async with _shared["lock"]:
        if _shared["failed"] is not None:
            # A second start would create new secrets over the first one's databases, and fail
            # later and misleadingly (the bootstrap admin's password no longer matches).
            raise RuntimeError("the security stack failed to start") from _shared["failed"]
        if _shared["stack"] is None:
            state: Path = tmp_path_factory.mktemp("security-stack")
            ports = {name: free_port() for name in DEFAULT_PORTS}
            ports |= {f"{component.name}_metrics": free_port() for component in COMPONENTS}
            running = Stack(
                state,
                ports,
                database_admin_url=pg.admin_url,
                temporal_address=temporal_env.client.service_client.config.target_host,
                echo=False,
                # tests/e2e's stack shares this PostgreSQL and Temporal: own databases and queue.
                instance="security",
                # Lockout and the per-address brake are asserted on purpose in test_auth; the
                # matrix and the races send far more than a client would from one address.
                extra_env={"AUTH_RATE_LIMIT_PER_MINUTE": "0"},
            )
            try:
                await running.start()
            except BaseException as failure:
                _shared["failed"] = failure
                await running.stop()
                raise
            _shared["stack"] = running
        _shared["users"] += 1
    try:
        yield _shared["stack"]
    finally:
        _shared["users"] -= 1
        if _shared["users"] == 0 and _shared["stack"] is not None:
            await _shared["stack"].stop()
            _shared["stack"] = None
            _shared["world"] = None


@pytest.fixture(scope="session")
async def world(stack: Stack) -> World:
    """Tenants a and b of every kind, built once per session through the public APIs (shared
    by tests/security and tests/races, like the stack)."""
    if _shared.get("world_failed") is not None:
        # Building it again would meet the first attempt's half-made tenants.
        raise RuntimeError("the security world failed to build") from _shared["world_failed"]
    if _shared.get("world") is None:
        try:
            _shared["world"] = await build_world(
                stack.gateway_url,
                sink_link(stack),
                stack.secrets.admin_password,
                stack.grpc_address,
                stack.secrets.client_secrets["worker"],
            )
        except BaseException as failure:
            _shared["world_failed"] = failure
            raise
    built: World = _shared["world"]
    return built


TOKEN_REFRESH_AFTER = 120.0


@pytest.fixture(autouse=True)
async def fresh_tokens(world: World) -> None:
    """Renews the world's access tokens (5-minute lifetime) before a test that might outlive
    them."""
    await renew_tokens(world, older_than=TOKEN_REFRESH_AFTER)


async def renew_tokens(world: World, *, older_than: float) -> None:
    """Refreshes, as a client would, every actor whose access token is older than that."""
    actors = [*world.operators.values(), *world.a.actors.values(), *world.b.actors.values()]
    stale = [a for a in actors if time.monotonic() - a.issued > older_than]
    if not stale:
        return
    async with httpx.AsyncClient(base_url=world.gateway_url, timeout=30) as http:

        async def renew(actor: Actor) -> None:
            started = time.monotonic()
            tokens = await Api(http).call(
                "POST", "/v1/auth/refresh", None, json={"refresh_token": actor.refresh_token}
            )
            actor.token, actor.refresh_token = tokens["access_token"], tokens["refresh_token"]
            actor.issued = started

        await asyncio.gather(*(renew(a) for a in stale))


@pytest.fixture(scope="session")
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the running gateway."""
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30, limits=limits) as client:
        yield client


# --- actors and the world -----------------------------------------------------------------------


@dataclass
class Actor:
    """A signed-in user: who they are and the header that proves it."""

    key: str
    username: str
    user_id: str
    organisation_id: str | None
    token: str
    refresh_token: str = ""
    # When the access token was issued (monotonic clock): tokens live 5 minutes.
    issued: float = field(default_factory=time.monotonic)

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}


@dataclass
class Tenant:
    """One organisation of each kind, its users, and the ids of what they own."""

    name: str
    orgs: dict[str, str] = field(default_factory=dict)
    actors: dict[str, Actor] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)


@dataclass
class World:
    a: Tenant
    b: Tenant
    operators: dict[str, Actor]
    shared: dict[str, str]
    # gRPC addresses by service name, and the platform's (worker's) service-token metadata.
    gateway_url: str = ""
    addresses: dict[str, str] = field(default_factory=dict)
    platform: tuple[tuple[str, str], ...] = ()

    def tenant(self, name: str) -> Tenant:
        return self.a if name == "a" else self.b


MailLink = Callable[[str], Awaitable[str]]


def sink_link(stack: Stack) -> MailLink:
    """Reads the token of the latest link mailed to an address, from the stack's SMTP sink."""

    async def link(address: str) -> str:
        [*_, mail] = await stack.smtp.wait_for(address, within=60)
        match = _LINK.search(mail.body)
        if match is None:
            raise RuntimeError(f"no link in the mail to {address}")
        return match.group(1)

    return link


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


class Api:
    """A thin client of the gateway that fails loudly when set-up calls do not succeed."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def call(
        self, method: str, path: str, actor: Actor | None, *, expect: int | None = None, **kw: Any
    ) -> Any:
        headers = {**(actor.headers if actor else {}), **kw.pop("headers", {})}
        response = await self.http.request(method, path, headers=headers, **kw)
        if expect is not None and response.status_code != expect:
            raise AssertionError(f"{method} {path}: {response.status_code} {response.text}")
        if expect is None and response.status_code >= 300:
            raise AssertionError(f"{method} {path}: {response.status_code} {response.text}")
        if response.status_code == 204 or not response.content:
            return None
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.content

    async def login(self, key: str, username: str, password: str) -> Actor:
        tokens = await self.call(
            "POST", "/v1/auth/token", None, json={"username": username, "password": password}
        )
        actor = Actor(key, username, "", None, tokens["access_token"], tokens["refresh_token"])
        me = await self.call("GET", "/v1/me", actor)
        actor.user_id = me["id"]
        actor.organisation_id = me["organisation_id"]
        return actor

    async def user(
        self, admin: Actor, link: MailLink, key: str, organisation_id: str, roles: list[str]
    ) -> Actor:
        """An account made by an admin; its password is set from the mailed link, as a user
        would, then it signs in."""
        username = unique(f"{key.replace('_', '')[:10]}.")
        email = f"{username}@security.guichet.example.com"
        await self.call(
            "POST",
            f"/v1/organisations/{organisation_id}/accounts",
            admin,
            json={
                "username": username,
                "email": email,
                "first_name": key.title(),
                "last_name": "Securite",
                "roles": roles,
            },
        )
        token = await link(email)
        await self.call(
            "POST", "/v1/password/reset", None, json={"token": token, "new_password": PASSWORD}
        )
        return await self.login(key, username, PASSWORD)


ORG_KINDS = {
    "provider": "service_provider",
    "association": "association",
    "store": "delivery_partner",
    "workshop": "workshop",
    "erp": "erp_customer",
    # Not yet enrolled / registered: the operators' enrolment and registration succeed on them.
    "new_workshop": "workshop",
    "new_store": "delivery_partner",
    # A second store, whose bank-detail change the operator rejects (the first one's is approved).
    "store2": "delivery_partner",
}

# The tenant's users: key → (organisation key, roles).
TENANT_USERS: dict[str, tuple[str, list[str]]] = {
    "business_account_manager": ("provider", ["business_account_manager"]),
    "program_account_manager": ("provider", ["program_account_manager"]),
    "editor": ("provider", ["editor"]),
    "read_only": ("provider", ["read_only"]),
    "association_admin": ("association", ["association_admin"]),
    "member": ("association", ["member"]),
    "partner_manager": ("store", ["partner_manager"]),
    "workshop_owner": ("workshop", ["workshop_owner"]),
    "customer_user": ("erp", ["customer_user"]),
    "partner_manager2": ("store2", ["partner_manager"]),
}


async def build_world(
    gateway_url: str,
    link: MailLink,
    admin_password: str,
    grpc_addr: Callable[[str], str],
    worker_secret: str,
) -> World:
    """Two tenants (a, b) of every kind, with their users and data, all through the APIs."""
    async with httpx.AsyncClient(base_url=gateway_url, timeout=60) as http:
        api = Api(http)
        ops = await api.login("ops_admin", ADMIN_USERNAME, admin_password)
        operator_org = ops.organisation_id
        assert operator_org is not None
        shared = await _shared_setup(api, ops)
        shared["ops_password"] = admin_password  # the bootstrap admin's, to sign in again
        agent = await api.user(ops, link, "support_agent", operator_org, ["support_agent"])
        operators = {"ops_admin": ops, "support_agent": agent}
        a, b = await asyncio.gather(
            _tenant(api, ops, link, "a", shared), _tenant(api, ops, link, "b", shared)
        )
        async with grpc.aio.insecure_channel(grpc_addr("identity")) as channel:
            service = await identity_pb2_grpc.IdentityServiceStub(channel).IssueServiceToken(
                identity_pb2.IssueServiceTokenRequest(
                    client_id="worker", client_secret=worker_secret
                )
            )
        platform = (("authorization", f"Bearer {service.access_token}"),)
        for tenant in (a, b):
            await _groups_data(api, ops, tenant, grpc_addr("groups"))
            await _partners_data(api, ops, tenant, grpc_addr("partners"), platform)
        await asyncio.gather(*(_support_data(api, ops, t, shared) for t in (a, b)))
        await asyncio.gather(*(_membership_data(api, ops, t, shared) for t in (a, b)))
        addresses = {name: grpc_addr(name) for name in ("identity", "groups", "partners")}
        addresses |= {name: grpc_addr(name) for name in ("support", "membership")}
        return World(a, b, operators, shared, gateway_url, addresses, platform)


async def _shared_setup(api: Api, ops: Actor) -> dict[str, str]:
    """What the platform holds for everyone: support's plan and categories, a banner program,
    a training course."""
    calendar = await api.call(
        "POST",
        "/v1/support/calendars",
        ops,
        json={
            "name": unique("Sécurité "),
            "time_zone": "Europe/Paris",
            "weekly_hours": ["00:00-24:00"] * 7,
            "country": "FR",
        },
    )
    targets = [
        {
            "priority": p,
            "first_response_minutes": 600,
            "next_response_minutes": 600,
            "resolution_minutes": 6000,
        }
        for p in ("low", "normal", "high", "urgent")
    ]
    plan = await api.call(
        "POST",
        "/v1/support/plans",
        ops,
        json={
            "code": unique("SEC-").upper(),
            "name": "Sécurité",
            "calendar_id": calendar["id"],
            "targets": targets,
        },
    )
    shared = {"calendar": calendar["id"], "plan": plan["id"]}
    existing = await api.call("GET", "/v1/support/categories", ops)
    codes = {c["code"]: c["id"] for c in existing["items"]}
    for code, audience in (
        ("PARTNER-CONTENT", "partner"),
        ("PARTNER-BANK", "partner"),
        ("PARTNER-INVOICES", "partner"),
        ("PARTNER-OTHER", "partner"),
        (unique("SEC-").upper(), "customer"),
    ):
        if code not in codes:
            created = await api.call(
                "POST",
                "/v1/support/categories",
                ops,
                json={
                    "code": code,
                    "name": f"Catégorie {code}",
                    "audience": audience,
                    "entries": [{"question": "Comment ?", "answer": "Ainsi."}],
                },
            )
            codes[code] = created["id"]
        if audience == "customer":
            shared["category"] = codes[code]
    shared["partner_category"] = codes["PARTNER-OTHER"]
    program = await api.call(
        "POST",
        "/v1/banner-programs",
        ops,
        json={"code": unique("PRG-").upper(), "name": "Atelier Sécurité", "benefits": ["a"]},
    )
    shared["program"] = program["id"]
    for option in ("opt_a", "opt_b", "opt_c"):
        created = await api.call(
            "POST",
            f"/v1/banner-programs/{program['id']}/options",
            ops,
            json={"code": unique("OPT-").upper(), "name": option, "benefit": "mieux"},
        )
        shared[option] = created["id"]
    starts = (date.today() + timedelta(days=60)).isoformat()
    course = await api.call(
        "POST",
        "/v1/training-courses",
        ops,
        json={
            "code": unique("CRS-").upper(),
            "title": "Diagnostic",
            "starts_on": starts,
            "location": "Lyon",
            "capacity": 50,
        },
    )
    shared["course"] = course["id"]
    return shared


async def _tenant(
    api: Api, ops: Actor, link: MailLink, name: str, shared: dict[str, str]
) -> Tenant:
    tenant = Tenant(name)
    for key, kind in ORG_KINDS.items():
        created = await api.call(
            "POST",
            "/v1/organisations",
            ops,
            json={
                "kind": kind,
                "name": f"{key} {name} {uuid.uuid4().hex[:6]}",
                "code": unique("S"),
            },
        )
        tenant.orgs[key] = created["id"]
    users = await asyncio.gather(
        *(
            api.user(ops, link, key, tenant.orgs[org], roles)
            for key, (org, roles) in TENANT_USERS.items()
        )
    )
    tenant.actors = {actor.key: actor for actor in users}
    # A self-registered civilian of the association: signed in, pending, no role anywhere.
    username = unique("plain.")
    await api.call(
        "POST",
        "/v1/registrations",
        None,
        json={
            "organisation_id": tenant.orgs["association"],
            "username": username,
            "email": f"{username}@security.guichet.example.com",
            "password": PASSWORD,
            "first_name": "Plain",
            "last_name": "User",
        },
    )
    tenant.actors["plain"] = await api.login("plain", username, PASSWORD)
    tenant.ids["pending_user"] = tenant.actors["plain"].user_id
    tenant.ids["candidate"] = await _candidate(api, link, tenant.orgs["association"])
    # An account made by the admin without an e-mail address (the admin may complete it).
    made = await api.call(
        "POST",
        f"/v1/organisations/{tenant.orgs['association']}/accounts",
        ops,
        json={"username": unique("noemail."), "first_name": "No", "last_name": "Email"},
    )
    tenant.ids["no_email_user"] = made["id"]
    return tenant


async def _candidate(api: Api, link: MailLink, association: str) -> str:
    """A registered member who verified the address and completed the profile: an account the
    admin can validate (once the fee is recorded, see _membership_data)."""
    username = unique("candidate.")
    email = f"{username}@security.guichet.example.com"
    await api.call(
        "POST",
        "/v1/registrations",
        None,
        json={
            "organisation_id": association,
            "username": username,
            "email": email,
            "password": PASSWORD,
            "first_name": "Camille",
            "last_name": "Candidate",
        },
    )
    await api.call(
        "POST", "/v1/registrations/verify-email", None, json={"token": await link(email)}
    )
    candidate = await api.login("candidate", username, PASSWORD)
    await api.call(
        "PUT",
        "/v1/me/profile",
        candidate,
        json={
            "first_name": "Camille",
            "last_name": "Candidate",
            "phone": "+33 6 12 34 56 78",
            "address_line": "1 rue de la Paix",
            "postal_code": "83000",
            "city": "Toulon",
            "birth_date": "1990-01-01",
        },
    )
    return candidate.user_id


async def _groups_data(api: Api, ops: Actor, tenant: Tenant, groups_addr: str) -> None:
    """Clients related to the provider (recorded over gRPC, as the demo does), two groups,
    and a process request from assigning the editor."""
    provider = tenant.orgs["provider"]
    clients = [str(uuid.uuid4()) for _ in range(6)]
    async with grpc.aio.insecure_channel(groups_addr) as channel:
        stub = groups_pb2_grpc.GroupsServiceStub(channel)
        await stub.RecordClients(
            groups_pb2.RecordClientsRequest(
                clients=[
                    groups_pb2.ClientRecord(
                        id=client,
                        name=unique(f"Client {tenant.name} "),
                        program_accounts=[
                            groups_pb2.ProgramAccountRecord(
                                id=str(uuid.uuid4()),
                                number=f"{100000000 + i}RM0001",
                                # The second client's account is closed: delegating to it
                                # fails, so the group's process request ends `failed`.
                                status=groups_pb2.PROGRAM_ACCOUNT_STATUS_CLOSED
                                if i == 1
                                else groups_pb2.PROGRAM_ACCOUNT_STATUS_ACTIVE,
                            )
                        ],
                    )
                    for i, client in enumerate(clients)
                ]
            ),
            metadata=(("authorization", f"Bearer {ops.token}"),),
        )
        await stub.RecordRelationships(
            groups_pb2.RecordRelationshipsRequest(
                relationships=[
                    groups_pb2.RelationshipRecord(
                        provider_id=provider,
                        client_id=client,
                        status=groups_pb2.RELATIONSHIP_STATUS_ACTIVE,
                        expire_time=timestamp(datetime.now(UTC) + timedelta(days=365)),
                    )
                    for client in clients
                ]
            ),
            metadata=(("authorization", f"Bearer {ops.token}"),),
        )
    tenant.ids["clients"] = ",".join(clients)
    tenant.ids["free_client"] = clients[5]
    bam = tenant.actors["business_account_manager"]
    base = f"/v1/providers/{provider}"
    group = await api.call(
        "POST", f"{base}/groups", bam, json={"name": unique("Groupe "), "client_ids": clients[:2]}
    )
    tenant.ids["group"] = group["id"]
    doomed = await api.call(
        "POST", f"{base}/groups", bam, json={"name": unique("Jetable "), "client_ids": [clients[2]]}
    )
    tenant.ids["doomed_group"] = doomed["id"]
    await api.call(
        "POST",
        f"{base}/employees/assignments",
        bam,
        json={
            "group_id": group["id"],
            "role": "editor",
            "employee_ids": [tenant.actors["editor"].user_id],
        },
        params={"confirmation": "CONFIRMER"},
    )
    requests = await api.call("GET", f"{base}/process-requests", bam)
    request = requests["items"][0]["id"]
    tenant.ids["process_request"] = request

    async def failed() -> bool:
        read = await api.call("GET", f"{base}/process-requests/{request}", bam)
        return bool(read["status"] == "failed")

    await wait_until(failed, what="the delegation to end failed", within=60, every=0.3)


async def _support_data(api: Api, ops: Actor, tenant: Tenant, shared: dict[str, str]) -> None:
    """Contracts for the ERP customer and the store; a ticket with an attachment; a view."""
    for org in ("erp", "store"):
        await api.call(
            "PUT",
            f"/v1/support/contracts/{tenant.orgs[org]}",
            ops,
            json={"plan_id": shared["plan"], "operations_email": "ops@security.example.com"},
        )
    customer = tenant.actors["customer_user"]
    viewed = await api.call("GET", f"/v1/support/categories/{shared['category']}", customer)
    tenant.ids["view"] = viewed["view_id"]
    ticket_body = {
        "category_id": shared["category"],
        "title": "Écran bloqué",
        "description": "Le bouton ne répond pas.",
        "screen_code": "ATW0001",
        "example_record": "client 100",
    }
    ticket = await api.call("POST", "/v1/support/tickets", customer, json=ticket_body)
    tenant.ids["ticket"] = ticket["id"]
    attachment = await api.call(
        "POST",
        f"/v1/support/tickets/{ticket['id']}/attachments",
        customer,
        params={"filename": "note.txt"},
        content=b"hello",
        headers={"content-type": "text/plain"},
    )
    tenant.ids["attachment"] = attachment["id"]


async def _partners_data(
    api: Api,
    ops: Actor,
    tenant: Tenant,
    partners_addr: str,
    platform: tuple[tuple[str, str], ...],
) -> None:
    """A registered store with products, orders in progress and in the history, a promotion,
    a content change and a bank-detail change with its proof."""
    store = tenant.orgs["store"]
    await api.call(
        "POST",
        "/v1/operator/partners/stores",
        ops,
        json={"store_id": store, "operations_email": "ops@security.example.com"},
    )
    products = []
    for name in ("Margherita", "Regina", "Calzone"):
        made = await api.call(
            "POST",
            f"/v1/operator/partners/stores/{store}/products",
            ops,
            json={"name": name, "price_cents": 1000},
        )
        products.append(made["id"])
    tenant.ids["product"], tenant.ids["product2"], tenant.ids["product3"] = products
    accepted = await submit_order(partners_addr, platform, store, products[0])
    tenant.ids["order"] = accepted.order.id
    tenant.ids["order_item"] = accepted.items[0].id
    delivered = await submit_order(partners_addr, platform, store, products[0], delivered=True)
    tenant.ids["delivered_order"] = delivered.order.id
    refundable = await submit_order(partners_addr, platform, store, products[0], delivered=True)
    tenant.ids["refund_order"] = refundable.order.id
    manager = tenant.actors["partner_manager"]
    base = f"/v1/partners/{store}"
    promotion = await api.call(
        "POST", f"{base}/promotions", manager, json={"name": "-10 %", "kind": "percent_off"}
    )
    tenant.ids["promotion"] = promotion["id"]
    change = await api.call(
        "POST",
        f"{base}/content-changes",
        manager,
        json={"product_id": products[1], "proposed_name": "Regina spéciale"},
    )
    tenant.ids["content_change"] = change["id"]
    change = await api.call(
        "POST",
        f"{base}/content-changes",
        manager,
        json={"product_id": products[2], "proposed_name": "Calzone spéciale"},
    )
    tenant.ids["content_change2"] = change["id"]
    tenant.ids["bank_change"] = await _bank_change(api, manager, store)
    await api.call(
        "POST",
        "/v1/operator/partners/stores",
        ops,
        json={"store_id": tenant.orgs["store2"], "operations_email": "ops@security.example.com"},
    )
    tenant.ids["bank_change2"] = await _bank_change(
        api, tenant.actors["partner_manager2"], tenant.orgs["store2"]
    )


async def _bank_change(api: Api, manager: Actor, store: str) -> str:
    """A bank-detail change with its proof, waiting for the operator's decision."""
    base = f"/v1/partners/{store}"
    bank = await api.call(
        "POST",
        f"{base}/bank-detail-changes",
        manager,
        json={
            "iban": "FR76 3000 6000 0112 3456 7890 189",
            "bic": "AGRIFRPP",
            "account_holder": "Pizzeria",
        },
    )
    await api.call(
        "PUT",
        f"{base}/bank-detail-changes/{bank['id']}/proof",
        manager,
        params={"filename": "rib.pdf"},
        content=PDF,
        headers={"content-type": "application/pdf"},
    )
    change_id: str = bank["id"]
    return change_id


async def submit_order(
    partners_addr: str,
    platform: tuple[tuple[str, str], ...],
    store: str,
    product: str,
    *,
    delivered: bool = False,
) -> partners_pb2.OrderDetail:
    """An order paid online, as the platform's intake sends it (internal gRPC: no REST route);
    `delivered` moves it on to the history."""
    async with grpc.aio.insecure_channel(partners_addr) as channel:
        stub = partners_pb2_grpc.PartnersServiceStub(channel)
        response = await stub.SubmitOrder(
            partners_pb2.SubmitOrderRequest(
                store_id=store,
                code=unique("SEC").upper(),
                items=[partners_pb2.SubmittedItem(product_id=product, quantity=1)],
                customer_name="Alice Martin",
                customer_phone="+33 6 11 22 33 44",
                courier_name="Karim",
                courier_phone="+33 6 55 66 77 88",
                paid=True,
            ),
            metadata=platform,
        )
        if delivered:
            await stub.UpdateOrderStatus(
                partners_pb2.UpdateOrderStatusRequest(
                    order_id=response.order.order.id, status=partners_pb2.ORDER_STATUS_DELIVERED
                ),
                metadata=platform,
            )
    detail: partners_pb2.OrderDetail = response.order
    return detail


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


async def _membership_data(api: Api, ops: Actor, tenant: Tenant, shared: dict[str, str]) -> None:
    """An enrolled workshop with a technician, a course registration, a claim and an option
    request; an association with a member, a training, a registration and client records."""
    workshop = tenant.orgs["workshop"]
    contact = {"name": "Contact", "email": "contact@security.example.com"}
    await api.call(
        "POST",
        f"/v1/workshops/{workshop}/membership",
        ops,
        json={
            "program_id": shared["program"],
            "renewal_date": (date.today() + timedelta(days=200)).isoformat(),
            "workshop": {"name": f"Garage {tenant.name}", "email": "garage@security.example.com"},
            "wholesaler": contact,
            "distributor": contact,
            "option_ids": [shared["opt_a"]],
        },
    )
    owner = tenant.actors["workshop_owner"]
    base = f"/v1/workshops/{workshop}"
    technician = await api.call(
        "POST", f"{base}/technicians", owner, json={"first_name": "Tom", "last_name": "Tech"}
    )
    tenant.ids["technician"] = technician["id"]
    second = await api.call(
        "POST", f"{base}/technicians", owner, json={"first_name": "Ana", "last_name": "Tech"}
    )
    tenant.ids["technician2"] = second["id"]
    registration = await api.call(
        "POST",
        f"{base}/training-registrations",
        owner,
        json={"course_id": shared["course"], "technician_id": technician["id"]},
    )
    tenant.ids["course_registration"] = registration["id"]
    claim_body = {
        "vehicle_vin": "VF1RFB00X12345678",
        "repair_order": unique("OR-"),
        "repair_date": (date.today() - timedelta(days=3)).isoformat(),
        "labour_minutes": 90,
        "amount_cents": 13500,
        "description": "Remplacement",
    }
    claim = await api.call("POST", f"{base}/warranty-claims", owner, json=claim_body)
    tenant.ids["claim"] = claim["id"]
    request = await api.call(
        "POST",
        f"{base}/option-change-requests",
        owner,
        json={"option_id": shared["opt_b"], "change": "add"},
    )
    tenant.ids["option_request"] = request["id"]

    admin = tenant.actors["association_admin"]
    association = tenant.orgs["association"]
    base = f"/v1/associations/{association}"
    member = await api.call(
        "POST",
        f"{base}/members",
        admin,
        json={"user_id": tenant.actors["member"].user_id, "first_name": "M", "last_name": "Em"},
    )
    tenant.ids["member"] = member["id"]
    candidate = await api.call(
        "POST",
        f"{base}/members",
        admin,
        json={"user_id": tenant.ids["candidate"], "first_name": "Camille", "last_name": "C"},
    )
    await api.call(
        "POST",
        f"{base}/members/{candidate['id']}/fees",
        admin,
        json={"year": date.today().year, "amount_cents": 3500},
    )
    training = await api.call(
        "POST",
        f"{base}/trainings",
        admin,
        json={
            "training_type": "PSC1",
            "title": "PSC1",
            "start_time": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
            "location": "Toulon",
            "capacity": 100,
            "public": True,
        },
    )
    tenant.ids["training"] = training["id"]
    for key, company in (("registration", "Mairie de Sécurité"), ("registration2", "Lycée Test")):
        made = await api.call(
            "POST",
            f"{base}/trainings/{training['id']}/registrations",
            None,
            json={
                "trainee": {
                    "first_name": unique("Jeanne"),
                    "last_name": "Martin",
                    "birth_date": "1990-01-01",
                    "email": "jeanne@security.example.com",
                },
                "company_name": f"{company} {tenant.name}",
            },
        )
        tenant.ids[key] = made["registration"]["id"]
        tenant.ids[f"{key}_record"] = made["registration"]["client"]["id"]
    empty = await api.call(
        "POST",
        f"{base}/dps-requests",
        None,
        json={
            "event_name": "Fête",
            "event_date": (date.today() + timedelta(days=40)).isoformat(),
            "location": "Place",
            "expected_attendance": 300,
            "organiser": {
                "company_name": unique("Comité "),
                "contact_name": "Paul",
                "email": "paul@security.example.com",
            },
        },
    )
    tenant.ids["dps_record"] = empty["request"]["client"]["id"]


def world_ids(world: World) -> dict[str, Any]:
    """A plain summary, for debugging a failing cell."""
    return {
        "a": {**world.a.orgs, **world.a.ids},
        "b": {**world.b.orgs, **world.b.ids},
        "shared": world.shared,
    }
