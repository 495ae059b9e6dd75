"""What the benches share: the machine they ran on, busy programs for a loaded run, each
process's CPU and memory, and Prometheus scrapes (Temporal's own metrics).

Not a bench itself (`make bench` skips modules whose name starts with `_`).
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

# --- the machine -------------------------------------------------------------------------------


def machine() -> str:
    """One line: the CPU, the cores, the load average and the date, printed by every bench."""
    model = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    today = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{model}, {os.cpu_count()} cores, load average {load}, {today}"


@contextlib.contextmanager
def busy_programs(count: int) -> Iterator[list[int]]:
    """`count` busy workers that each keep a core busy, started as another program is: in a
    session of their own (stress-ng's `--cpu count` when installed, else one Python program
    that forks `count - 1` times), stopped however the block ends.

    Their own session matters on a kernel with autogroup scheduling (Debian's default): the CPU
    is shared between sessions first, then between the threads of each. Started in this bench's
    session, the busy loops shared a group with the Temporal dev server (the bench starts it)
    and with no other part of the stack, so the load fell on Temporal three times harder than on
    any service (docs/performance.md, session 7)."""
    if count <= 0:
        yield []
        return
    if stress := shutil.which("stress-ng"):
        command = [stress, "--cpu", str(count), "--quiet"]
    else:
        command = [sys.executable, "-c", _busy_loop_source(count)]
    process = subprocess.Popen(command, start_new_session=True)
    try:
        yield [process.pid]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)


def _busy_loop_source(count: int) -> str:
    """A Python program of `count` processes, each spinning for ever."""
    return (
        "import os\n"
        f"for _ in range({count} - 1):\n"
        "    if os.fork() == 0:\n"
        "        break\n"
        "while True:\n"
        "    pass\n"
    )


# --- processes -----------------------------------------------------------------------------------


def listener_pid(port: int) -> int | None:
    """The process listening on a local TCP port (PostgreSQL, the Temporal dev server)."""
    with contextlib.suppress(psutil.Error):
        for connection in psutil.net_connections(kind="tcp"):
            if (
                connection.status == psutil.CONN_LISTEN
                and connection.laddr
                and connection.laddr.port == port
                and connection.pid
            ):
                return int(connection.pid)
    return None


def database_pid(url: str) -> int | None:
    port = make_url(url).port
    return listener_pid(int(port)) if port else None


def temporal_pid(address: str) -> int | None:
    return listener_pid(int(address.rsplit(":", 1)[1]))


@dataclass
class Part:
    """One process of the stack, with its children (PostgreSQL's backends)."""

    name: str
    pid: int
    peak_rss: int = 0
    last_rss: int = 0
    cpu_at_start: float = 0.0
    cpu: float = 0.0
    # The bench's own process is the parent of the whole stack: itself only, or it would count
    # every other line again.
    with_children: bool = True
    _cpu_of: dict[int, float] = field(default_factory=dict)

    def _tree(self) -> list[psutil.Process]:
        root = psutil.Process(self.pid)
        return [root, *root.children(recursive=True)] if self.with_children else [root]

    def sample(self) -> None:
        rss = 0
        with contextlib.suppress(psutil.Error):
            for process in self._tree():
                with contextlib.suppress(psutil.Error):
                    rss += process.memory_info().rss
                    times = process.cpu_times()
                    # Children come and go (PostgreSQL backends): keep what each one used.
                    self._cpu_of[process.pid] = times.user + times.system
        self.last_rss = rss
        self.peak_rss = max(self.peak_rss, rss)
        self.cpu = sum(self._cpu_of.values())


class Processes:
    """Samples every part's resident memory (peak) and CPU time while a bench runs."""

    def __init__(self, parts: dict[str, int | None]) -> None:
        self.parts = [
            Part(name, pid, with_children=pid != os.getpid()) for name, pid in parts.items() if pid
        ]
        self.began = time.monotonic()
        for part in self.parts:
            part.sample()
            part.cpu_at_start = part.cpu

    def sample(self) -> None:
        for part in self.parts:
            part.sample()

    def reset_cpu(self) -> None:
        """Counts CPU from now on (after the stack's start and warm-up)."""
        self.sample()
        self.began = time.monotonic()
        for part in self.parts:
            part.cpu_at_start = part.cpu

    def report(self) -> list[str]:
        self.sample()
        wall = time.monotonic() - self.began
        lines = [f"{'process':<22} {'RSS peak':>9} {'RSS end':>9} {'CPU s':>8} {'CPU %':>6}"]
        for part in self.parts:
            used = part.cpu - part.cpu_at_start
            lines.append(
                f"{part.name:<22} {part.peak_rss / 2**20:>7.0f} M {part.last_rss / 2**20:>7.0f} M"
                f" {used:>8.1f} {100 * used / max(wall, 1e-9):>5.0f}%"
            )
        return lines


# --- Prometheus text ---------------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    samples: Samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        labels = tuple(sorted(_LABEL.findall(match.group(3) or "")))
        with contextlib.suppress(ValueError):
            samples[(match.group(1), labels)] = float(match.group(4))
    return samples


def scrape(url: str) -> Samples:
    """One scrape; empty when the endpoint does not answer (a bench still prints the rest)."""
    try:
        return parse(httpx.get(url, timeout=30).text)
    except httpx.HTTPError:
        return {}


def delta(after: Samples, before: Samples) -> Samples:
    """Counters over a window: what grew between two scrapes."""
    return {key: value - before.get(key, 0.0) for key, value in after.items()}


def total(samples: Samples, name: str, **match: str) -> float:
    return sum(
        value
        for (metric, labels), value in samples.items()
        if metric == name and all((k, v) in labels for k, v in match.items())
    )


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for (metric, labels), value in samples.items():
        if metric == name:
            key = dict(labels).get(label, "")
            out[key] = out.get(key, 0.0) + value
    return out


def quantile(samples: Samples, name: str, share: float, **match: str) -> float:
    """The histogram quantile Prometheus would give (linear within a bucket), in the metric's
    unit; NaN without observations."""
    buckets: dict[float, float] = {}
    for (metric, labels), value in samples.items():
        if metric != f"{name}_bucket":
            continue
        found = dict(labels)
        if not all(found.get(k) == v for k, v in match.items()):
            continue
        bound = math.inf if found["le"] == "+Inf" else float(found["le"])
        buckets[bound] = buckets.get(bound, 0.0) + value
    if not buckets or buckets.get(math.inf, 0.0) <= 0:
        return math.nan
    bounds = sorted(buckets)
    rank = share * buckets[math.inf]
    previous_bound, previous_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == math.inf:
                return previous_bound
            if count == previous_count:
                return bound
            return previous_bound + (bound - previous_bound) * (rank - previous_count) / (
                count - previous_count
            )
        previous_bound, previous_count = bound, count
    return bounds[-1]


def slowest_bucket(samples: Samples, name: str, **match: str) -> float:
    """The smallest bucket bound under which every observation of a histogram's series fell
    (the series chosen by its labels): the longest one, to the bucket's resolution; 0 without
    any."""
    buckets = sorted(
        (math.inf if dict(labels)["le"] == "+Inf" else float(dict(labels)["le"]), value)
        for (metric, labels), value in samples.items()
        if metric == f"{name}_bucket" and all(dict(labels).get(k) == v for k, v in match.items())
    )
    every = buckets[-1][1] if buckets else 0.0
    return next((bound for bound, count in buckets if count >= every), 0.0) if every else 0.0


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"
