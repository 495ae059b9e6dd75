"""`python -m web`: the web portal on uvicorn (HTTP_HOST, HTTP_PORT, GATEWAY_URL)."""

from __future__ import annotations

import logging
import os
import sys

import prometheus_client
import uvicorn

from web.app import create_app
from web.settings import WebSettings


def main() -> int:
    # In Kubernetes the session secret arrives as a file (GUICHET_SECRETS_DIR/session_secret).
    secrets_dir = os.environ.get("GUICHET_SECRETS_DIR")
    if secrets_dir and os.path.isdir(secrets_dir):
        settings = WebSettings(_secrets_dir=secrets_dir)
    else:
        settings = WebSettings()
    if settings.metrics_port:
        prometheus_client.start_http_server(settings.metrics_port)
    logging.basicConfig(
        level=settings.log_level,
        stream=sys.stdout,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per gateway call is noise
    config = uvicorn.Config(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_level=settings.log_level.lower(),
        access_log=False,
        proxy_headers=False,
    )
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    rc = main()
    sys.stdout.flush()
    os._exit(rc)
