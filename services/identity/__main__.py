"""`python -m services.identity [serve|migrate]`."""

from __future__ import annotations

from services.identity.servicer import SPEC
from services.kit.runtime import main

if __name__ == "__main__":
    main(SPEC)
