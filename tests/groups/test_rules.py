"""Every rule of the groups section of DOMAIN.md, on the real service and database."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import grpc
from guichet.groups.v1 import groups_pb2 as pb

from tests.groups.harness import (
    COMPLETED,
    CONFIRM,
    EDITOR,
    FAILED,
    MANAGER,
    READ_ONLY,
    World,
    fails,
    fields,
)


async def test_only_the_providers_manager_sees_its_groups(world: World) -> None:
    provider = await world.provider()
    other = await world.provider()
    clients = await world.clients(provider, 2)
    group = await world.group(provider, clients)
    employee = await world.identity.token(provider.employees["program_account_manager"])
    for metadata in (other.manager_auth, employee, world.ops):
        # A group of someone else's is simply not there: not even its existence leaks.
        problem = await fails(
            world.groups.GetGroup(
                pb.GetGroupRequest(provider_id=provider.id, group_id=group), metadata=metadata
            )
        )
        assert problem.code == grpc.StatusCode.NOT_FOUND
        problem = await fails(
            world.groups.DeleteGroup(
                pb.DeleteGroupRequest(
                    provider_id=provider.id, group_id=group, confirmation="DELETE"
                ),
                metadata=metadata,
            )
        )
        assert problem.code == grpc.StatusCode.NOT_FOUND
        # Provider-level pages say plainly that the caller may not.
        problem = await fails(
            world.groups.ListGroups(
                pb.ListGroupsRequest(provider_id=provider.id), metadata=metadata
            )
        )
        assert problem.code == grpc.StatusCode.PERMISSION_DENIED
    # The same group id under the other provider's path is not found for its own manager either.
    problem = await fails(
        world.groups.GetGroup(
            pb.GetGroupRequest(provider_id=other.id, group_id=group), metadata=other.manager_auth
        )
    )
    assert problem.code == grpc.StatusCode.NOT_FOUND
    listed = await world.groups.ListGroups(
        pb.ListGroupsRequest(provider_id=provider.id), metadata=provider.manager_auth
    )
    assert [g.id for g in listed.groups] == [group]
    assert listed.groups[0].client_count == 2
    assert listed.groups[0].program_account_count == 6


async def test_names_are_unique_against_active_and_deleted_groups(world: World) -> None:
    provider = await world.provider()
    clients = await world.clients(provider, 3)
    group = await world.group(provider, [clients[0]], name="Importateurs")
    problem = await fails(world.group(provider, [clients[1]], name="importateurs"))
    assert problem.code == grpc.StatusCode.ALREADY_EXISTS
    assert problem.reason == "group_name_taken"
    await world.groups.DeleteGroup(
        pb.DeleteGroupRequest(provider_id=provider.id, group_id=group, confirmation="SUPPRIMER"),
        metadata=provider.manager_auth,
    )
    problem = await fails(world.group(provider, [clients[1]], name="Importateurs"))
    assert problem.code == grpc.StatusCode.ALREADY_EXISTS
    assert problem.reason == "group_name_deleted"
    assert "deleted" in problem.message
    assert fields(problem) == {"name"}
    # Another provider may use the name.
    other = await world.provider()
    await world.group(other, await world.clients(other, 1), name="Importateurs")


async def test_create_needs_at_least_one_available_client(world: World) -> None:
    provider = await world.provider()
    problem = await fails(world.group(provider, []))
    assert problem.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(problem) == {"client_ids"}
    pending = await world.clients(provider, 1, status=pb.RELATIONSHIP_STATUS_PENDING)
    expired = await world.clients(provider, 1, status=pb.RELATIONSHIP_STATUS_EXPIRED)
    unrelated = await world.clients(None, 1)
    problem = await fails(world.group(provider, pending + expired + unrelated))
    assert problem.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(problem) == {"client_ids[0]", "client_ids[1]", "client_ids[2]"}
    active = await world.clients(provider, 1)
    await world.group(provider, active)
    problem = await fails(world.group(provider, active))
    assert problem.code == grpc.StatusCode.ALREADY_EXISTS
    assert problem.reason == "client_already_grouped"


async def test_a_client_may_be_in_groups_of_several_providers(world: World) -> None:
    first, second = await world.provider(), await world.provider()
    [client] = await world.clients(first, 1)
    await world.relate(second, [client])
    await world.group(first, [client])
    await world.group(second, [client])


async def test_available_clients_are_searched_by_name(world: World) -> None:
    provider = await world.provider()
    tag = uuid.uuid4().hex[:6]
    names = [f"Société Générale {tag}", f"Societe Ouest {tag}", f"Boulangerie {tag}"]
    clients = await world.clients(provider, 3, names=names)
    await world.clients(provider, 1, status=pb.RELATIONSHIP_STATUS_PENDING)

    async def search(query: str) -> list[str]:
        found = await world.groups.ListAvailableClients(
            pb.ListAvailableClientsRequest(provider_id=provider.id, query=query),
            metadata=provider.manager_auth,
        )
        return [c.name for c in found.clients]

    assert await search("societe") == [names[0], names[1]]
    assert await search("BOULANG") == [names[2]]
    assert len(await search("")) == 3  # the pending one is not available
    await world.group(provider, [clients[0]])
    assert await search("societe") == [names[1]]


async def test_saving_changes_needs_the_word_confirmer(world: World) -> None:
    provider = await world.provider()
    clients = await world.clients(provider, 2)
    group = await world.group(provider, [clients[0]])
    change = pb.UpdateGroupRequest(
        provider_id=provider.id, group_id=group, add_client_ids=[clients[1]]
    )
    for word in ("", "confirmé", "SUPPRIMER"):
        change.confirmation = word
        problem = await fails(world.groups.UpdateGroup(change, metadata=provider.manager_auth))
        assert problem.code == grpc.StatusCode.INVALID_ARGUMENT
        assert fields(problem) == {"confirmation"}
    change.confirmation = "confirm"
    saved = await world.groups.UpdateGroup(change, metadata=provider.manager_auth)
    assert saved.group.client_count == 2
    # Removing ("effacer") works the same way.
    change = pb.UpdateGroupRequest(
        provider_id=provider.id,
        group_id=group,
        remove_client_ids=[clients[0]],
        confirmation=CONFIRM,
    )
    saved = await world.groups.UpdateGroup(change, metadata=provider.manager_auth)
    assert saved.group.client_count == 1


async def test_deleting_needs_the_word_supprimer(world: World) -> None:
    provider = await world.provider()
    clients = await world.clients(provider, 1)
    group = await world.group(provider, clients)
    for word in ("", "CONFIRMER", "supprime"):
        problem = await fails(
            world.groups.DeleteGroup(
                pb.DeleteGroupRequest(provider_id=provider.id, group_id=group, confirmation=word),
                metadata=provider.manager_auth,
            )
        )
        assert problem.code == grpc.StatusCode.INVALID_ARGUMENT
        assert fields(problem) == {"confirmation"}
    deleted = await world.groups.DeleteGroup(
        pb.DeleteGroupRequest(provider_id=provider.id, group_id=group, confirmation="supprimer"),
        metadata=provider.manager_auth,
    )
    assert deleted.process_request.operation == pb.OPERATION_DELETE_GROUP
    # The client is available again.
    found = await world.groups.ListAvailableClients(
        pb.ListAvailableClientsRequest(provider_id=provider.id), metadata=provider.manager_auth
    )
    assert [c.id for c in found.clients] == clients


async def test_only_assignable_employees_of_the_provider(world: World) -> None:
    provider = await world.provider()
    other = await world.provider()
    group = await world.group(provider, await world.clients(provider, 1))
    for account in (provider.manager, other.employees["editor"]):
        problem = await fails(world.assign(provider, group, account))
        assert problem.code == grpc.StatusCode.INVALID_ARGUMENT
        assert fields(problem) == {"assign[0].employee_id"}
    problem = await fails(
        world.groups.UpdateGroup(
            pb.UpdateGroupRequest(
                provider_id=provider.id,
                group_id=group,
                assign=[pb.EmployeeRole(employee_id=provider.employees["editor"].id)],
                confirmation=CONFIRM,
            ),
            metadata=provider.manager_auth,
        )
    )
    assert fields(problem) == {"assign[0].role"}
    for role, account in provider.employees.items():
        await world.assign(provider, group, account, READ_ONLY if role == "editor" else MANAGER)
    employees = await world.groups.ListEmployees(
        pb.ListEmployeesRequest(provider_id=provider.id), metadata=provider.manager_auth
    )
    assert {e.username for e in employees.employees} == {
        a.username for a in provider.employees.values()
    }
    assert all(len(e.assignments) == 1 for e in employees.employees)


async def test_dry_run_shows_the_access_summary_and_writes_nothing(world: World) -> None:
    provider = await world.provider()
    clients = await world.clients(provider, 4, accounts=5)
    group = await world.group(provider, clients[:2])
    editor, reader = provider.employees["editor"], provider.employees["read_only"]
    done = await world.assign(provider, group, editor)
    await world.finished(provider, done.process_requests[0].id)
    preview = await world.groups.UpdateGroup(
        pb.UpdateGroupRequest(
            provider_id=provider.id,
            group_id=group,
            add_client_ids=clients[2:],
            remove_client_ids=clients[:1],
            assign=[
                pb.EmployeeRole(employee_id=reader.id, role=READ_ONLY),
                pb.EmployeeRole(employee_id=editor.id, role=MANAGER),
            ],
            dry_run=True,
        ),
        metadata=provider.manager_auth,
    )
    assert not preview.process_requests
    changes = {c.username: c for c in preview.summary.changes}
    assert changes[reader.username].role_after == READ_ONLY
    assert changes[reader.username].granted == 15
    assert changes[editor.username].role_before == EDITOR
    assert changes[editor.username].role_after == MANAGER
    assert (changes[editor.username].granted, changes[editor.username].revoked) == (10, 5)
    assert changes[editor.username].role_changed == 5
    assert preview.summary.program_accounts_added == 10
    group_now = await world.groups.GetGroup(
        pb.GetGroupRequest(provider_id=provider.id, group_id=group), metadata=provider.manager_auth
    )
    assert group_now.group.client_count == 2
    assert len(group_now.group.assignments) == 1
    assert await world.grant_count(editor.id) == 10
    assert await world.grant_count(reader.id) == 0


async def test_every_change_of_access_is_applied_by_a_process_request(world: World) -> None:
    provider = await world.provider()
    clients = await world.clients(provider, 5, accounts=4)
    group = await world.group(provider, clients[:3])
    editor, manager = provider.employees["editor"], provider.employees["program_account_manager"]
    for account, role in ((editor, EDITOR), (manager, MANAGER)):
        saved = await world.assign(provider, group, account, role)
        await world.finished(provider, saved.process_requests[0].id)
    assert await world.grant_count(editor.id) == 12
    # Add two clients and remove one, in one save: two requests.
    saved = await world.groups.UpdateGroup(
        pb.UpdateGroupRequest(
            provider_id=provider.id,
            group_id=group,
            add_client_ids=clients[3:],
            remove_client_ids=clients[:1],
            confirmation=CONFIRM,
        ),
        metadata=provider.manager_auth,
    )
    operations = {r.operation for r in saved.process_requests}
    assert operations == {pb.OPERATION_ADD_CLIENTS, pb.OPERATION_REMOVE_CLIENTS}
    for request in saved.process_requests:
        assert (await world.finished(provider, request.id)).status == COMPLETED
    for account, role_name in ((editor, "editor"), (manager, "program_account_manager")):
        grants = await world.grants(employee=account.id)
        assert len(grants) == 16 and set(grants.values()) == {role_name}
    # Unassign one employee: only theirs go.
    saved = await world.groups.UpdateGroup(
        pb.UpdateGroupRequest(
            provider_id=provider.id,
            group_id=group,
            unassign_employee_ids=[editor.id],
            confirmation=CONFIRM,
        ),
        metadata=provider.manager_auth,
    )
    await world.finished(provider, saved.process_requests[0].id)
    assert await world.grant_count(editor.id) == 0
    assert await world.grant_count(manager.id) == 16
    # Delete the group: everything goes.
    deleted = await world.groups.DeleteGroup(
        pb.DeleteGroupRequest(provider_id=provider.id, group_id=group, confirmation="DELETE"),
        metadata=provider.manager_auth,
    )
    await world.finished(provider, deleted.process_request.id)
    assert await world.grants(group=group) == {}
    listed = await world.groups.ListProcessRequests(
        pb.ListProcessRequestsRequest(provider_id=provider.id, group_id=group),
        metadata=provider.manager_auth,
    )
    assert len(listed.process_requests) == 6
    assert all(r.status == COMPLETED for r in listed.process_requests)
    assert listed.process_requests[0].operation == pb.OPERATION_DELETE_GROUP
    assert listed.process_requests[0].initiator_name == provider.manager.username
    by_name = await world.groups.ListProcessRequests(
        pb.ListProcessRequestsRequest(
            provider_id=provider.id, group_name=listed.process_requests[0].group_name
        ),
        metadata=provider.manager_auth,
    )
    assert len(by_name.process_requests) == 6
    pending = await world.groups.ListProcessRequests(
        pb.ListProcessRequestsRequest(
            provider_id=provider.id, status=pb.PROCESS_REQUEST_STATUS_PENDING
        ),
        metadata=provider.manager_auth,
    )
    assert not pending.process_requests


async def test_closed_accounts_fail_and_a_retry_redoes_only_them(world: World) -> None:
    provider = await world.provider()
    clients = await world.clients(provider, 3, accounts=4, closed=1)
    group = await world.group(provider, clients)
    editor = provider.employees["editor"]
    saved = await world.assign(provider, group, editor)
    request = await world.finished(provider, saved.process_requests[0].id)
    assert request.status == FAILED
    assert (request.done, request.total, request.failed) == (12, 12, 3)
    assert await world.grant_count(editor.id) == 9
    failures = await world.groups.ListProcessRequestFailures(
        pb.ListProcessRequestFailuresRequest(
            provider_id=provider.id, process_request_id=request.id
        ),
        metadata=provider.manager_auth,
    )
    assert len(failures.failures) == 3
    assert {f.reason for f in failures.failures} == {"program_account_closed"}
    assert all(f.program_account_number.endswith("RM0000") for f in failures.failures)
    # The accounts are reopened; the retry walks those three accounts only.
    reopened = [
        pb.ClientRecord(
            id=f.client_id,
            name=f.client_name,
            program_accounts=[
                pb.ProgramAccountRecord(id=f.program_account_id, number=f.program_account_number)
            ],
        )
        for f in failures.failures
    ]
    await world.groups.RecordClients(pb.RecordClientsRequest(clients=reopened), metadata=world.ops)
    retried = await world.groups.RetryProcessRequest(
        pb.RetryProcessRequestRequest(provider_id=provider.id, process_request_id=request.id),
        metadata=provider.manager_auth,
    )
    assert retried.process_request.attempt == 2
    assert retried.process_request.workflow_id.endswith("/attempt-2")
    request = await world.finished(provider, request.id)
    assert request.status == COMPLETED
    assert (request.done, request.total, request.failed) == (3, 3, 0)
    assert await world.grant_count(editor.id) == 12
    problem = await fails(
        world.groups.RetryProcessRequest(
            pb.RetryProcessRequestRequest(provider_id=provider.id, process_request_id=request.id),
            metadata=provider.manager_auth,
        )
    )
    assert problem.code == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_role_change_rewrites_existing_grants_beside_new_ones(world: World) -> None:
    """A batch whose grants partly exist already (the plain insert fails on the key) is written
    again as an upsert: existing grants take the new role, missing ones are added, nothing fails.
    A client moving in from another group of the provider takes its grants along."""
    provider = await world.provider()
    clients = await world.clients(provider, 4, accounts=5)
    group, other = (
        await world.group(provider, clients[:2]),
        await world.group(provider, clients[2:3]),
    )
    editor = provider.employees["editor"]
    for target in (group, other):
        saved = await world.assign(provider, target, editor)
        assert (await world.finished(provider, saved.process_requests[0].id)).status == COMPLETED
    assert await world.grant_count(editor.id) == 15
    # One save: a client moves in from the other group, another is added, the role changes.
    left = await world.groups.UpdateGroup(
        pb.UpdateGroupRequest(
            provider_id=provider.id,
            group_id=other,
            remove_client_ids=clients[2:3],
            confirmation=CONFIRM,
        ),
        metadata=provider.manager_auth,
    )
    saved = await world.groups.UpdateGroup(
        pb.UpdateGroupRequest(
            provider_id=provider.id,
            group_id=group,
            add_client_ids=clients[2:],
            assign=[pb.EmployeeRole(employee_id=editor.id, role=MANAGER)],
            confirmation=CONFIRM,
        ),
        metadata=provider.manager_auth,
    )
    assert {r.operation for r in saved.process_requests} == {
        pb.OPERATION_ADD_CLIENTS,
        pb.OPERATION_ASSIGN_EMPLOYEES,
    }
    for request in [*left.process_requests, *saved.process_requests]:
        finished = await world.finished(provider, request.id)
        assert finished.status == COMPLETED and finished.failed == 0, finished
        assert finished.done == finished.total
    grants = await world.grants(employee=editor.id)
    assert len(grants) == 20
    assert set(grants.values()) == {"program_account_manager"}
    assert await world.grants(group=other) == {}
    assert len(await world.grants(group=group)) == 20


async def test_new_program_accounts_of_a_grouped_client_are_delegated(world: World) -> None:
    provider = await world.provider()
    [client] = await world.clients(provider, 1, accounts=2)
    group = await world.group(provider, [client])
    editor = provider.employees["editor"]
    saved = await world.assign(provider, group, editor)
    await world.finished(provider, saved.process_requests[0].id)
    recorded = await world.groups.RecordClients(
        pb.RecordClientsRequest(
            clients=[
                pb.ClientRecord(
                    id=client,
                    name="Renamed client",
                    program_accounts=[
                        pb.ProgramAccountRecord(id=str(uuid.uuid4()), number="1RP0001")
                    ],
                )
            ]
        ),
        metadata=world.ops,
    )
    [request_id] = recorded.process_request_ids
    await world.finished(provider, request_id)
    assert await world.grant_count(editor.id) == 3


async def test_internal_calls_refuse_user_tokens(world: World) -> None:
    provider = await world.provider()
    for metadata in (provider.manager_auth, world.ops):
        problem = await fails(
            world.groups.ApplyDelegationBatch(
                pb.ApplyDelegationBatchRequest(
                    process_request_id=str(uuid.uuid4()), attempt=1, limit=10
                ),
                metadata=metadata,
            )
        )
        assert problem.code == grpc.StatusCode.PERMISSION_DENIED
    problem = await fails(
        world.groups.RecordClients(
            pb.RecordClientsRequest(clients=[pb.ClientRecord(id=str(uuid.uuid4()), name="X")]),
            metadata=provider.manager_auth,
        )
    )
    assert problem.code == grpc.StatusCode.PERMISSION_DENIED
    problem = await fails(
        world.groups.ExpireRelationship(
            pb.ExpireRelationshipRequest(relationship_id=str(uuid.uuid4()), term=1),
            metadata=provider.manager_auth,
        )
    )
    assert problem.code == grpc.StatusCode.PERMISSION_DENIED


async def test_a_replayed_batch_applies_nothing_twice(world: World) -> None:
    """The worker's call retried after its batch committed: cursor and progress stay exact."""
    provider = await world.provider()
    clients = await world.clients(provider, 4, accounts=5)
    group = await world.group(provider, clients)
    async with world.sessions.begin() as session:
        from services.groups.domain.process_requests import record_request
        from services.groups.models import ClientGroup, Operation

        found = await session.get(ClientGroup, uuid.UUID(group))
        assert found is not None
        # A request recorded without its outbox start, driven by hand below.
        request = await record_request(
            session,
            datetime.now(UTC),
            f"nobody-{uuid.uuid4()}",
            found,
            Operation.ASSIGN_EMPLOYEES,
            ("test", "test"),
            "by hand",
            employees=[],
        )
    service = await world.service()
    first = await world.groups.ApplyDelegationBatch(
        pb.ApplyDelegationBatchRequest(process_request_id=str(request.id), attempt=1, limit=8),
        metadata=service,
    )
    assert (first.progress.processed, first.progress.done) == (8, 8)
    again = await world.groups.ApplyDelegationBatch(
        pb.ApplyDelegationBatchRequest(process_request_id=str(request.id), attempt=1, limit=8),
        metadata=service,
    )
    assert (again.progress.processed, again.progress.done) == (0, 8)
    assert again.progress.next_cursor == first.progress.next_cursor
    cursor = first.progress.next_cursor
    while True:
        step = await world.groups.ApplyDelegationBatch(
            pb.ApplyDelegationBatchRequest(
                process_request_id=str(request.id), attempt=1, after_cursor=cursor, limit=8
            ),
            metadata=service,
        )
        cursor = step.progress.next_cursor
        if step.progress.finished:
            break
    assert (step.progress.done, step.progress.total) == (20, 20)
    assert step.progress.status == COMPLETED
    problem = await fails(
        world.groups.ApplyDelegationBatch(
            pb.ApplyDelegationBatchRequest(process_request_id=str(request.id), attempt=2, limit=8),
            metadata=service,
        )
    )
    assert problem.code == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_batch_that_keeps_failing_is_recorded_and_retried_alone(world: World) -> None:
    provider = await world.provider()
    clients = await world.clients(provider, 2, accounts=5)
    group = await world.group(provider, clients)
    async with world.sessions.begin() as session:
        from services.groups.domain.process_requests import record_request
        from services.groups.models import ClientGroup, Operation

        found = await session.get(ClientGroup, uuid.UUID(group))
        assert found is not None
        request = await record_request(
            session,
            datetime.now(UTC),
            f"nobody-{uuid.uuid4()}",
            found,
            Operation.ASSIGN_EMPLOYEES,
            ("test", "test"),
            "by hand",
            employees=[],
        )
    service = await world.service()
    failed = await world.groups.FailDelegationBatch(
        pb.FailDelegationBatchRequest(
            process_request_id=str(request.id), attempt=1, limit=4, message="database on fire"
        ),
        metadata=service,
    )
    assert (failed.progress.processed, failed.progress.failed) == (4, 4)
    # A replay with the old cursor records nothing more.
    again = await world.groups.FailDelegationBatch(
        pb.FailDelegationBatchRequest(
            process_request_id=str(request.id), attempt=1, limit=4, message="again"
        ),
        metadata=service,
    )
    assert (again.progress.processed, again.progress.failed) == (0, 4)
    rest = await world.groups.ApplyDelegationBatch(
        pb.ApplyDelegationBatchRequest(
            process_request_id=str(request.id),
            attempt=1,
            after_cursor=failed.progress.next_cursor,
            limit=100,
        ),
        metadata=service,
    )
    assert rest.progress.status == FAILED
    assert (rest.progress.done, rest.progress.failed) == (10, 4)
    failures = await world.groups.ListProcessRequestFailures(
        pb.ListProcessRequestFailuresRequest(
            provider_id=provider.id, process_request_id=str(request.id)
        ),
        metadata=provider.manager_auth,
    )
    assert {f.reason for f in failures.failures} == {"batch_failed"}
    assert {f.message for f in failures.failures} == {"database on fire"}


