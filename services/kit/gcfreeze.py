"""Startup objects out of the garbage collector's reach, once a process is ready to serve.

A server builds a few hundred thousand long-lived objects while it starts (modules, the ORM's
mappers, pydantic's validators, the app's routes): a full collection walks every one of them,
about 95 ms on a loaded machine for the gateway, and under load one came every few seconds,
stalling the requests and the /metrics scrape of that moment (docs/performance.md, "Scrapes,
session 4"). `gc.freeze()` moves them to a generation the collector never scans; what is built
afterwards is collected as before.
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> int:
    """Collects once, then freezes what survived; returns how many objects are now frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
