"""The Temporal worker: every workflow and activity of Guichet, on one task queue.

`python -m workflows.worker`. Later processes (delegation, SLA, renewals, escalation) add their
workflow classes and activity objects to `build_worker`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from datetime import timedelta
from typing import Any

import holidays
from guichet.groups.v1 import groups_pb2_grpc
from guichet.partners.v1 import partners_pb2_grpc
from guichet.support.v1 import support_pb2_grpc
from prometheus_client import REGISTRY
from temporalio.client import Client
from temporalio.worker import PollerBehaviorAutoscaling, Worker

from services.kit.grpcclient import ServiceTokenSource, create_channel
from services.kit.identity_client import connect_identity
from services.kit.logs import configure_logging
from services.kit.mail import SmtpSender
from services.kit.metrics import serve_metrics
from services.kit.serving import ready_to_serve
from services.kit.settings import load_settings
from services.kit.telemetry import setup_telemetry, shutdown_telemetry
from services.kit.temporal import (
    TemporalSdkMetrics,
    connect_temporal,
    ensure_search_attributes,
)
from workflows.delegation import Delegation, RelationshipExpiry
from workflows.groups_activities import GroupsActivities
from workflows.mail import DeliverMail, MailActivities
from workflows.membership_activities import MembershipActivities
from workflows.order_escalation import OrderEscalation
from workflows.partners import OpenPartnerTicket, ReactivateProduct
from workflows.partners_activities import PartnersActivities
from workflows.renewal import Renewal
from workflows.settings import WorkerSettings
from workflows.support_activities import SupportActivities
from workflows.ticket_sla import TicketSla

log = logging.getLogger(__name__)

WORKFLOWS: list[type[Any]] = [
    DeliverMail,
    Delegation,
    RelationshipExpiry,
    TicketSla,
    Renewal,
    OrderEscalation,
    OpenPartnerTicket,
    ReactivateProduct,
]


def preload() -> None:
    """Imports, once and before polling, what a workflow's first task would otherwise import:
    checking a calendar's country (`business_time.spec_problems`) loads every country module of
    `holidays`, seconds of CPU on a busy machine, which inside the first TicketSla task of a
    fresh worker tripped the SDK's 2-second deadlock detector and failed the task."""
    holidays.list_supported_countries()


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
    preload()
    mail = MailActivities(
        SmtpSender(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_sender,
            starttls=settings.smtp_starttls,
        ),
        settings.mail_sealing_key,
    )
    groups = GroupsActivities(
        groups_pb2_grpc.GroupsServiceStub(
            create_channel(
                settings.groups_addr,
                default_timeout=settings.grpc_default_timeout,
                tokens=tokens,
            )
        ),
        batch_size=settings.delegation_batch_size,
        batches_per_activity=settings.delegation_batches_per_activity,
    )
    support = SupportActivities(
        create_channel(
            settings.support_addr, default_timeout=settings.grpc_default_timeout, tokens=tokens
        )
    )
    membership = MembershipActivities(
        create_channel(
            settings.membership_addr, default_timeout=settings.grpc_default_timeout, tokens=tokens
        )
    )
    partners = PartnersActivities(
        partners_pb2_grpc.PartnersServiceStub(
            create_channel(
                settings.partners_addr, default_timeout=settings.grpc_default_timeout, tokens=tokens
            )
        ),
        support_pb2_grpc.SupportServiceStub(
            create_channel(
                settings.support_addr, default_timeout=settings.grpc_default_timeout, tokens=tokens
            )
        ),
    )
    return Worker(
        client,
        task_queue=task_queue or settings.temporal_task_queue,
        workflows=WORKFLOWS,
        max_cached_workflows=settings.max_cached_workflows,
        max_concurrent_workflow_tasks=settings.workflow_task_slots,
        max_concurrent_local_activities=settings.local_activity_slots,
        sticky_queue_schedule_to_start_timeout=timedelta(
            seconds=settings.sticky_schedule_to_start_seconds
        ),
        # Pollers follow the backlog (1 to WORKFLOW_TASK_POLLERS_MAX): a burst of timers (10,000
        # SLA workflows) is drained at once instead of queueing behind five long polls.
        workflow_task_poller_behavior=PollerBehaviorAutoscaling(
            maximum=settings.workflow_task_pollers_max
        ),
        activities=[
            mail.send_mail,
            groups.apply_delegation_batches,
            groups.fail_delegation_batch,
            groups.expire_relationship,
            support.record_sla_event,
            membership.renewal_state,
            membership.send_anniversary_letter,
            membership.open_removal_window,
            membership.close_removal_window,
            *partners.all(),
        ],
    )


async def _run(settings: WorkerSettings) -> None:
    runtime = None
    sdk_metrics = None
    if settings.metrics_port is not None:
        # One /metrics: the SDK's own (pollers, task slots, schedule-to-start latencies),
        # forwarded into this process's registry beside its gRPC client calls to the services.
        sdk_metrics = TemporalSdkMetrics()
        runtime = sdk_metrics.runtime()
        REGISTRY.register(sdk_metrics)
        sdk_metrics.start()
    client = await connect_temporal(settings, runtime=runtime)
    if settings.metrics_port is not None:
        # Served once connected: the chart probes the worker on this port.
        serve_metrics(settings.metrics_port)
    if added := await ensure_search_attributes(client):
        log.info("registered search attributes", extra={"names": added})
    identity = connect_identity(settings)
    worker = build_worker(client, settings, tokens=identity.tokens)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    ready_to_serve(gil_switch_interval_ms=settings.gil_switch_interval_ms)
    gc.set_threshold(*settings.gc_thresholds)
    async with worker:
        log.info("worker polling", extra={"task_queue": settings.temporal_task_queue})
        await stop.wait()
        log.info("worker draining")
    await identity.close()
    if sdk_metrics is not None:
        await sdk_metrics.stop()


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
