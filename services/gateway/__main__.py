"""`python -m services.gateway [serve|migrate]`: uvicorn on HTTP_PORT (or GATEWAY_PORT, default
8000); `migrate` applies the gateway's Alembic migrations (its Idempotency-Key store) to
DATABASE_URL, as every service's `migrate` does.

GUICHET_WORKERS > 1 starts that many copies of it sharing the port (`services.kit.workers`).
SIGTERM stops accepting connections, lets in-flight requests finish within SHUTDOWN_GRACE, runs
the lifespan's close (identity channel), flushes traces, and leaves.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from services.gateway.app import create_app
from services.gateway.models import MIGRATIONS_DIR
from services.gateway.settings import GatewaySettings
from services.kit.db import upgrade
from services.kit.logs import configure_logging
from services.kit.metrics import serve_metrics
from services.kit.serving import ready_to_serve, running_loop_name
from services.kit.settings import load_settings
from services.kit.telemetry import setup_telemetry, shutdown_telemetry
from services.kit.workers import reuse_port_socket, supervise, worker_index

log = logging.getLogger("services.gateway")


class DrainingServer(uvicorn.Server):
    """uvicorn re-raises a caught SIGTERM after draining, which would kill the process before
    traces are flushed; this server drains and returns instead."""

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        # Which loop serves is said from inside it: `asyncio.run(server.serve())` once ran
        # asyncio's own loop here while uvicorn's `loop="auto"` read as uvloop.
        log.info("gateway serving", extra={"event_loop": running_loop_name()})
        await super().serve(sockets)

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def uvicorn_config(app: Any, settings: GatewaySettings) -> uvicorn.Config:
    """How the gateway's uvicorn runs (also the bench's profiled copy): uvloop and httptools when
    installed (`auto`), our logging, no proxy headers, no server header."""
    return uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        lifespan="on",
        loop="auto",
        http="auto",
        log_config=None,  # our JSON logging, configured above
        access_log=False,  # RequestContext logs one line per request, with its request id
        proxy_headers=False,  # the client address comes from TRUSTED_PROXY_COUNT only
        server_header=False,
        timeout_graceful_shutdown=settings.shutdown_grace,
    )


def _require_database(settings: GatewaySettings) -> str:
    """The gateway keeps Idempotency-Keys in PostgreSQL: without it, retries are not safe."""
    if not settings.database_url:
        print(
            "GatewaySettings: invalid configuration\n"
            "  DATABASE_URL: required (the gateway's PostgreSQL database holds the "
            "Idempotency-Key store that every replica shares)",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return settings.database_url


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.gateway")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    command = parser.parse_args(argv).command
    settings = load_settings(GatewaySettings)
    configure_logging(settings.service_name, level=settings.log_level, json_lines=settings.log_json)
    database_url = _require_database(settings)
    if command == "migrate":
        rc = 0
        try:
            asyncio.run(upgrade(MIGRATIONS_DIR, database_url))
            log.info("migrations applied")
        except Exception:
            log.exception("gateway migrations failed")
            rc = 1
        logging.shutdown()
        os._exit(rc)
    if settings.workers > 1 and worker_index() is None:
        # The supervisor: N copies of this process share the port (SO_REUSEPORT).
        os._exit(
            supervise("services.gateway", settings.workers, settings.http_port, settings.http_host)
        )
    setup_telemetry(settings.service_name, otlp_endpoint=settings.otel_exporter_otlp_endpoint)
    rc = 0
    try:
        server = DrainingServer(uvicorn_config(create_app(settings), settings))
        if settings.metrics_port is not None and not worker_index():
            # Its own port, so that /metrics never goes out through the Ingress.
            serve_metrics(settings.metrics_port)
        log.info(
            "gateway listening", extra={"host": settings.http_host, "port": settings.http_port}
        )
        sockets = None
        if settings.workers > 1:
            sockets = [reuse_port_socket(settings.http_host, settings.http_port)]
        # The app is built (its lifespan adds little).
        ready_to_serve(gil_switch_interval_ms=settings.gil_switch_interval_ms)
        # Server.run, not asyncio.run(server.serve()): it is what runs the loop uvicorn picked
        # (uvloop when installed, `loop="auto"`); asyncio.run always runs asyncio's own.
        server.run(sockets=sockets)
        if not server.started:
            rc = 3
    except KeyboardInterrupt:
        pass
    except Exception:
        log.exception("gateway stopped on an error")
        rc = 1
    finally:
        shutdown_telemetry()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    # grpc threads can abort interpreter exit (as in services.kit.runtime.main): leave now.
    os._exit(rc)


if __name__ == "__main__":
    main()
