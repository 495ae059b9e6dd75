"""Organisation names and usernames compared as people read them (issue #26)."""

from __future__ import annotations

import uuid

import grpc
from guichet.identity.v1 import identity_pb2

from tests.identity.harness import (
    ASSOCIATION,
    PASSWORD,
    WORKSHOP,
    Identity,
    fails,
    fields,
    unique,
)


async def _create(identity: Identity, kind: int, name: str) -> identity_pb2.Organisation:
    response: identity_pb2.CreateOrganisationResponse = await identity.stub.CreateOrganisation(
        identity_pb2.CreateOrganisationRequest(kind=kind, name=name),  # type: ignore[arg-type]
        metadata=identity.admin,
    )
    return response.organisation


async def test_organisation_names_are_unique_per_kind_as_people_read_them(
    identity: Identity,
) -> None:
    tag = unique("")[-6:]
    base = f"Protection Civile {tag}"
    created = await _create(identity, ASSOCIATION, base)
    assert created.name == base, "the name is kept as typed"
    full_width = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in base)
    for look_alike in (base.replace(" ", "\u200b", 1), full_width, base.upper()):
        clash = await fails(
            identity.stub.CreateOrganisation(
                identity_pb2.CreateOrganisationRequest(kind=ASSOCIATION, name=look_alike),
                metadata=identity.admin,
            )
        )
        assert clash.code == grpc.StatusCode.ALREADY_EXISTS, look_alike
        assert clash.reason == "name_taken"
        assert fields(clash) == {"name"}
    # Another kind may bear the name; accents make other names.
    await _create(identity, WORKSHOP, base)
    await _create(identity, ASSOCIATION, f"Associação São João {tag}")
    await _create(identity, ASSOCIATION, f"Associacao Sao Joao {tag}")


async def test_organisation_names_mixing_look_alike_scripts_are_refused(
    identity: Identity,
) -> None:
    refused = await fails(
        identity.stub.CreateOrganisation(
            identity_pb2.CreateOrganisationRequest(
                kind=ASSOCIATION, name=f"Pr\u043etection {unique('')[-6:]}"
            ),
            metadata=identity.admin,
        )
    )
    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(refused) == {"name"}
    # One script throughout is fine (digits belong to every script; Latin hex would not).
    await _create(identity, ASSOCIATION, f"Защита {uuid.uuid4().int % 10**8}")


async def test_usernames_stay_case_insensitive_and_ascii(identity: Identity) -> None:
    org = await identity.organisation(ASSOCIATION)
    username = unique("Dupont.")
    await identity.account(org, username=username)

    async def register(name: str) -> grpc.StatusCode:
        problem = await fails(
            identity.stub.Register(
                identity_pb2.RegisterRequest(
                    organisation_id=org,
                    username=name,
                    email=f"{unique('r')}@example.org",
                    password=PASSWORD,
                    first_name="Jeanne",
                    last_name="Martin",
                )
            )
        )
        return problem.code

    assert await register(username.upper()) == grpc.StatusCode.ALREADY_EXISTS
    # Full-width or invisible characters are not username characters at all.
    wide = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in username)
    assert await register(wide) == grpc.StatusCode.INVALID_ARGUMENT
    assert (
        await register(username[:3] + "\u200b" + username[3:]) == grpc.StatusCode.INVALID_ARGUMENT
    )
