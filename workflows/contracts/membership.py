"""What the membership service and its renewal workflow agree on.

The service starts `Renewal` (through its outbox, when a membership is created) and signals it
(`membership_changed(version)`, through its signal outbox, when the renewal date changes or the
membership ends), always under the business-key id `renewal/<membership_id>`. The workflow asks
the service for everything else over gRPC, so no other dataclass crosses the boundary.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

RENEWAL_WORKFLOW = "Renewal"
CHANGED_SIGNAL = "membership_changed"


def renewal_workflow_id(membership_id: uuid.UUID | str) -> str:
    """One renewal workflow per workshop membership, year after year."""
    return f"renewal/{membership_id}"


@dataclass
class RenewalInput:
    """The workflow's input. The service starts it as `{"membership_id": ...}` (the other
    fields default); the workflow carries them across its yearly continue-as-new."""

    membership_id: str
    # The highest change version already taken into account (carried across runs).
    known_version: int = 0
    # Years completed so far.
    cycle: int = 0
