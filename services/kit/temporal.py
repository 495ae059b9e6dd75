"""The Temporal client every process uses: traced, on the configured namespace."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from services.kit.settings import CommonSettings
from services.kit.telemetry import temporal_interceptors

# Business keys an operator searches workflows by in the Temporal UI (registered by `make dev`
# and the tests; in production by the chart's set-up job). Workflows upsert the ones they know.
PROCESS_REQUEST_ID = SearchAttributeKey.for_keyword("GuichetProcessRequestId")
GROUP = SearchAttributeKey.for_keyword("GuichetGroup")
TICKET = SearchAttributeKey.for_keyword("GuichetTicket")
ORDER = SearchAttributeKey.for_keyword("GuichetOrder")
MEMBERSHIP = SearchAttributeKey.for_keyword("GuichetMembership")
TENANT = SearchAttributeKey.for_keyword("GuichetTenant")
SEARCH_ATTRIBUTES = (PROCESS_REQUEST_ID, GROUP, TICKET, ORDER, MEMBERSHIP, TENANT)


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
