"""Writes check what they name (issue #24), in identity: organisations are identity's own rows,
so every write that names one (self-registration, an admin's new account) finds it in its own
table, inside the write's transaction, and answers NOT_FOUND for an unknown id. (Already so
before the issue: this pins it.)"""

from __future__ import annotations

import uuid

import grpc
from guichet.identity.v1 import identity_pb2

from tests.identity.harness import ASSOCIATION, PASSWORD, Identity, fails, unique


async def test_every_write_naming_an_organisation_finds_it_or_is_not_found(
    identity: Identity,
) -> None:
    nowhere = str(uuid.uuid4())
    registered = await fails(
        identity.stub.Register(
            identity_pb2.RegisterRequest(
                organisation_id=nowhere,
                username=unique("reg."),
                email=f"{unique('r')}@example.org",
                password=PASSWORD,
                first_name="Jeanne",
                last_name="Martin",
            )
        )
    )
    created = await fails(
        identity.stub.CreateUser(
            identity_pb2.CreateUserRequest(
                organisation_id=nowhere, username=unique("new."), first_name="A", last_name="B"
            ),
            metadata=identity.admin,
        )
    )
    for refused in (registered, created):
        assert refused.code == grpc.StatusCode.NOT_FOUND, refused.message
    # A role is held in the account's own organisation: any other id is refused as input,
    # known or not (GrantRole names the organisation only to say which one it means).
    member = await identity.account(await identity.organisation(ASSOCIATION), "member")
    granted = await fails(
        identity.stub.GrantRole(
            identity_pb2.GrantRoleRequest(
                user_id=member.id, organisation_id=nowhere, role="association_admin"
            ),
            metadata=identity.admin,
        )
    )
    assert granted.code == grpc.StatusCode.INVALID_ARGUMENT
