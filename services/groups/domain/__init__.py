"""Groups' rules, one module per aggregate or process of DOMAIN.md; import from the owner.

- `relationships`: provider-client relationships, recorded and listed; `expiry`: their end.
- `clients`: client businesses and their program accounts, as recorded by integrations.
- `client_groups`: groups and their names; `membership`: which clients a group may hold;
  `group_changes`: saving a group's changes (or a dry run's access summary).
- `employees`: who may be assigned to groups, and their assignments.
- `process_requests`: the record of each change of access, its workflow start, retries;
  `batches`: the Delegation workflow's batches that apply a request.
- `authorisation`: who may call what; `common`: parsing, pages, counts they all share.

Every function takes the caller's session keyword-only and never commits: the servicer (or the
worker's call) owns the transaction, so a refused request leaves nothing half-written. Time comes
in as `now`; the caller is `actor`, the verified principal. Access itself is never written in the
request: a change records what the group should be plus a process request and its outbox row, and
the Delegation workflow applies it batch by batch (docs/groups.md).
"""
