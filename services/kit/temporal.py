"""The Temporal client every process uses: traced, on the configured namespace."""

from __future__ import annotations

from temporalio.client import Client

from services.kit.settings import CommonSettings
from services.kit.telemetry import temporal_interceptors


async def connect_temporal(settings: CommonSettings) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        interceptors=temporal_interceptors(),
    )
