"""Search attributes are registered by the project, even on a server that predates them."""

from __future__ import annotations

import uuid

from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.testing import WorkflowEnvironment

from services.kit.binaries import temporal_cli
from services.kit.temporal import GROUP, SEARCH_ATTRIBUTES, ensure_search_attributes


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
    finally:
        await env.shutdown()
