"""Several worker processes behind one port: what GUICHET_WORKERS > 1 does, gateway and services.

Python runs one request at a time per process, so a pod with 2 CPUs needs 2 processes to use
them. The process started by the container becomes a small supervisor: it starts worker 0 (the
first start may migrate nothing but does bootstrap work, e.g. identity's admin), waits until it
listens, then starts the others. Each worker binds the same port with SO_REUSEPORT and the kernel
spreads connections across them. SIGTERM (or SIGINT) is passed on as SIGTERM, every worker
drains; a worker that dies on its own stops the others, so the orchestrator restarts the pod
whole rather than leaving it half its size. Only worker 0 serves /metrics (one port per pod).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from types import FrameType

log = logging.getLogger(__name__)

WORKER_INDEX_ENV = "GUICHET_WORKER_INDEX"
_PR_SET_PDEATHSIG = 1


def worker_index() -> int | None:
    """This process's index under a supervisor, or None when it runs alone."""
    value = os.environ.get(WORKER_INDEX_ENV)
    return int(value) if value is not None and value.isdigit() else None


def die_with_parent() -> None:
    """A worker must not outlive its supervisor (SIGKILL of the supervisor included)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket that the other workers can bind too (SO_REUSEPORT)."""
    die_with_parent()
    bare = host.strip("[]")
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind((bare, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _probe_address(host: str) -> str:
    bare = host.strip("[]")
    return "127.0.0.1" if bare in {"", "0.0.0.0", "::"} else bare  # noqa: S104


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((_probe_address(host), port), timeout=0.5):
            return True
    except OSError:
        return False


def supervise(module: str, count: int, port: int, host: str, *, start_timeout: float = 120) -> int:
    """Runs `python -m module` `count` times on one port until SIGTERM; returns an exit code."""
    if port == 0:
        print("GUICHET_WORKERS > 1 needs a fixed port (not 0)", file=sys.stderr)
        return 2
    children: list[subprocess.Popen[bytes]] = []
    stopping = False

    def stop_all(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)

    def start(index: int) -> subprocess.Popen[bytes]:
        env = {**os.environ, WORKER_INDEX_ENV: str(index)}
        return subprocess.Popen([sys.executable, "-m", module], env=env)

    children.append(start(0))
    deadline = time.monotonic() + start_timeout
    while not stopping and children[0].poll() is None and not _listening(host, port):
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if not stopping and children[0].poll() is None:
        children += [start(index) for index in range(1, count)]
    log.info("workers started", extra={"workers": len(children), "port": port})
    worst = 0
    while any(child.returncode is None for child in children):
        for child in children:
            if child.returncode is None and child.poll() is not None:
                worst = max(worst, child.returncode or 0)
                if not stopping:
                    log.error(
                        "worker %s exited (%s): stopping the others", child.pid, child.returncode
                    )
                    stop_all(signal.SIGTERM, None)
                    worst = max(worst, 1)
        time.sleep(0.1)
    return worst
