"""Free ports: below the kernel's ephemeral range, never twice, one slice per xdist worker."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from services.kit import ports


def ephemeral_start() -> int:
    return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])


def test_ports_are_below_the_ephemeral_range_bindable_and_never_handed_out_twice() -> None:
    picked = [ports.free_port() for _ in range(200)]
    assert len(set(picked)) == len(picked)
    assert all(ports.LOWEST <= port < ephemeral_start() for port in picked)
    with socket.socket() as server:
        server.bind(("127.0.0.1", picked[0]))
        server.listen()


def test_a_port_in_use_is_not_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # A range whose one port not yet handed out is taken: the kernel picks a free one instead.
        monkeypatch.setattr(ports, "own_range", lambda: range(port, port + 100))
        monkeypatch.setattr(ports, "_handed_out", set(range(port + 1, port + 100)))
        chosen = ports.free_port()
        assert chosen != port


def test_xdist_workers_draw_from_disjoint_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "3")
    slices = []
    for worker in ("gw0", "gw1", "gw2"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        slices.append(set(ports.own_range()))
    assert all(len(one) > 1000 for one in slices)
    assert not (slices[0] & slices[1]) and not (slices[1] & slices[2])
    assert not (slices[0] & slices[2])
    assert max(max(one) for one in slices) < ephemeral_start()
