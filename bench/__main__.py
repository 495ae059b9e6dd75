"""`make bench`: runs every benchmark module of this folder, one process each, in name order,
then repeats each one's verdicts (its lines that say "met" or "NOT met") in one summary.

Modules whose name starts with `_` are shared code, not benches. `BENCH_ONLY=sla,delegation`
runs only those.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

_VERDICT = re.compile(r"\b(NOT met|met)\b")


def main() -> int:
    modules = sorted(
        p.stem for p in Path(__file__).parent.glob("*.py") if not p.stem.startswith("_")
    )
    if only := os.environ.get("BENCH_ONLY"):
        modules = [m for m in modules if m in only.split(",")]
    failed = 0
    verdicts: list[tuple[str, str]] = []
    for module in modules:
        print(f"\n=== bench.{module} ===", flush=True)
        with subprocess.Popen(
            [sys.executable, "-m", f"bench.{module}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as process:
            assert process.stdout is not None
            for line in process.stdout:
                sys.stdout.write(line)
                sys.stdout.flush()
                if _VERDICT.search(line):
                    verdicts.append((module, line.strip()))
        failed += process.returncode != 0
        if process.returncode != 0 and not any(m == module for m, _ in verdicts):
            verdicts.append((module, f"exited {process.returncode} without a verdict"))
    print("\n=== verdicts ===")
    for module, line in verdicts:
        print(f"{module:<12} {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
