"""`python -m services.groups [serve|migrate]`."""

from __future__ import annotations

from services.groups.gauges import with_gauges
from services.groups.servicer import SPEC
from services.kit.runtime import main

if __name__ == "__main__":
    main(with_gauges(SPEC))
