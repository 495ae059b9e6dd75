"""The portal's settings: every field maps to an upper-case environment variable."""

from __future__ import annotations

import logging
import secrets

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class WebSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    # The public gateway the pages call (its /openapi.json is the only API the portal knows).
    gateway_url: str = "http://127.0.0.1:8000"
    # A container listens on every interface; make dev sets 127.0.0.1.
    http_host: str = "0.0.0.0"  # noqa: S104
    http_port: int = Field(default=3000, ge=0, le=65535)
    # Session cookies get the Secure flag (leave on behind TLS; make dev serves plain HTTP).
    secure_cookies: bool = True
    # Seconds a gateway call may take before the page says the service is unavailable.
    gateway_timeout: float = Field(default=15.0, gt=0)
    # How often the process requests table refreshes while a delegation runs, in milliseconds.
    progress_poll_ms: int = Field(default=1500, ge=200)
    # Prometheus metrics (process figures) on their own port; 0: none.
    metrics_port: int = Field(default=0, ge=0, le=65535)
    log_level: str = "INFO"
    # Where people reach the portal, for the links it hands out (an invitation to register);
    # unset: the address the request came to. Same variable as the services' mail links.
    public_base_url: str | None = None
    # Signs the session cookie that carries a confirmation to the next page (web/flash.py). The
    # same value on every replica; unset, each process draws its own (one replica only).
    session_secret: SecretStr | None = Field(default=None, min_length=32)

    def session_secret_value(self) -> str:
        if self.session_secret is None:
            logging.getLogger(__name__).warning(
                "SESSION_SECRET is not set: this process signs its session cookies with a key of "
                "its own, so a confirmation may be lost between two replicas"
            )
            self.session_secret = SecretStr(secrets.token_urlsafe(32))
        return self.session_secret.get_secret_value()
