"""Demo data for `make dev`, loaded through the public contracts (gRPC), never into tables.

Idempotent: a second run finds everything in place. Demo users receive the real "choose your
password" mail; the loader reads it from the local SMTP sink and sets the demo password, so the
mail pipeline (outbox → Temporal → SMTP) is exercised on every fresh start.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import grpc
from guichet.common.v1 import common_pb2
from guichet.identity.v1 import identity_pb2, identity_pb2_grpc

from services.devstack.demo_groups import load_groups_demo
from services.devstack.demo_membership import load_membership_demo
from services.devstack.demo_partners import load_partners_demo
from services.devstack.demo_support import load_support_demo
from services.kit.smtpsink import SmtpSink

DEMO_PASSWORD = "Guichet-demo-2026!"
Kind = identity_pb2.OrganisationKind


@dataclass(frozen=True)
class DemoUser:
    username: str
    first_name: str
    last_name: str
    role: str


@dataclass(frozen=True)
class DemoOrganisation:
    kind: identity_pb2.OrganisationKind.ValueType
    name: str
    code: str
    users: tuple[DemoUser, ...]


DEMO: tuple[DemoOrganisation, ...] = (
    DemoOrganisation(
        Kind.ORGANISATION_KIND_SERVICE_PROVIDER,
        "Transitaire Dupont & Fils",
        "SP-DUPONT",
        (
            DemoUser("dupont.jean", "Jean", "Dupont", "business_account_manager"),
            DemoUser("martin.claire", "Claire", "Martin", "program_account_manager"),
        ),
    ),
    DemoOrganisation(
        Kind.ORGANISATION_KIND_CLIENT_BUSINESS,
        "Importations Laval",
        "CB-LAVAL",
        (DemoUser("laval.paul", "Paul", "Laval", "business_account_manager"),),
    ),
    DemoOrganisation(
        Kind.ORGANISATION_KIND_ASSOCIATION,
        "Protection civile de Paris",
        "75",
        (
            DemoUser("assoc.admin", "Sophie", "Bernard", "association_admin"),
            DemoUser("DUPONT.marie", "Marie", "Dupont", "member"),
        ),
    ),
    DemoOrganisation(
        Kind.ORGANISATION_KIND_DELIVERY_PARTNER,
        "Pizzeria Napoli",
        "DP-NAPOLI",
        (DemoUser("napoli.manager", "Luca", "Rossi", "partner_manager"),),
    ),
    DemoOrganisation(
        Kind.ORGANISATION_KIND_DELIVERY_PARTNER,
        "Supérette du Port",
        "DP-PORT",
        (DemoUser("port.manager", "Nadia", "Benali", "partner_manager"),),
    ),
    DemoOrganisation(
        Kind.ORGANISATION_KIND_WORKSHOP,
        "Garage du Centre",
        "WS-CENTRE",
        (DemoUser("garage.owner", "Marc", "Petit", "workshop_owner"),),
    ),
    DemoOrganisation(
        Kind.ORGANISATION_KIND_ERP_CUSTOMER,
        "Menuiserie Bois & Cie",
        "ERP-BOIS",
        (DemoUser("bois.user", "Julie", "Moreau", "customer_user"),),
    ),
    # A Brazilian ERP customer (the support seed's): she reads the Extranet in Portuguese.
    DemoOrganisation(
        Kind.ORGANISATION_KIND_ERP_CUSTOMER,
        "Souza Comércio Ltda",
        "ERP-SOUZA",
        (DemoUser("souza.user", "Ana", "Souza", "customer_user"),),
    ),
)

_TOKEN = re.compile(r"token=([A-Za-z0-9_\-\.~%]+)")


async def load_demo_data(
    identity_addr: str,
    admin_username: str,
    admin_password: str,
    sink: SmtpSink,
    *,
    large: bool = True,
    addresses: Mapping[str, str] | None = None,
) -> list[tuple[str, str, str]]:
    """Creates the demo organisations and users; returns (organisation, username, role) rows.

    Each service's demo loader is called from here after identity's. `large=False` (the tests)
    asks every loader to skip its bulk volumes (10,000 program accounts, 100,000 orders or client
    records…) and load only the handful of rows that show each feature. `addresses` maps the
    other services' names to their gRPC addresses (a service missing from it gets no demo data).
    """
    created: list[tuple[str, str, str]] = []
    async with grpc.aio.insecure_channel(identity_addr) as channel:
        stub = identity_pb2_grpc.IdentityServiceStub(channel)
        login = await stub.Login(
            identity_pb2.LoginRequest(username=admin_username, password=admin_password),
            timeout=10,
        )
        auth = (("authorization", f"Bearer {login.tokens.access_token}"),)
        existing: dict[tuple[int, str], str] = {}
        page_token = ""
        while True:
            page = await stub.ListOrganisations(
                identity_pb2.ListOrganisationsRequest(
                    page=common_pb2.PageRequest(page_size=500, page_token=page_token)
                ),
                metadata=auth,
                timeout=10,
            )
            for organisation in page.organisations:
                existing[(organisation.kind, organisation.code)] = organisation.id
            page_token = page.page.next_page_token
            if not page_token:
                break
        codes: dict[str, str] = {}
        for demo in DEMO:
            organisation_id = existing.get((demo.kind, demo.code))
            if organisation_id is None:
                response = await stub.CreateOrganisation(
                    identity_pb2.CreateOrganisationRequest(
                        kind=demo.kind, name=demo.name, code=demo.code
                    ),
                    metadata=auth,
                    timeout=10,
                )
                organisation_id = response.organisation.id
            codes[demo.code] = organisation_id
            for user in demo.users:
                await _ensure_user(stub, auth, sink, organisation_id, user)
                created.append((demo.name, user.username, user.role))
        if addresses and "support" in addresses:
            await load_support_demo(addresses["support"], stub, auth, codes, DEMO_PASSWORD)
        if addresses and "groups" in addresses:
            await load_groups_demo(
                stub, auth, addresses["groups"], codes["SP-DUPONT"], DEMO_PASSWORD, large=large
            )
        if addresses and "membership" in addresses:
            await load_membership_demo(
                addresses["membership"], stub, auth, codes, DEMO_PASSWORD, large=large
            )
        if addresses and "partners" in addresses:
            await load_partners_demo(
                addresses["partners"], stub, auth, codes, DEMO_PASSWORD, large=large
            )
    return created


async def _ensure_user(
    stub: identity_pb2_grpc.IdentityServiceStub,
    auth: tuple[tuple[str, str], ...],
    sink: SmtpSink,
    organisation_id: str,
    user: DemoUser,
) -> None:
    email = f"{user.username.lower()}@demo.guichet.example.com"
    try:
        await stub.CreateUser(
            identity_pb2.CreateUserRequest(
                organisation_id=organisation_id,
                username=user.username,
                email=email,
                first_name=user.first_name,
                last_name=user.last_name,
                roles=[user.role],
            ),
            metadata=auth,
            timeout=10,
        )
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.ALREADY_EXISTS:
            return
        raise
    [mail] = await sink.wait_for(email, within=60)
    match = _TOKEN.search(mail.body)
    if match is None:
        raise RuntimeError(f"no link in the mail sent to {email}")
    await stub.ResetPassword(
        identity_pb2.ResetPasswordRequest(token=match.group(1), new_password=DEMO_PASSWORD),
        metadata=auth,
        timeout=10,
    )