async def test_relationship_ending_takes_the_client_out_and_revokes(world: World) -> None:
    provider = await world.provider()
    clients = await world.clients(provider, 2, accounts=3)
    group = await world.group(provider, clients)
    editor = provider.employees["editor"]
    saved = await world.assign(provider, group, editor)
    await world.finished(provider, saved.process_requests[0].id)
    assert await world.grant_count(editor.id) == 6
    await world.relate(provider, clients[:1], status=pb.RELATIONSHIP_STATUS_EXPIRED)
    listed = await world.groups.ListProcessRequests(
        pb.ListProcessRequestsRequest(provider_id=provider.id, group_id=group),
        metadata=provider.manager_auth,
    )
    expired = [
        r for r in listed.process_requests if r.operation == pb.OPERATION_RELATIONSHIP_EXPIRED
    ]
    assert len(expired) == 1
    await world.finished(provider, expired[0].id)
    assert await world.grant_count(editor.id) == 3
    relationships = await world.groups.ListRelationships(
        pb.ListRelationshipsRequest(provider_id=provider.id, status=pb.RELATIONSHIP_STATUS_EXPIRED),
        metadata=provider.manager_auth,
    )
    assert [r.client.id for r in relationships.relationships] == clients[:1]
    assert relationships.relationships[0].group_id == ""


