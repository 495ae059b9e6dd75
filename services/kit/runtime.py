"""The life of one service process, the same for all five: `python -m services.<name> [migrate]`.

`ServiceSpec` is what a service declares (its settings class, how to build its servicer, its
migrations); `main` does the rest: settings, logs, traces, engine, migrations on request, the
outbox relay, the gRPC server, and a graceful drain on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from prometheus_client import REGISTRY
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.kit.auth import TokenVerifier
from services.kit.clock import Clock, system_clock
from services.kit.db import create_engine, create_session_factory, upgrade
from services.kit.grpcserver import RunningServer, serve_until_signalled, start_server
from services.kit.logs import configure_logging
from services.kit.metrics import outbox_gauges, serve_metrics, watch_pool
from services.kit.outbox import OutboxRelay
from services.kit.serving import ready_to_serve, running_loop_name
from services.kit.settings import ServiceSettings, load_settings
from services.kit.telemetry import instrument_engine, setup_telemetry, shutdown_telemetry
from services.kit.temporal import connect_temporal
from services.kit.workers import die_with_parent, supervise, worker_index

log = logging.getLogger(__name__)


@dataclass
class ServiceContext:
    """What a servicer is built from; closed in reverse order when the process stops."""

    settings: ServiceSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    exit_stack: AsyncExitStack
    relay: OutboxRelay | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    # The one clock the servicer reads (`services.kit.clock`): the wall clock in a process, a
    # pinned one in tests on Temporal's time-skipping server.
    clock: Clock = system_clock


@dataclass
class Wiring:
    """A built service: how to register it, which names to publish, how calls are verified."""

    register: Callable[[grpc.aio.Server], None]
    service_names: Iterable[str]
    verifier: TokenVerifier
    public_methods: Iterable[str] = ()


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    settings_class: type[ServiceSettings]
    migrations_dir: Path
    build: Callable[[ServiceContext], Awaitable[Wiring]]
    outbox: Table | None = None


async def open_context(
    spec: ServiceSpec, settings: ServiceSettings, *, clock: Clock = system_clock
) -> ServiceContext:
    exit_stack = AsyncExitStack()
    engine = create_engine(
        settings.database_url, pool_size=settings.db_pool_size, service=spec.name
    )
    exit_stack.push_async_callback(engine.dispose)
    instrument_engine(engine)
    sessions = create_session_factory(engine)
    relay = None
    if spec.outbox is not None:
        relay = OutboxRelay(sessions, spec.outbox, lambda: connect_temporal(settings))
    return ServiceContext(settings, engine, sessions, exit_stack, relay, clock=clock)


async def start_service(
    spec: ServiceSpec, settings: ServiceSettings, *, clock: Clock = system_clock
) -> tuple[ServiceContext, RunningServer]:
    """Starts the service in this event loop (also how tests run it, on port 0, and with a clock
    they set: processes always run on `system_clock`)."""
    context = await open_context(spec, settings, clock=clock)
    wiring = await spec.build(context)
    if context.relay is not None:
        relay_task = asyncio.create_task(context.relay.run(), name=f"{spec.name}-outbox")

        async def stop_relay() -> None:
            relay_task.cancel()
            await asyncio.gather(relay_task, return_exceptions=True)

        context.exit_stack.push_async_callback(stop_relay)
    running = await start_server(
        register=wiring.register,
        service_names=wiring.service_names,
        verifier=wiring.verifier,
        public_methods=wiring.public_methods,
        host=settings.grpc_host,
        port=settings.grpc_port,
        grace=settings.shutdown_grace,
        reuse_port=settings.workers > 1,
    )
    return context, running


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when installed (a runtime dependency, as the gateway's uvicorn picks it),
    else asyncio's own. Why (docs/performance.md, "Login CPU, session 8"): asyncpg's protocol and
    the socket grpc.aio's polling thread wakes the loop through cost less on uvloop's C
    transports; identity's event loop spent about a tenth less CPU per sign-in."""
    try:
        import uvloop
    except ImportError:  # not a dependency on Windows
        return None
    return uvloop.new_event_loop


async def _serve(spec: ServiceSpec, settings: ServiceSettings) -> None:
    if worker_index() is not None:
        die_with_parent()
    context, running = await start_service(spec, settings)
    if settings.metrics_port is not None and not worker_index():
        port = serve_metrics(settings.metrics_port)
        context.exit_stack.callback(watch_pool(spec.name, context.engine))
        if spec.outbox is not None:
            backlog = outbox_gauges(context.sessions, spec.outbox, spec.name)
            await backlog.start()
            context.exit_stack.push_async_callback(backlog.stop)
            REGISTRY.register(backlog)
            context.exit_stack.callback(REGISTRY.unregister, backlog)
        log.info("metrics served", extra={"metrics_port": port})
    log.info("serving", extra={"grpc_port": running.port, "event_loop": running_loop_name()})
    ready_to_serve(gil_switch_interval_ms=settings.gil_switch_interval_ms)
    try:
        await serve_until_signalled(running)
    finally:
        await context.exit_stack.aclose()


def main(spec: ServiceSpec, argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m services.{spec.name}")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    command = parser.parse_args(argv).command
    settings = load_settings(spec.settings_class, service_name=spec.name)
    configure_logging(spec.name, level=settings.log_level, json_lines=settings.log_json)
    rc = 0
    try:
        if command == "migrate":
            asyncio.run(upgrade(spec.migrations_dir, settings.database_url))
            log.info("migrations applied")
        elif settings.workers > 1 and worker_index() is None:
            # The supervisor: N copies of this process share the gRPC port (SO_REUSEPORT).
            rc = supervise(
                f"services.{spec.name}", settings.workers, settings.grpc_port, settings.grpc_host
            )
        else:
            setup_telemetry(spec.name, otlp_endpoint=settings.otel_exporter_otlp_endpoint)
            with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
                runner.run(_serve(spec, settings))
    except KeyboardInterrupt:
        pass
    except Exception:
        log.exception("%s stopped on an error", spec.name)
        rc = 1
    finally:
        shutdown_telemetry()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    # grpc and temporalio threads can abort interpreter exit (sdk-python #300): leave now.
    os._exit(rc)
