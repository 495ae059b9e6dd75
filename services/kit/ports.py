"""Free TCP ports for the servers that tests, benchmarks and `make dev`'s helpers start.

A port is chosen here and bound later by another process (a service, PostgreSQL, the SMTP sink),
so between the two something else may take it. Asking the kernel for port 0 gives a port of its
ephemeral range (32768-60999 on Linux): the range every outgoing connection's source port comes
from too, and two such calls in a row may return the same port. A quiet `make test` failed
208 tests that way, membership's metrics server finding its port taken. So the ports come from
below that range, where the kernel hands out nothing by itself; a process never hands the same
port out twice, and side-by-side test processes (pytest-xdist workers) each draw from a slice of
their own.
"""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

# Below the ephemeral range, above the ports of well-known local daemons.
LOWEST = 15000
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_handed_out: set[int] = set()


def _ephemeral_start() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default; elsewhere a reasonable guess


def own_range() -> range:
    """The ports this process may hand out: below the ephemeral range, this worker's slice."""
    whole = range(LOWEST, _ephemeral_start())
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if worker.startswith("gw") and worker[2:].isdigit() and count > 1:
        size = len(whole) // count
        start = whole.start + int(worker[2:]) % count * size
        return range(start, start + size)
    return whole


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("0.0.0.0", port))  # noqa: S104 - a probe, closed at once
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port nobody listens on now, that no outgoing connection will take before its server
    binds it; never the same twice in this process."""
    ports = own_range()
    if len(ports) >= 100:
        for _ in range(500):
            port = random.choice(ports)
            if port not in _handed_out and _bindable(port):
                _handed_out.add(port)
                return port
    # A tiny or exhausted range (an odd ip_local_port_range): the kernel's own choice.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
