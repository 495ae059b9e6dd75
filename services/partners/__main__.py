"""`python -m services.partners [serve|migrate]`."""

from __future__ import annotations

from services.kit.runtime import main
from services.partners.servicer import SPEC

if __name__ == "__main__":
    main(SPEC)
