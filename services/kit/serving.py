"""What a server process does once it has started and before it serves: two settings of the
interpreter that only pay off in a long-lived, busy process (docs/performance.md, "Scrapes,
session 4").

- Startup objects out of the garbage collector's reach. A server builds a few hundred thousand
  long-lived objects while it starts (modules, the ORM's mappers, pydantic's validators, the
  app's routes): a full collection walks every one of them, about 95 ms on a loaded machine for
  the gateway, and under load one came every few seconds, stalling the requests and the /metrics
  scrape of that moment. `gc.freeze()` moves them to a generation the collector never scans;
  what is built afterwards is collected as before.
- A shorter GIL switch interval. /metrics is served by a thread beside the event loop; each of
  its blocking calls (the read, gzip, the write) gives the GIL back, and a busy loop then keeps
  it for up to the interval before handing it over. At Python's 5 ms, a gateway scrape at 64
  connections waited 94 ms at p95 on a quiet machine; at 1 ms, 28 ms, for the same requests/s.
"""

from __future__ import annotations

import asyncio
import gc
import sys


def freeze_startup_objects() -> int:
    """Collects once, then freezes what survived; returns how many objects are now frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def ready_to_serve(*, gil_switch_interval_ms: float) -> None:
    """The process is built: freeze what it built, and let other threads have the GIL sooner."""
    sys.setswitchinterval(gil_switch_interval_ms / 1000)
    freeze_startup_objects()


def running_loop_name() -> str:
    """The running event loop's class, as the serving log line names it ("uvloop.Loop"): which
    loop serves is said from inside it, where nothing can have picked another."""
    loop = type(asyncio.get_running_loop())
    return f"{loop.__module__}.{loop.__name__}"
