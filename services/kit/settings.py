"""Typed settings shared by every process; each service subclasses `ServiceSettings`.

Settings are read from the environment when a process starts (never at import) and a bad or
missing value stops the process with one clear line per problem.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TypeVar

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    """What every Guichet process needs: where to send traces, how to log, where Temporal is."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    service_name: str = "guichet"
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    log_json: bool = True
    # OTLP/gRPC endpoint of a collector (e.g. http://localhost:4317); traces stay local when unset.
    otel_exporter_otlp_endpoint: str | None = None
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "guichet"
    # Where each service listens (host:port); every process may call any of them.
    identity_addr: str = "localhost:50051"
    groups_addr: str = "localhost:50052"
    support_addr: str = "localhost:50053"
    partners_addr: str = "localhost:50054"
    membership_addr: str = "localhost:50055"
    # Client credentials this process uses for calls made on nobody's behalf.
    service_client_id: str | None = None
    service_client_secret: str | None = None
    # Key (base64 of 32 bytes) that seals mail bodies on their way through Temporal.
    mail_sealing_key: str | None = None
    # Port of this process's Prometheus /metrics (0: any free port; unset: not served).
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    # Deadline given to outgoing gRPC calls that do not inherit one, in seconds.
    grpc_default_timeout: float = Field(default=10.0, gt=0)
    # Processes serving the gateway's or a service's port (SO_REUSEPORT, `services.kit.workers`):
    # the chart sets it from the pod's CPU limit. 1 serves in the started process itself.
    workers: int = Field(
        default=1, ge=1, le=64, validation_alias=AliasChoices("guichet_workers", "workers")
    )
    # How long a busy event loop may keep the GIL while another thread (the /metrics server, the
    # trace exporter) waits for it, in milliseconds (Python's default is 5; see kit/serving.py).
    gil_switch_interval_ms: float = Field(default=1.0, gt=0, le=100)


class ServiceSettings(CommonSettings):
    """A gRPC service that owns a PostgreSQL database."""

    database_url: str
    grpc_port: int = Field(default=50051, ge=0, le=65535)
    grpc_host: str = "[::]"
    db_pool_size: int = Field(default=10, ge=1)
    # Seconds SIGTERM gives in-flight calls before the server stops.
    shutdown_grace: float = Field(default=10.0, ge=0)


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def load_settings(cls: type[SettingsT], **overrides: object) -> SettingsT:
    """Builds the settings or exits with a message naming every bad variable.

    In Kubernetes, credentials arrive as files named after the fields (`database_url`,
    `service_client_secret`…) in GUICHET_SECRETS_DIR, never as environment variables.
    """
    secrets_dir = os.environ.get("GUICHET_SECRETS_DIR")
    if secrets_dir and Path(secrets_dir).is_dir():
        overrides = {"_secrets_dir": secrets_dir, **overrides}
    try:
        return cls(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = [f"{cls.__name__}: invalid configuration"]
        for error in exc.errors():
            variable = "_".join(str(part) for part in error["loc"]).upper()
            lines.append(f"  {variable}: {error['msg']}")
        print("\n".join(lines), file=sys.stderr)
        raise SystemExit(2) from None
