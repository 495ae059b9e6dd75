"""promtool from Debian's `prometheus` package (installed by the Makefile when root): the tests
that need it skip, saying so, where it is missing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is missing: `make test` installs Debian's prometheus package when root "
    "(apt-get install prometheus); the rule tests need it",
)


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *map(str, args)], capture_output=True, text=True, check=False, timeout=900
    )
