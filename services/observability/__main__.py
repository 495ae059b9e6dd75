"""`python -m services.observability [--check]`: writes the rules and dashboards into the Helm
chart's files (and the SLO table into docs/slo.md); `--check` fails when a committed file differs
from what the code generates (`make test`)."""

from __future__ import annotations

import argparse
import sys

from services.observability.generate import ROOT, generated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.observability")
    parser.add_argument("--check", action="store_true", help="fail if a file is stale")
    check = parser.parse_args(argv).check
    stale = []
    for path, text in generated().items():
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        if check:
            stale.append(str(path.relative_to(ROOT)))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(
            "stale generated monitoring files (run `make proto`): " + ", ".join(stale),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
