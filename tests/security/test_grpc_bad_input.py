"""Bad input straight at each service's gRPC port: never INTERNAL, never UNKNOWN, never a leak.

* Bytes that are no valid protobuf, sent to every unary method with identity serializers
  (`channel.unary_unary` without a serializer sends the bytes as they are): INVALID_ARGUMENT.
* A message over the servers' receive cap (`services.kit.grpcserver.MAX_MESSAGE_BYTES`):
  RESOURCE_EXHAUSTED, from gRPC itself before any of our code runs.
* An id field that is not a UUID: INVALID_ARGUMENT with a BadRequest field violation naming it.

The callers are signed in (the operator, or the tenant's own user), so the refusal comes from
the input and not from the missing token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from guichet.groups.v1 import groups_pb2
from guichet.identity.v1 import identity_pb2
from guichet.membership.v1 import membership_pb2
from guichet.partners.v1 import partners_pb2
from guichet.support.v1 import support_pb2

from services.kit.errors import RemoteProblem
from services.kit.grpcserver import MAX_MESSAGE_BYTES
from tests.security.harness import World

SERVICES: dict[str, Any] = {
    "identity": identity_pb2.DESCRIPTOR.services_by_name["IdentityService"],
    "groups": groups_pb2.DESCRIPTOR.services_by_name["GroupsService"],
    "support": support_pb2.DESCRIPTOR.services_by_name["SupportService"],
    "partners": partners_pb2.DESCRIPTOR.services_by_name["PartnersService"],
    "membership": membership_pb2.DESCRIPTOR.services_by_name["MembershipService"],
}

# Corrupt whatever the message type: a length-delimited field longer than the bytes left, a
# varint that never ends, a group closed that was never opened, wire type 7 (does not exist).
MALFORMED: dict[str, bytes] = {
    "truncated": b"\x0a\x05ab",
    "endless varint": b"\x08" + b"\xff" * 11,
    "stray end-group": b"\x0c",
    "wire type 7": b"\x0f",
}


def _auth(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def _unary_methods(service: str) -> list[Any]:
    return [m for m in SERVICES[service].methods if not (m.client_streaming or m.server_streaming)]


@pytest.mark.parametrize("service", list(SERVICES))
async def test_malformed_bytes_are_invalid_argument(
    world: World, service: str, record_property: Callable[[str, Any], None]
) -> None:
    descriptor = SERVICES[service]
    wrong: list[str] = []
    sent = 0
    async with grpc.aio.insecure_channel(world.addresses[service]) as channel:
        for method in _unary_methods(service):
            call = channel.unary_unary(f"/{descriptor.full_name}/{method.name}")
            for label, payload in MALFORMED.items():
                sent += 1
                try:
                    await call(
                        payload, metadata=_auth(world.operators["ops_admin"].token), timeout=10
                    )
                    wrong.append(f"{method.name} ({label}): OK")
                except grpc.aio.AioRpcError as error:
                    details = error.details() or ""
                    if error.code() != grpc.StatusCode.INVALID_ARGUMENT or "class" in details:
                        wrong.append(f"{method.name} ({label}): {error.code().name} {details}")
    record_property(
        "reliability",
        {
            "kind": "input",
            "name": f"{service}: malformed protobuf",
            "tried": sent,
            "lost": len(wrong),
        },
    )
    assert not wrong, "\n".join(wrong[:20])


@pytest.mark.parametrize("service", list(SERVICES))
async def test_oversized_messages_are_resource_exhausted(
    world: World, service: str, record_property: Callable[[str, Any], None]
) -> None:
    """Over the cap by a few bytes, on a handful of methods (each send is 4 MiB)."""
    descriptor = SERVICES[service]
    oversized = b"\x0a" + b"\x90\x80\x80\x02" + b"x" * (MAX_MESSAGE_BYTES + 16)
    wrong: list[str] = []
    methods = _unary_methods(service)[:3]
    async with grpc.aio.insecure_channel(world.addresses[service]) as channel:
        for method in methods:
            call = channel.unary_unary(f"/{descriptor.full_name}/{method.name}")
            try:
                await call(
                    oversized, metadata=_auth(world.operators["ops_admin"].token), timeout=20
                )
                wrong.append(f"{method.name}: OK")
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                    wrong.append(f"{method.name}: {error.code().name} {error.details()}")
    record_property(
        "reliability",
        {
            "kind": "input",
            "name": f"{service}: oversized message",
            "tried": len(methods),
            "lost": len(wrong),
        },
    )
    assert not wrong, "\n".join(wrong)


# (service, method, request builder, caller key, the field that must be named)
Case = tuple[str, str, Callable[[World], Message], str, str]
UUID_CASES: list[Case] = [
    (
        "identity",
        "GetUser",
        lambda w: identity_pb2.GetUserRequest(user_id="not-a-uuid"),
        "ops_admin",
        "user_id",
    ),
    (
        "groups",
        "GetGroup",
        lambda w: groups_pb2.GetGroupRequest(provider_id=w.a.orgs["provider"], group_id="G-42"),
        "business_account_manager",
        "group_id",
    ),
    (
        "support",
        "SetContract",
        lambda w: support_pb2.SetContractRequest(organisation_id=w.a.orgs["erp"], plan_id="nope"),
        "ops_admin",
        "plan_id",
    ),
    (
        "support",
        "GetTicket",
        lambda w: support_pb2.GetTicketRequest(ticket_id="ticket-1"),
        "customer_user",
        "ticket_id",
    ),
    (
        "partners",
        "GetStore",
        lambda w: partners_pb2.GetStoreRequest(store_id="store-1"),
        "ops_admin",
        "store_id",
    ),
    (
        "membership",
        "GetWorkshop",
        lambda w: membership_pb2.GetWorkshopRequest(workshop_id="1234"),
        "ops_admin",
        "workshop_id",
    ),
]


@pytest.mark.parametrize("case", UUID_CASES, ids=lambda c: f"{c[0]}.{c[1]}")
async def test_an_invalid_uuid_is_a_field_violation(
    world: World, case: Case, record_property: Callable[[str, Any], None]
) -> None:
    service, method, build, caller, field = case
    actor = world.operators.get(caller) or world.a.actors[caller]
    request = build(world)
    async with grpc.aio.insecure_channel(world.addresses[service]) as channel:
        call = channel.unary_unary(
            f"/{SERVICES[service].full_name}/{method}",
            request_serializer=type(request).SerializeToString,
        )
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call(request, metadata=_auth(actor.token), timeout=10)
    problem = RemoteProblem.from_rpc_error(raised.value)
    record_property(
        "reliability",
        {
            "kind": "input",
            "name": f"{service}.{method}: invalid UUID",
            "tried": 1,
            "lost": int(problem.code != grpc.StatusCode.INVALID_ARGUMENT),
        },
    )
    assert problem.code == grpc.StatusCode.INVALID_ARGUMENT, (problem.code, problem.message)
    assert field in [name for name, _ in problem.violations], problem.violations
