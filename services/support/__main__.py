"""`python -m services.support [serve|migrate]`."""

from __future__ import annotations

from services.kit.runtime import main
from services.support.gauges import with_gauges
from services.support.servicer import SPEC

if __name__ == "__main__":
    main(with_gauges(SPEC))
