"""Starts and stops the whole system: PostgreSQL, Temporal, the SMTP sink and every component.

Used by `make dev` (fixed ports, state kept under `.state/`) and by the end-to-end tests
(free ports, a temporary state folder). Each component is its own OS process, as in production.
With `prometheus` (make dev, the alert test of make chaos), a real Prometheus scrapes every
process with the chart's rules loaded. With `supervise` (make dev), a process that dies is
reported at once and restarted with back-off, as Kubernetes restarts a container.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
import pyotp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from guichet.identity.v1 import identity_pb2, identity_pb2_grpc
from temporalio.client import Client

from services.devstack.components import COMPONENTS, Component
from services.devstack.signin import sign_in
from services.kit.binaries import temporal_cli
from services.kit.db import ensure_database
from services.kit.localpg import LocalPostgres
from services.kit.mail import new_sealing_key
from services.kit.smtpsink import SmtpSink
from services.kit.temporal import (
    dev_server_args,
    ensure_retention,
    ensure_search_attributes,
)

log = logging.getLogger("devstack")

ADMIN_USERNAME = "ops.admin"
# Access tokens live 5 minutes (ACCESS_TOKEN_TTL_SECONDS); admin_token refreshes after 4.
ADMIN_TOKEN_REUSE_SECONDS = 240.0
ADMIN_EMAIL = "ops.admin@guichet.example.com"


@dataclass
class StackSecrets:
    """Generated once per state folder, so a restart keeps working credentials."""

    admin_password: str
    mail_sealing_key: str
    client_secrets: dict[str, str] = field(default_factory=dict)
    # The bootstrap admin's TOTP (ops_admin needs a second factor); `make dev` prints it.
    admin_totp_secret: str = ""
    # Signs the portal's session cookie (its flash messages); made for older state folders too.
    session_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @classmethod
    def load_or_create(cls, path: Path) -> StackSecrets:
        if path.exists():
            loaded = cls(**json.loads(path.read_text()))
        else:
            loaded = cls(
                admin_password="Guichet-" + secrets.token_urlsafe(9),
                mail_sealing_key=new_sealing_key(),
            )
        if not loaded.admin_totp_secret:
            loaded.admin_totp_secret = pyotp.random_base32(32)
        for component in COMPONENTS:
            if component.service_client and component.name not in loaded.client_secrets:
                loaded.client_secrets[component.name] = secrets.token_urlsafe(32)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(loaded.__dict__, indent=2))
        path.chmod(0o600)
        return loaded


@dataclass
class Running:
    component: Component
    process: asyncio.subprocess.Process
    pump: asyncio.Task[None]
    started: float = field(default_factory=time.monotonic)
    # Set when the stack ends it on purpose (stop, kill, restart): no restart then.
    stopping: bool = False


# Restart back-off, as Kubernetes' CrashLoopBackOff but shorter for a laptop: 1 s, doubled after
# each crash that follows a restart within a minute, at most 30 s; reset once a minute went by.
BACKOFF_FIRST, BACKOFF_MAX, BACKOFF_RESET = 1.0, 30.0, 60.0
PROMETHEUS_INTERVAL = "5s"
# The share of ordinary traces the processes export to make dev's trace UI; errors and requests
# slower than 1 s (the read objective) always go (services/kit/telemetry.py). Chosen with
# bench/observability.py: exporting every trace, the trace UI took most of a core and the stack
# kept a quarter of its requests/s (docs/performance.md).
DEV_TRACE_KEEP_RATIO = 0.05


def restart_delay(crashes: int) -> float:
    """The wait before the restart that follows `crashes` quick crashes in a row (0, 1, …)."""
    return float(min(BACKOFF_FIRST * 2**crashes, BACKOFF_MAX))


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


class Stack:
    def __init__(
        self,
        state_dir: Path,
        ports: dict[str, int],
        *,
        database_admin_url: str | None = None,
        temporal_address: str | None = None,
        echo: bool = True,
        otlp_endpoint: str | None = None,
        extra_env: dict[str, str] | None = None,
        trace_ui: str | None = None,
        instance: str = "",
        prometheus: str | None = None,
        prometheus_interval: str = PROMETHEUS_INTERVAL,
        supervise: bool = False,
    ) -> None:
        """`instance` names this stack when several share one PostgreSQL and one Temporal (test
        sessions): its databases and its task queue get the name, so that no stack reads another's
        rows or runs another's workflows."""
        self.instance = instance
        self.state_dir = state_dir
        self.ports = ports
        self.echo = echo
        self.otlp_endpoint = otlp_endpoint
        self._trace_ui = trace_ui
        self.trace_ui_process: asyncio.subprocess.Process | None = None
        self.extra_env = extra_env or {}
        self.secrets = StackSecrets.load_or_create(state_dir / "secrets.json")
        self._database_admin_url = database_admin_url
        self._temporal_address = temporal_address
        self.postgres: LocalPostgres | None = None
        self.temporal_process: asyncio.subprocess.Process | None = None
        self.smtp = SmtpSink(port=ports["smtp"], folder=state_dir / "mail")
        self.database_urls: dict[str, str] = {}
        self.running: list[Running] = []
        # The ops admin's (access token, refresh token, when), see admin_token.
        self._admin: tuple[str, str, float] | None = None
        self._prometheus = prometheus
        self._prometheus_interval = prometheus_interval
        self.prometheus_process: asyncio.subprocess.Process | None = None
        self.supervise = supervise
        self._stopping = False
        self._watchers: list[asyncio.Task[None]] = []
        (state_dir / "logs").mkdir(parents=True, exist_ok=True)

    # --- addresses ---------------------------------------------------------------------------

    @property
    def temporal_address(self) -> str:
        return self._temporal_address or f"127.0.0.1:{self.ports['temporal']}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    @property
    def web_url(self) -> str:
        return f"http://localhost:{self.ports['web']}"

    async def admin_token(self) -> str:
        """An access token of the bootstrap ops admin, for tools and tests: signed in once (its
        second factor costs a TOTP step, see signin.py) and refreshed when near its end."""
        now = time.monotonic()
        if self._admin is not None and now - self._admin[2] < ADMIN_TOKEN_REUSE_SECONDS:
            return self._admin[0]
        async with grpc.aio.insecure_channel(self.grpc_address("identity")) as channel:
            stub = identity_pb2_grpc.IdentityServiceStub(channel)
            if self._admin is not None:
                refreshed = await stub.Refresh(
                    identity_pb2.RefreshRequest(refresh_token=self._admin[1]), timeout=10
                )
                pair = refreshed.tokens
            else:
                pair = await sign_in(
                    stub,
                    ADMIN_USERNAME,
                    self.secrets.admin_password,
                    totp_secret=self.secrets.admin_totp_secret,
                )
        access: str = pair.access_token
        self._admin = (access, pair.refresh_token, now)
        return access

    def grpc_address(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    def metrics_port(self, component: Component) -> int | None:
        """Where the component serves Prometheus metrics, when the port map names one."""
        return self.ports.get(f"{component.name}_metrics")

    # --- infrastructure ----------------------------------------------------------------------

    async def start_infrastructure(self) -> None:
        self.smtp.start()
        if self._database_admin_url is None:
            self.postgres = LocalPostgres(self.state_dir / "postgres", self.ports["postgres"])
            await asyncio.to_thread(self.postgres.start)
            self._database_admin_url = self.postgres.url()
        for component in COMPONENTS:
            if component.database:
                name = (
                    f"{self.instance}_{component.database}" if self.instance else component.database
                )
                self.database_urls[component.name] = await ensure_database(
                    self._database_admin_url, name
                )
        if self._temporal_address is None:
            await self._start_temporal()
        if self._trace_ui is not None and self.otlp_endpoint is None:
            await self._start_trace_ui(self._trace_ui)

    @property
    def trace_ui_url(self) -> str | None:
        if self.trace_ui_process is None:
            return None
        return f"http://127.0.0.1:{self.ports['trace_ui']}"

    async def _start_trace_ui(self, executable: str) -> None:
        """An OTLP receiver with a web UI (Arize Phoenix), fed by every process of the stack."""
        folder = self.state_dir / "traces"
        folder.mkdir(parents=True, exist_ok=True)
        log_file = (self.state_dir / "logs" / "trace-ui.log").open("ab")
        self.trace_ui_process = await asyncio.create_subprocess_exec(
            executable,
            "serve",
            env={
                **os.environ,
                "PHOENIX_WORKING_DIR": str(folder),
                "PHOENIX_HOST": "127.0.0.1",
                "PHOENIX_PORT": str(self.ports["trace_ui"]),
                "PHOENIX_GRPC_PORT": str(self.ports["otlp"]),
                "PHOENIX_TELEMETRY_ENABLED": "false",
            },
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,
        )
        # Phoenix imports a great deal: a minute and more on a busy machine.
        deadline = time.monotonic() + 300
        async with httpx.AsyncClient(timeout=1) as client:
            while True:
                try:
                    if (await client.get(f"{self.trace_ui_url}/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if self.trace_ui_process.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError("the trace UI did not start; see .state/logs/trace-ui.log")
                await asyncio.sleep(0.5)
        self.otlp_endpoint = f"http://127.0.0.1:{self.ports['otlp']}"

    async def _start_temporal(self) -> None:
        """`temporal server start-dev`, persisted to a file so a restart keeps the workflows."""
        log_file = (self.state_dir / "logs" / "temporal.log").open("ab")
        self.temporal_process = await asyncio.create_subprocess_exec(
            temporal_cli(),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.ports["temporal"]),
            "--ui-port",
            str(self.ports["temporal_ui"]),
            "--db-filename",
            str(self.state_dir / "temporal.db"),
            "--log-level",
            "warn",
            *dev_server_args(),
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                client = await Client.connect(self.temporal_address)
            except Exception:
                if self.temporal_process.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "Temporal dev server did not start; see .state/logs/temporal.log"
                    ) from None
                await asyncio.sleep(0.5)
            else:
                # A `.state` database from before a search attribute existed lacks it.
                await ensure_search_attributes(client)
                # Closed runs stay a month (the dev server keeps them one day), to be read and
                # reset as in production (docs/runbook.md, "Retention").
                await ensure_retention(client)
                return

    # --- Prometheus --------------------------------------------------------------------------

    @property
    def prometheus_url(self) -> str | None:
        if self.prometheus_process is None:
            return None
        return f"http://127.0.0.1:{self.ports['prometheus']}"

    def prometheus_config(self) -> dict[str, object]:
        """Every process with a metrics port as its own job (`guichet-<component>`, the name the
        rules' TargetDown and the chart's PodMonitor use), and the chart's rules."""
        from services.observability.generate import RULES_FILE

        jobs: list[dict[str, object]] = []
        for component in COMPONENTS:
            if (port := self.metrics_port(component)) is not None:
                jobs.append(
                    {
                        "job_name": f"guichet-{component.name}",
                        "static_configs": [
                            {
                                "targets": [f"127.0.0.1:{port}"],
                                "labels": {"component": component.name},
                            }
                        ],
                    }
                )
        return {
            "global": {
                "scrape_interval": self._prometheus_interval,
                "evaluation_interval": self._prometheus_interval,
            },
            "rule_files": [str(RULES_FILE)],
            "scrape_configs": jobs,
        }

    async def start_prometheus(self, executable: str, *, interval: str | None = None) -> None:
        """A Prometheus beside a running stack (the alert test of make chaos scrapes every
        second, to see an alert's expression turn in seconds rather than tens)."""
        if interval is not None:
            self._prometheus_interval = interval
        self._prometheus = executable
        await self._start_prometheus(executable)

    async def _start_prometheus(self, executable: str) -> None:
        import yaml

        folder = self.state_dir / "prometheus"
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.prometheus_config(), sort_keys=False))
        log_file = (self.state_dir / "logs" / "prometheus.log").open("ab")
        self.prometheus_process = await asyncio.create_subprocess_exec(
            executable,
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}",
            "--storage.tsdb.retention.time=7d",
            f"--web.listen-address=127.0.0.1:{self.ports['prometheus']}",
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(timeout=1) as client:
            while True:
                try:
                    if (await client.get(f"{self.prometheus_url}/-/ready")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if self.prometheus_process.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError("Prometheus did not start; see .state/logs/prometheus.log")
                await asyncio.sleep(0.5)

    # --- supervision ---------------------------------------------------------------------------

    def _supervise_all(self) -> None:
        for running in self.running:
            self._watchers.append(
                asyncio.create_task(self._watch_component(running), name=running.component.name)
            )
        infrastructure = (
            ("temporal", "temporal_process", self._start_temporal),
            ("trace UI", "trace_ui_process", lambda: self._start_trace_ui(self._trace_ui or "")),
            (
                "prometheus",
                "prometheus_process",
                lambda: self._start_prometheus(self._prometheus or ""),
            ),
        )
        for name, attribute, start in infrastructure:
            if getattr(self, attribute) is not None:
                self._watchers.append(
                    asyncio.create_task(self._watch_process(name, attribute, start), name=name)
                )

    async def _watch_component(self, running: Running) -> None:
        """Waits for the component's process to end; unless the stack ended it, says so at
        once and starts it again after the back-off, until it stays up."""
        component = running.component
        crashes = 0
        while True:
            returncode = await running.process.wait()
            if self._stopping or running.stopping:
                return
            if time.monotonic() - running.started >= BACKOFF_RESET:
                crashes = 0
            delay = restart_delay(crashes)
            log.error(
                "%s %s; restarting it in %.0f s (see %s)",
                component.name,
                describe_exit(returncode),
                delay,
                self.state_dir / "logs" / f"{component.name}.log",
            )
            await asyncio.gather(running.pump, return_exceptions=True)
            if running in self.running:
                self.running.remove(running)
            while True:
                await asyncio.sleep(delay)
                if self._stopping:
                    return
                try:
                    await self._spawn(component)
                except RuntimeError as error:
                    crashes += 1
                    delay = restart_delay(crashes)
                    log.error(
                        "%s did not come back: %s; again in %.0f s", component.name, error, delay
                    )
                    self._drop_dead(component)
                    continue
                break
            crashes += 1
            running = self._running(component.name)
            log.warning("%s restarted (pid %s)", component.name, running.process.pid)

    def _drop_dead(self, component: Component) -> None:
        for running in list(self.running):
            if running.component is component and running.process.returncode is not None:
                self.running.remove(running)

    async def _watch_process(
        self, name: str, attribute: str, start: Callable[[], Awaitable[None]]
    ) -> None:
        """The same for an infrastructure process the stack started (Temporal, the trace UI,
        Prometheus)."""
        crashes = 0
        while True:
            process = getattr(self, attribute)
            if process is None:
                return
            started = time.monotonic()
            returncode = await process.wait()
            if self._stopping or getattr(self, attribute) is not process:
                return  # stopped on purpose (stop_temporal) or replaced
            if time.monotonic() - started >= BACKOFF_RESET:
                crashes = 0
            delay = restart_delay(crashes)
            log.error("%s %s; restarting it in %.0f s", name, describe_exit(returncode), delay)
            while True:
                await asyncio.sleep(delay)
                if self._stopping:
                    return
                try:
                    await start()
                except RuntimeError as error:
                    crashes += 1
                    delay = restart_delay(crashes)
                    log.error("%s did not come back: %s; again in %.0f s", name, error, delay)
                    continue
                break
            crashes += 1
            log.warning("%s restarted", name)

    # --- components --------------------------------------------------------------------------

    def env_for(self, component: Component) -> dict[str, str]:
        env = {
            **os.environ,
            "SERVICE_NAME": component.name,
            "LOG_JSON": "true",
            "TEMPORAL_ADDRESS": self.temporal_address,
            "IDENTITY_ADDR": self.grpc_address("identity"),
            "MAIL_SEALING_KEY": self.secrets.mail_sealing_key,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.smtp.port),
            # Links in mails lead to the web portal (a client of the gateway), not to the API.
            "PUBLIC_BASE_URL": self.web_url,
        }
        if self.instance:
            env["TEMPORAL_TASK_QUEUE"] = f"guichet-{self.instance}"
        if self.otlp_endpoint:
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = self.otlp_endpoint
            if self.trace_ui_process is not None:  # our own trace UI, not the caller's collector
                env.setdefault("GUICHET_TRACE_KEEP_RATIO", str(DEV_TRACE_KEEP_RATIO))
        if component.service_client:
            env["SERVICE_CLIENT_ID"] = component.name
            env["SERVICE_CLIENT_SECRET"] = self.secrets.client_secrets[component.name]
        if component.database:
            env["DATABASE_URL"] = self.database_urls[component.name]
        if (metrics_port := self.metrics_port(component)) is not None:
            env["METRICS_PORT"] = str(metrics_port)
        if component.protocol == "grpc" and component.port_key:
            env["GRPC_PORT"] = str(self.ports[component.port_key])
        if component.protocol == "http" and component.port_key:
            env["HTTP_HOST"] = "127.0.0.1"
            env["HTTP_PORT"] = str(self.ports[component.port_key])
        if "gateway" in component.calls:
            env["GATEWAY_URL"] = self.gateway_url
            env["SECURE_COOKIES"] = "false"  # make dev serves plain HTTP on localhost
            env["SESSION_SECRET"] = self.secrets.session_secret
        for other in COMPONENTS:
            if other.protocol == "grpc" and other.port_key:
                env[f"{other.name.upper()}_ADDR"] = self.grpc_address(other.port_key)
        if component.name == "identity":
            env["SERVICE_CLIENTS"] = ",".join(
                f"{name}={secret}" for name, secret in self.secrets.client_secrets.items()
            )
            env["BOOTSTRAP_ADMIN_USERNAME"] = ADMIN_USERNAME
            env["BOOTSTRAP_ADMIN_PASSWORD"] = self.secrets.admin_password
            env["BOOTSTRAP_ADMIN_EMAIL"] = ADMIN_EMAIL
            env["BOOTSTRAP_ADMIN_TOTP_SECRET"] = self.secrets.admin_totp_secret
            # Passkeys are registered and used on the portal's pages (WebAuthn's relying party).
            env["WEBAUTHN_RP_ID"] = "localhost"
            env["WEBAUTHN_ORIGINS"] = self.web_url
        env.update(self.extra_env)
        return env

    async def migrate(self, component: Component) -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            component.module,
            "migrate",
            env=self.env_for(component),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"{component.name} migrations failed:\n{output.decode()}")

    async def _pump(self, component: Component, stream: asyncio.StreamReader) -> None:
        """Copies a component's output to its log file, and to the console in `make dev`."""
        with (self.state_dir / "logs" / f"{component.name}.log").open("ab") as sink:
            while line := await stream.readline():
                sink.write(line)
                sink.flush()
                if self.echo:
                    sys.stdout.write(f"{component.name:>9} | {_readable(line)}\n")
                    sys.stdout.flush()

    async def start_component(self, component: Component) -> None:
        """Migrates (a service, the gateway) and starts one component, then waits until it is
        ready."""
        if component.database:
            await self.migrate(component)
        await self._spawn(component)

    async def _spawn(self, component: Component) -> None:
        # Without an echo the output goes straight to the log file: a pipe pumped by this event
        # loop fills up whenever the loop does not run (a sync test, e.g. the browser tests),
        # and a process blocked on its next log line stops answering.
        log_file = None if self.echo else (self.state_dir / "logs" / f"{component.name}.log")
        with contextlib.ExitStack() as files:
            sink = files.enter_context(log_file.open("ab")) if log_file else None
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                component.module,
                env=self.env_for(component),
                stdout=sink if sink is not None else asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        if process.stdout is not None:
            pump = asyncio.create_task(self._pump(component, process.stdout))
        else:
            pump = asyncio.create_task(asyncio.sleep(0))
        self.running.append(Running(component, process, pump))
        await self._wait_ready(component, process)

    async def _wait_ready(self, component: Component, process: asyncio.subprocess.Process) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise RuntimeError(
                    f"{component.name} exited with {process.returncode}; "
                    f"see {self.state_dir / 'logs' / (component.name + '.log')}"
                )
            if await self._is_ready(component):
                return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"{component.name} not ready within 60 s")

    async def _is_ready(self, component: Component) -> bool:
        if component.protocol == "grpc" and component.port_key:
            async with grpc.aio.insecure_channel(self.grpc_address(component.port_key)) as channel:
                try:
                    response = await health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(service=""), timeout=1
                    )
                except grpc.aio.AioRpcError:
                    return False
                return bool(response.status == health_pb2.HealthCheckResponse.SERVING)
        if component.protocol == "http" and component.port_key:
            async with httpx.AsyncClient(timeout=1) as client:
                try:
                    url = f"http://127.0.0.1:{self.ports[component.port_key]}/readyz"
                    return (await client.get(url)).status_code == 200
                except httpx.HTTPError:
                    return False
        await asyncio.sleep(1.0)  # the worker: alive after a second of polling is good enough
        return True

    # --- faults (tests/chaos): one part stopped or killed, then brought back -------------------

    def _running(self, name: str) -> Running:
        for running in self.running:
            if running.component.name == name:
                return running
        raise KeyError(f"{name} is not running")

    async def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Sends `sig` to one component (SIGKILL: no drain, no goodbye) and waits for its exit."""
        running = self._running(name)
        running.stopping = True
        with contextlib.suppress(ProcessLookupError):
            running.process.send_signal(sig)
        await running.process.wait()
        await asyncio.gather(running.pump, return_exceptions=True)
        self.running.remove(running)

    async def restart(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Kills one component (if it runs) and starts a replacement with the same settings."""
        component = next(c for c in COMPONENTS if c.name == name)
        if any(r.component.name == name for r in self.running):
            await self.kill(name, sig)
        await self.start_component(component)

    async def stop_temporal(self) -> None:
        """Stops the dev server this stack started (its workflows stay in its database file)."""
        if self.temporal_process is None:
            raise RuntimeError("Temporal was not started by this stack")
        await _terminate(self.temporal_process, grace=15)
        self.temporal_process = None

    async def start_temporal(self) -> None:
        await self._start_temporal()

    async def stop_postgres(self) -> None:
        """Stops the PostgreSQL this stack started (fast shutdown: sessions are disconnected)."""
        if self.postgres is None:
            raise RuntimeError("PostgreSQL was not started by this stack")
        await asyncio.to_thread(self.postgres.stop)

    async def start_postgres(self) -> None:
        if self.postgres is None:
            raise RuntimeError("PostgreSQL was not started by this stack")
        await asyncio.to_thread(self.postgres.start)

    async def start(self) -> None:
        """Infrastructure, then every migration at once, then each wave of `start_waves` at once:
        one component at a time left a core idle while each imported its libraries (49 s for
        the whole stack, serially, on a quiet 2-core machine)."""
        await self.start_infrastructure()
        await asyncio.gather(*(self.migrate(c) for c in COMPONENTS if c.database))
        for wave in start_waves(COMPONENTS):
            await asyncio.gather(*(self._spawn(component) for component in wave))
        if self._prometheus is not None:
            await self._start_prometheus(self._prometheus)
        if self.supervise:
            self._supervise_all()

    async def stop(self) -> None:
        """SIGTERM in reverse start order (each drains), SIGKILL what outstays its grace."""
        self._stopping = True
        for watcher in self._watchers:
            watcher.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
        if self.prometheus_process is not None:
            await _terminate(self.prometheus_process, grace=15)
            self.prometheus_process = None
        for running in reversed(self.running):
            running.stopping = True
            await _terminate(running.process, grace=15)
            await asyncio.gather(running.pump, return_exceptions=True)
        self.running.clear()
        if self.temporal_process is not None:
            await _terminate(self.temporal_process, grace=15)
            self.temporal_process = None
        if self.trace_ui_process is not None:
            await _terminate(self.trace_ui_process, grace=15)
            self.trace_ui_process = None
        if self.postgres is not None:
            await asyncio.to_thread(self.postgres.stop, quiet=True)
        with contextlib.suppress(Exception):
            self.smtp.stop()


