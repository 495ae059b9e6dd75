"""What the groups service and its workflows agree on: names, ids and the inputs of the runs.

The groups service starts both workflows through its outbox (a JSON argument whose keys are the
fields of the input dataclass below; the fields it leaves out keep their defaults):
`Delegation` applies one process request, `RelationshipExpiry` ends a relationship at its expiry
date. The type names and the fields are in saved histories (tests/histories): renaming either
breaks the replay of runs in flight.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

DELEGATION_WORKFLOW = "Delegation"
EXPIRY_WORKFLOW = "RelationshipExpiry"


def delegation_workflow_id(process_request_id: uuid.UUID, attempt: int) -> str:
    """`delegation/<id>` for the first attempt; a retry is a new run with its own id."""
    base = f"delegation/{process_request_id}"
    return base if attempt == 1 else f"{base}/attempt-{attempt}"


def expiry_workflow_id(relationship_id: uuid.UUID, term: int) -> str:
    return f"relationship-expiry/{relationship_id}/{term}"


@dataclass
class DelegationInput:
    process_request_id: str
    attempt: int = 1
    group_name: str = ""
    # Where the previous run (before continue-as-new) stopped; "" from the start.
    cursor: str = ""
    # Activities per run before continuing as new (each applies many batches).
    activities_per_run: int = 20
    # Tries of one activity before its next batch is recorded as failed: with the workflow's
    # back-off (1 s doubling to 30 s), about 90 s, so a restarted groups service or database is
    # ridden out and only a batch that really cannot be applied is recorded as failed.
    batch_attempts: int = 8
    heartbeat_timeout_seconds: float = 10.0
    runs: int = 0


@dataclass
class ExpiryInput:
    relationship_id: str
    term: int
    # ISO 8601 instant at which the relationship expires.
    expire_time: str
