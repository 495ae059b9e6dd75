"""`make bench`: runs every benchmark module of this folder, one process each, in name order."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main() -> int:
    modules = sorted(
        p.stem for p in Path(__file__).parent.glob("*.py") if not p.stem.startswith("_")
    )
    failed = 0
    for module in modules:
        print(f"\n=== bench.{module} ===", flush=True)
        failed += (
            subprocess.run([sys.executable, "-m", f"bench.{module}"], check=False).returncode != 0
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
