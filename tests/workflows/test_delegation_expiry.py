"""Relationship expiry on Temporal's time-skipping server: a month passes in seconds, the client
leaves the provider's group and its access is revoked, without anyone asking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from guichet.groups.v1 import groups_pb2 as pb
from temporalio.testing import WorkflowEnvironment

from services.kit.smtpsink import SmtpSink
from services.kit.testing import DatabaseServer, skip_time
from tests.groups.harness import COMPLETED, register_search_attributes, running_world


async def test_expiry_removes_the_client_and_revokes_its_access(
    pg: DatabaseServer, time_skipping_env: WorkflowEnvironment, smtp_sink: SmtpSink
) -> None:
    await register_search_attributes(time_skipping_env.client)
    async with running_world(pg, time_skipping_env.client, smtp_sink) as world:
        provider = await world.provider()
        in_a_month = datetime.now(UTC) + timedelta(days=30)
        clients = await world.clients(provider, 2, accounts=3, expire_time=in_a_month)
        group = await world.group(provider, clients)
        editor = provider.employees["editor"]
        saved = await world.assign(provider, group, editor)
        await world.finished(provider, saved.process_requests[0].id)
        assert await world.grant_count(editor.id) == 6
        # The second client renews for a year: its first timer becomes a no-op.
        renewed = await world.relate(
            provider, clients[1:], expire_time=in_a_month + timedelta(days=365)
        )
        relationships = await world.groups.ListRelationships(
            pb.ListRelationshipsRequest(provider_id=provider.id), metadata=provider.manager_auth
        )
        ids = {r.client.id: r.id for r in relationships.relationships}
        assert renewed.relationships[0].id == ids[clients[1]]

        expiring = time_skipping_env.client.get_workflow_handle(
            f"relationship-expiry/{ids[clients[0]]}/1"
        )
        # A month and a day pass in seconds: both first-term timers fire.
        await skip_time(time_skipping_env, timedelta(days=31).total_seconds())
        assert await expiring.result() == 1  # a month skipped; one revocation recorded
        outdated = time_skipping_env.client.get_workflow_handle(
            f"relationship-expiry/{ids[clients[1]]}/1"
        )
        assert await outdated.result() == -1

        listed = await world.groups.ListProcessRequests(
            pb.ListProcessRequestsRequest(provider_id=provider.id, group_id=group),
            metadata=provider.manager_auth,
        )
        [revocation] = [
            r for r in listed.process_requests if r.operation == pb.OPERATION_RELATIONSHIP_EXPIRED
        ]
        assert revocation.initiator_name == "system"
        assert (await world.finished(provider, revocation.id)).status == COMPLETED
        grants = await world.grants(employee=editor.id)
        assert len(grants) == 3
        read = await world.groups.GetGroup(
            pb.GetGroupRequest(provider_id=provider.id, group_id=group),
            metadata=provider.manager_auth,
        )
        assert read.group.client_count == 1
        expired = await world.groups.ListRelationships(
            pb.ListRelationshipsRequest(
                provider_id=provider.id, status=pb.RELATIONSHIP_STATUS_EXPIRED
            ),
            metadata=provider.manager_auth,
        )
        assert [r.client.id for r in expired.relationships] == clients[:1]