def start_waves(components: Sequence[Component]) -> list[list[Component]]:
    """The order of a parallel start: the services together (they call one another lazily, over
    gRPC, so a cycle such as identity ⇄ membership is no obstacle), then each component once
    every component it calls is up."""
    waves = [[c for c in components if c.database and c.protocol == "grpc"]]
    started = {c.name for c in waves[0]}
    left = [c for c in components if c not in waves[0]]
    while left:
        wave = [c for c in left if set(c.calls) <= started]
        if not wave:
            names = [c.name for c in left]
            raise ValueError(f"no start order for {names}: their calls form a cycle")
        waves.append(wave)
        started |= {c.name for c in wave}
        left = [c for c in left if c not in wave]
    return waves


async def _terminate(process: asyncio.subprocess.Process, *, grace: float) -> None:
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), timeout=grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


def _readable(line: bytes) -> str:
    """A JSON log line as `LEVEL message key=value`, for the console."""
    text = line.decode(errors="replace").rstrip()
    try:
        entry = json.loads(text)
    except ValueError:
        return text
    if not isinstance(entry, dict):
        return text
    core = {"time", "level", "service", "logger", "message", "span_id"}
    extras = " ".join(f"{k}={v}" for k, v in entry.items() if k not in core and k != "exception")
    rendered = f"{entry.get('level', '')[:4]:<4} {entry.get('message', '')} {extras}".rstrip()
    if "exception" in entry:
        rendered += "\n" + str(entry["exception"])
    return rendered