async def test_concurrent_changes_of_one_group_converge(world: World) -> None:
    """Requests of one group run in any order; the grants end up matching the group."""
    provider = await world.provider()
    clients = await world.clients(provider, 6, accounts=10)
    group = await world.group(provider, clients[:3])
    editor, reader = provider.employees["editor"], provider.employees["read_only"]
    saves: list[pb.UpdateGroupResponse] = list(
        await asyncio.gather(
            world.assign(provider, group, editor),
            world.groups.UpdateGroup(
                pb.UpdateGroupRequest(
                    provider_id=provider.id,
                    group_id=group,
                    add_client_ids=clients[3:],
                    confirmation=CONFIRM,
                ),
                metadata=provider.manager_auth,
            ),
            world.assign(provider, group, reader, READ_ONLY),
        )
    )
    saves.append(
        await world.groups.UpdateGroup(
            pb.UpdateGroupRequest(
                provider_id=provider.id,
                group_id=group,
                remove_client_ids=clients[:1],
                confirmation=CONFIRM,
            ),
            metadata=provider.manager_auth,
        )
    )
    for save in saves:
        for request in save.process_requests:
            await world.finished(provider, request.id)
    assert await world.grant_count(editor.id) == 50
    assert await world.grant_count(reader.id) == 50
    assert set((await world.grants(employee=reader.id)).values()) == {"read_only"}
