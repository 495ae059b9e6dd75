"""The benches' busy programs load the machine as another program would (bench/_stack.py)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import psutil  # type: ignore[import-untyped]

from bench._stack import busy_programs


def _session_members(session: int) -> list[psutil.Process]:
    members = []
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) == session and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return members


def _wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_busy_programs_spin_in_a_session_of_their_own_and_stop_with_the_block() -> None:
    """With autogroup scheduling a session is a scheduling group: busy loops in the bench's own
    session would load only what shares it (the Temporal dev server), not the whole stack."""
    with busy_programs(2) as pids:
        (leader,) = pids
        session = os.getsid(leader)
        assert session == leader != os.getsid(0)
        assert _wait_for(lambda: len(_session_members(session)) == 2), "two busy workers"
        workers = _session_members(session)
        before = [sum(worker.cpu_times()[:2]) for worker in workers]
        # Spinning, not sleeping: each uses CPU (however busy the machine, some).
        assert _wait_for(
            lambda: all(
                sum(worker.cpu_times()[:2]) > spent
                for worker, spent in zip(workers, before, strict=True)
            )
        ), "each worker spins"
    assert _wait_for(lambda: not _session_members(session)), "stopped with the block"


def test_no_busy_programs_start_nothing() -> None:
    with busy_programs(0) as pids:
        assert pids == []
