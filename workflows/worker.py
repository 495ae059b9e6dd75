"""The Temporal worker: every workflow and activity of Guichet, on one task queue.

`python -m workflows.worker`. Later processes (delegation, SLA, renewals, escalation) add their
workflow classes and activity objects to `build_worker`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from services.kit.grpcclient import ServiceTokenSource
from services.kit.identity_client import connect_identity
from services.kit.logs import configure_logging
from services.kit.mail import SmtpSender
from services.kit.settings import load_settings
from services.kit.telemetry import setup_telemetry, shutdown_telemetry
from services.kit.temporal import connect_temporal, prometheus_runtime
from workflows.mail import DeliverMail, MailActivities
from workflows.settings import WorkerSettings

log = logging.getLogger(__name__)

WORKFLOWS: list[type[Any]] = [DeliverMail]


def build_worker(
    client: Client,
    settings: WorkerSettings,
    *,
    task_queue: str | None = None,
    tokens: ServiceTokenSource | None = None,
) -> Worker:
    """Every workflow and activity. Activities that call services get channels made with
    `create_channel(settings.<service>_addr, tokens=tokens)`: deadlines and the worker's own
    service token on every call."""
    mail = MailActivities(
        SmtpSender(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_sender,
            starttls=settings.smtp_starttls,
        ),
        settings.mail_sealing_key,
    )
    return Worker(
        client,
        task_queue=task_queue or settings.temporal_task_queue,
        workflows=WORKFLOWS,
        activities=[mail.send_mail],
    )


async def _run(settings: WorkerSettings) -> None:
    runtime = None
    if settings.metrics_port is not None:
        # The SDK serves /metrics itself: pollers, task slots, schedule-to-start latencies.
        runtime = prometheus_runtime(settings.metrics_port)
    client = await connect_temporal(settings, runtime=runtime)
    identity = connect_identity(settings)
    worker = build_worker(client, settings, tokens=identity.tokens)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        log.info("worker polling", extra={"task_queue": settings.temporal_task_queue})
        await stop.wait()
        log.info("worker draining")
    await identity.close()


def main() -> None:
    settings = load_settings(WorkerSettings, service_name="worker")
    configure_logging("worker", level=settings.log_level, json_lines=settings.log_json)
    setup_telemetry("worker", otlp_endpoint=settings.otel_exporter_otlp_endpoint)
    rc = 0
    try:
        asyncio.run(_run(settings))
    except KeyboardInterrupt:
        pass
    except Exception:
        log.exception("worker stopped on an error")
        rc = 1
    finally:
        shutdown_telemetry()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(rc)  # sdk-python #300: the SDK's threads can abort a normal interpreter exit.


if __name__ == "__main__":
    main()
