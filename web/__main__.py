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
