"""Partners' rules, one module per aggregate or process (import from the owning module).

`stores` (registration, settings), `menu` (products, prices, deactivation), `orders` (intake,
status, payments, refunds, the partner's lists), `order_import` (bulk history), `escalations`
(out of stock), `couriers`, `check_ins`, `promotions`, `messages` (to support), `content_changes`,
`bank_details`; `common` holds what they share (callers, store access, small checks, paging).

Every function takes the caller's session keyword-only and never commits: the servicer owns the
transaction, so a refused request leaves nothing half-written. Time comes in as `now`; the caller
is `actor`, the verified principal. A store's data is reached only through `_store_for`, which
answers NOT_FOUND for a store the caller may not see (never revealing that it exists); rows of a
store are always looked up with the store's id in the query, so a foreign id is NOT_FOUND too.

Workflow starts (escalation, ticket opening, product reactivation) are outbox rows written in the
same transaction as the change that needs them.
"""
