# ruff: noqa: RUF001, RUF003 (look-alike names are what these tests are about)
"""Banner program names compared as people read them (issue #26)."""

from __future__ import annotations

import grpc
from guichet.membership.v1 import membership_pb2 as pb

from tests.identity.harness import unique
from tests.membership.harness import World, fails, fields


async def test_program_names_are_unique_as_people_read_them(world: World) -> None:
    async def create(name: str) -> pb.Program:
        response: pb.CreateProgramResponse = await world.stub.CreateProgram(
            pb.CreateProgramRequest(code=unique("P")[:12].upper(), name=name),
            metadata=world.ops,
        )
        return response.program

    name = f"Atelier Confiance {unique('')[-6:]}"
    await create(name)
    for look_alike in (name.replace(" ", "\u200b"), name.lower(), name.replace("A", "Ａ")):
        clash = await fails(create(look_alike))
        assert clash.code == grpc.StatusCode.ALREADY_EXISTS, look_alike
        assert clash.reason == "name_taken"
        assert fields(clash) == {"name"}
    await create(f"Atelier Confiança {unique('')[-6:]}")
    mixed = await fails(create("\u0410telier Express"))  # a Cyrillic А
    assert mixed.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(mixed) == {"name"}
