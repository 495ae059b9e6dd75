"""`python -m services.membership [serve|migrate]`."""

from __future__ import annotations

from services.kit.runtime import main
from services.membership.servicer import SPEC

if __name__ == "__main__":
    main(SPEC)
