"""Once ready to serve: startup objects frozen (the collector no longer walks them, and still
collects the rest), and the GIL handed over sooner."""

from __future__ import annotations

import gc
import sys
import weakref

from services.kit.serving import freeze_startup_objects, ready_to_serve


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_what_exists_is_frozen_and_what_comes_after_is_still_collected() -> None:
    long_lived = [_Node() for _ in range(1000)]
    try:
        frozen = freeze_startup_objects()
        assert frozen >= len(long_lived)
        assert not any(gc.is_tracked(n) and n in gc.get_objects(2) for n in long_lived[:3])
        later = _Node()
        gone = weakref.ref(later)
        del later
        gc.collect()
        assert gone() is None  # a cycle made after the freeze is collected as before
    finally:
        gc.unfreeze()


def test_a_process_ready_to_serve_hands_the_gil_over_within_its_setting() -> None:
    before = sys.getswitchinterval()
    try:
        ready_to_serve(gil_switch_interval_ms=1.0)
        assert sys.getswitchinterval() == 0.001
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        sys.setswitchinterval(before)
