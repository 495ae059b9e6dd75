"""`python -m services.partners [serve|migrate]`."""

from __future__ import annotations

from services.kit.runtime import main
from services.partners.gauges import with_gauges
from services.partners.servicer import SPEC

if __name__ == "__main__":
    main(with_gauges(SPEC))
