"""Demo data of the groups service, loaded through the contracts (gRPC), idempotently.

The demo provider "Transitaire Dupont & Fils" (SP-DUPONT, manager dupont.jean) gets client
businesses (identity organisations of kind client_business) with program accounts and active
relationships, a pending one and an expired one, and three groups. The largest, "Grands
comptes", holds 10,000 program accounts (400 clients with 25 each) and martin.claire is its
editor, so `make dev` shows a finished delegation of 10,000 grants in the process requests table.
With `large=False` (the tests) the largest group holds 8 clients.

Clients and accounts go in with one bulk RPC; only the identity organisations are made one by
one (a few at a time), and only the missing ones.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from guichet.common.v1 import common_pb2
from guichet.groups.v1 import groups_pb2 as pb, groups_pb2_grpc
from guichet.identity.v1 import identity_pb2, identity_pb2_grpc

Metadata = tuple[tuple[str, str], ...]
PROVIDER_CODE = "SP-DUPONT"
MANAGER = "dupont.jean"
EMPLOYEE = "martin.claire"
# Fixed dates: a second `make dev` records nothing new (and starts no new expiry timer).
EXPIRES = datetime(2030, 12, 31, tzinfo=UTC)
_NAMESPACE = uuid.UUID("5f0c3c9e-7d1a-4f54-9a55-3c8d5b7e9a10")
_NAMED = (
    ("CB-LAVAL", "Importations Laval"),
    ("CB-DEMO-QC1", "Érablière du Québec"),
    ("CB-DEMO-QC2", "Fromagerie Saint-Laurent"),
    ("CB-DEMO-QC3", "Meubles Beauce"),
    ("CB-DEMO-TR1", "Transports Lemieux"),
    ("CB-DEMO-TR2", "Camionnage Boréal"),
    ("CB-DEMO-PEND", "Textiles Gaspé"),
    ("CB-DEMO-EXP", "Vins Okanagan"),
)


def _program_accounts(client_id: str, index: int, count: int) -> list[pb.ProgramAccountRecord]:
    """Deterministic ids and numbers, so re-recording them changes nothing."""
    business_number = f"{800000000 + index:09d}"
    return [
        pb.ProgramAccountRecord(
            id=str(uuid.uuid5(_NAMESPACE, f"{client_id}/{j}")),
            number=f"{business_number}RM{j + 1:04d}",
        )
        for j in range(count)
    ]


async def _organisations(
    identity: identity_pb2_grpc.IdentityServiceStub, auth: Metadata, wanted: list[tuple[str, str]]
) -> dict[str, str]:
    """Client-business organisations by code, created when missing (eight at a time)."""
    existing: dict[str, str] = {}
    token = ""
    while True:
        page = await identity.ListOrganisations(
            identity_pb2.ListOrganisationsRequest(
                kind=identity_pb2.ORGANISATION_KIND_CLIENT_BUSINESS,
                page=common_pb2.PageRequest(page_size=500, page_token=token),
            ),
            metadata=auth,
            timeout=30,
        )
        existing.update({o.code: o.id for o in page.organisations})
        token = page.page.next_page_token
        if not token:
            break
    gate = asyncio.Semaphore(8)

    async def create(code: str, name: str) -> None:
        async with gate:
            response = await identity.CreateOrganisation(
                identity_pb2.CreateOrganisationRequest(
                    kind=identity_pb2.ORGANISATION_KIND_CLIENT_BUSINESS, name=name, code=code
                ),
                metadata=auth,
                timeout=30,
            )
            existing[code] = response.organisation.id

    await asyncio.gather(*(create(c, n) for c, n in wanted if c not in existing))
    return existing


async def _member_id(
    identity: identity_pb2_grpc.IdentityServiceStub, auth: Metadata, org: str, username: str
) -> str:
    page = await identity.ListOrganisationMembers(
        identity_pb2.ListOrganisationMembersRequest(
            organisation_id=org, page=common_pb2.PageRequest(page_size=500)
        ),
        metadata=auth,
        timeout=30,
    )
    return str(next(u.id for u in page.users if u.username.lower() == username))


async def load_groups_demo(
    identity: identity_pb2_grpc.IdentityServiceStub,
    auth: Metadata,
    groups_addr: str,
    provider_id: str,
    manager_password: str,
    *,
    large: bool = True,
) -> None:
    big = 400 if large else 8
    accounts_each = 25 if large else 3
    generated = [(f"CB-DEMO-{i:04d}", f"Client démo {i:04d}") for i in range(1, big + 1)]
    codes = await _organisations(identity, auth, [*_NAMED, *generated])
    records = []
    for index, (code, name) in enumerate([*_NAMED, *generated]):
        count = accounts_each if code.startswith("CB-DEMO-0") else 4
        records.append(
            pb.ClientRecord(
                id=codes[code],
                name=name,
                program_accounts=_program_accounts(codes[code], index, count),
            )
        )
    expires = Timestamp()
    expires.FromDatetime(EXPIRES)
    status = {
        "CB-DEMO-PEND": pb.RELATIONSHIP_STATUS_PENDING,
        "CB-DEMO-EXP": pb.RELATIONSHIP_STATUS_EXPIRED,
    }
    async with grpc.aio.insecure_channel(groups_addr) as channel:
        groups = groups_pb2_grpc.GroupsServiceStub(channel)
        await groups.RecordClients(
            pb.RecordClientsRequest(clients=records), metadata=auth, timeout=120
        )
        await groups.RecordRelationships(
            pb.RecordRelationshipsRequest(
                relationships=[
                    pb.RelationshipRecord(
                        provider_id=provider_id,
                        client_id=codes[code],
                        status=status.get(code, pb.RELATIONSHIP_STATUS_ACTIVE),
                        expire_time=expires,
                    )
                    for code, _ in [*_NAMED, *generated]
                ]
            ),
            metadata=auth,
            timeout=120,
        )
        login = await identity.Login(
            identity_pb2.LoginRequest(username=MANAGER, password=manager_password), timeout=30
        )
        bam = (("authorization", f"Bearer {login.tokens.access_token}"),)
        listed = await groups.ListGroups(
            pb.ListGroupsRequest(
                provider_id=provider_id, page=common_pb2.PageRequest(page_size=500)
            ),
            metadata=bam,
            timeout=30,
        )
        existing = {g.name: g for g in listed.groups}
        plan = {
            "Grands comptes": [codes[c] for c, _ in generated],
            "Importateurs du Québec": [
                codes[c] for c in ("CB-LAVAL", "CB-DEMO-QC1", "CB-DEMO-QC2")
            ],
            "Transport routier": [codes[c] for c in ("CB-DEMO-TR1", "CB-DEMO-TR2")],
        }
        for name, clients in plan.items():
            if name not in existing:
                created = await groups.CreateGroup(
                    pb.CreateGroupRequest(provider_id=provider_id, name=name, client_ids=clients),
                    metadata=bam,
                    timeout=120,
                )
                existing[name] = created.group
        largest = existing["Grands comptes"]
        if not largest.assignments:
            employee = await _member_id(identity, auth, provider_id, EMPLOYEE)
            await groups.UpdateGroup(
                pb.UpdateGroupRequest(
                    provider_id=provider_id,
                    group_id=largest.id,
                    assign=[pb.EmployeeRole(employee_id=employee, role=pb.DELEGATED_ROLE_EDITOR)],
                    confirmation="CONFIRMER",
                ),
                metadata=bam,
                timeout=60,
            )
