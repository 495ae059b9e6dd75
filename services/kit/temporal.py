"""The Temporal client every process uses: traced, on the configured namespace."""

from __future__ import annotations

import logging

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import RPCError, RPCStatusCode

from services.kit.settings import CommonSettings
from services.kit.telemetry import temporal_interceptors

log = logging.getLogger(__name__)

# Business keys an operator searches workflows by in the Temporal UI (registered by the worker
# at start, `ensure_search_attributes`, and by the dev server's flags). Outbox starts set them,
# and workflows upsert the ones they learn.
PROCESS_REQUEST_ID = SearchAttributeKey.for_keyword("GuichetProcessRequestId")
GROUP = SearchAttributeKey.for_keyword("GuichetGroup")
TICKET = SearchAttributeKey.for_keyword("GuichetTicket")
# The number people quote ("ticket #1042"), as a keyword: `GuichetTicketNumber = '1042'`.
TICKET_NUMBER = SearchAttributeKey.for_keyword("GuichetTicketNumber")
ORDER = SearchAttributeKey.for_keyword("GuichetOrder")
MEMBERSHIP = SearchAttributeKey.for_keyword("GuichetMembership")
TENANT = SearchAttributeKey.for_keyword("GuichetTenant")
SEARCH_ATTRIBUTES = (PROCESS_REQUEST_ID, GROUP, TICKET, TICKET_NUMBER, ORDER, MEMBERSHIP, TENANT)


async def ensure_search_attributes(client: Client) -> list[str]:
    """Registers the search attributes above that the namespace lacks; returns their names.

    The dev server registers them from its flags only when it creates its database (a `.state`
    kept from before one was added has none), and a cluster has them only once someone adds
    them: without them every start that sets one, and every upsert, is refused. Where the
    operator API is closed to us (Temporal Cloud), they must be added by hand: a warning says so.
    """
    namespace = client.namespace
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
        missing = {
            key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
            for key in SEARCH_ATTRIBUTES
            if key.name not in listed.custom_attributes
        }
        if missing:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
            )
    except RPCError as error:
        if error.status not in (RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNIMPLEMENTED):
            raise
        log.warning(
            "cannot register search attributes; add them to the namespace by hand",
            extra={"names": [key.name for key in SEARCH_ATTRIBUTES], "error": error.message},
        )
        return []
    return sorted(missing)


def dev_server_search_attribute_args() -> list[str]:
    """`temporal server start-dev` flags that register every search attribute above."""
    args: list[str] = []
    for key in SEARCH_ATTRIBUTES:
        args += ["--search-attribute", f"{key.name}=Keyword"]
    return args


def prometheus_runtime(port: int, host: str = "0.0.0.0") -> Runtime:  # noqa: S104
    """A Temporal runtime that serves the SDK's own metrics (polls, task latencies, slots…)."""
    return Runtime(
        telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"{host}:{port}"))
    )


async def connect_temporal(settings: CommonSettings, *, runtime: Runtime | None = None) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        interceptors=temporal_interceptors(),
        runtime=runtime,
    )
