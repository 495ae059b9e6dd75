"""Search attributes are registered by the project, even on a server that predates them."""

from __future__ import annotations

import uuid
from collections import Counter

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.common import (
    SearchAttributeIndexedValueType,
    SearchAttributePair,
    TypedSearchAttributes,
)
from temporalio.testing import WorkflowEnvironment

from services.kit.binaries import temporal_cli
from services.kit.temporal import (
    DEV_RETENTION_DAYS,
    GROUP,
    SEARCH_ATTRIBUTES,
    ensure_retention,
    ensure_search_attributes,
)


async def test_missing_search_attributes_are_registered_once() -> None:
    """A dev server started without the flags (as a `.state` database kept from before an
    attribute existed) refuses any start that sets one, until the worker or `make dev` adds it."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(), dev_server_extra_args=["--log-level", "error"]
    )
    try:
        client = env.client
        added = await ensure_search_attributes(client)
        assert added == sorted(key.name for key in SEARCH_ATTRIBUTES)
        assert await ensure_search_attributes(client) == []
        handle = await client.start_workflow(
            "NobodyRunsThis",
            id=f"sa-test/{uuid.uuid4()}",
            task_queue=f"nobody-polls-{uuid.uuid4()}",
            search_attributes=TypedSearchAttributes([SearchAttributePair(GROUP, "Transitaires")]),
        )
        described = await handle.describe()
        assert described.typed_search_attributes.get(GROUP) == "Transitaires"
        # Closed runs vanish after the dev server's one day unless make dev keeps them longer.
        assert await ensure_retention(client) is True
        assert await ensure_retention(client) is False
        namespace = await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=client.namespace)
        )
        kept = namespace.config.workflow_execution_retention_ttl.ToTimedelta()
        assert kept.days == DEV_RETENTION_DAYS
    finally:
        await env.shutdown()


def test_the_registry_fits_a_namespace_on_sql_visibility() -> None:
    """SQLite, PostgreSQL and MySQL visibility hold 10 custom Keyword attributes per namespace
    and 3 of each other type: one more and the worker's registration is refused."""
    by_type = Counter(key.indexed_value_type for key in SEARCH_ATTRIBUTES)
    assert by_type[SearchAttributeIndexedValueType.KEYWORD] <= 10
    assert all(count <= 3 for kind, count in by_type.items() if kind.name != "KEYWORD")
    assert len({key.name for key in SEARCH_ATTRIBUTES}) == len(SEARCH_ATTRIBUTES)
