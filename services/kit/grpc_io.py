"""Where gRPC's C core does its socket I/O: on the thread grpc.aio polls with, not on
EventEngine's threads.

Why (issue 29, docs/performance.md "gRPC's thread hops"): grpcio 1.85 reads and writes every
connection on EventEngine's own threads (its `event_engine_client` and `event_engine_listener`
experiments, on by default). Each completion then crosses to the thread grpc.aio polls the
completion queue with, which wakes the event loop: three more thread wake-ups per call on each
side. On a busy two-core machine every wake-up takes a core from whatever ran there, argon2id's
hashes included. With both experiments off, the polling thread does the I/O itself (gRPC's
iomgr, the default before 1.6x): measured per login through the gateway, identity's threads
woke 8.3 times instead of 11.9 and the gateway's 2.9 instead of 7.0; a unary call between two
grpc.aio peers cost 20 % less CPU.

The C core reads `GRPC_EXPERIMENTS` once, when grpcio loads, so it must be in the process's
environment before Python starts: the image sets it (`Dockerfile`), the dev stack gives it to
every component (`services.devstack`), `make` exports it (tests and benches). An operator's own
value wins everywhere. `tests/kit/test_grpc_io.py` checks the copies agree and that the setting
still keeps EventEngine's threads asleep: a grpcio that drops the old I/O path fails it.
"""

from __future__ import annotations

from collections.abc import Mapping

GRPC_EXPERIMENTS_VARIABLE = "GRPC_EXPERIMENTS"
GRPC_EXPERIMENTS = "-event_engine_client,-event_engine_listener"


def grpc_io_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The variable a process should start with, unless `environ` already sets it."""
    if GRPC_EXPERIMENTS_VARIABLE in environ:
        return {}
    return {GRPC_EXPERIMENTS_VARIABLE: GRPC_EXPERIMENTS}
