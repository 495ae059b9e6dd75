# ruff: noqa: RUF001 (look-alike names are what these tests are about)
"""Group names compared as people read them (issue #26): a name that only differs from a group's
by invisible characters, width, case or spacing is that group's name, also when the group was
deleted (and the refusal says so); look-alike letters of another script are refused; accented
names are names of their own."""

from __future__ import annotations

import asyncio

import grpc
from guichet.groups.v1 import groups_pb2 as pb

from tests.groups.harness import CONFIRM, World, fails, fields


async def test_look_alikes_of_a_group_name_are_that_name(world: World) -> None:
    provider = await world.provider()
    clients = await world.clients(provider, 5)
    await world.group(provider, [clients[0]], name="Groupe A")
    for look_alike in ("Groupe\u200bA", "Ｇｒｏｕｐｅ Ａ", "GROUPE  A", "groupe a"):
        problem = await fails(world.group(provider, [clients[1]], name=look_alike))
        assert problem.code == grpc.StatusCode.ALREADY_EXISTS, look_alike
        assert problem.reason == "group_name_taken"
        assert fields(problem) == {"name"}
    # Accents are letters people read: these are three names.
    await world.group(provider, [clients[1]], name="Société Générale")
    await world.group(provider, [clients[2]], name="Societe Generale")
    await world.group(provider, [clients[3]], name="Associação São João")


async def test_look_alikes_of_a_deleted_groups_name_say_so(world: World) -> None:
    provider = await world.provider()
    clients = await world.clients(provider, 2)
    group = await world.group(provider, [clients[0]], name="Importateurs Sud")
    await world.groups.DeleteGroup(
        pb.DeleteGroupRequest(provider_id=provider.id, group_id=group, confirmation="SUPPRIMER"),
        metadata=provider.manager_auth,
    )
    problem = await fails(
        world.group(provider, [clients[1]], name="ＩＭＰＯＲＴＡＴＥＵＲＳ\u00a0Sud")
    )
    assert problem.code == grpc.StatusCode.ALREADY_EXISTS
    assert problem.reason == "group_name_deleted"
    assert "deleted" in problem.message


async def test_cyrillic_look_alikes_are_refused_on_create_and_rename(world: World) -> None:
    provider = await world.provider()
    clients = await world.clients(provider, 2)
    problem = await fails(world.group(provider, [clients[0]], name="Gr\u043eupe Nord"))
    assert problem.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(problem) == {"name"}
    assert "Cyrillic" in problem.violations[0][1]
    group = await world.group(provider, [clients[0]], name="Groupe Nord")
    renamed = await fails(
        world.groups.UpdateGroup(
            pb.UpdateGroupRequest(
                provider_id=provider.id,
                group_id=group,
                name="Groupe Nor\u0501",  # a Cyrillic komi de
                confirmation=CONFIRM,
            ),
            metadata=provider.manager_auth,
        )
    )
    assert renamed.code == grpc.StatusCode.INVALID_ARGUMENT
    # Renaming a group to a look-alike of its own name is no clash with itself.
    same = await world.groups.UpdateGroup(
        pb.UpdateGroupRequest(
            provider_id=provider.id, group_id=group, name="GROUPE NORD", confirmation=CONFIRM
        ),
        metadata=provider.manager_auth,
    )
    assert same.group.name == "GROUPE NORD"


async def test_two_look_alikes_created_at_once_one_wins_in_the_database(world: World) -> None:
    provider = await world.provider()
    clients = await world.clients(provider, 2)
    results = await asyncio.gather(
        world.group(provider, [clients[0]], name="Course Est"),
        world.group(provider, [clients[1]], name="COURSE\u200b EST"),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(refused) == 1, results
    assert isinstance(refused[0], grpc.aio.AioRpcError)
    assert refused[0].code() == grpc.StatusCode.ALREADY_EXISTS
