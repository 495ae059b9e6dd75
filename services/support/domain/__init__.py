"""Support's rules, one module per aggregate or process; import from the module that owns a name.

- `calendars`: business calendars (hours, holidays, closed days) and their `CalendarSpec`.
- `plans`: plans with their SLA targets per priority, and contracts (an organisation's plan).
- `categories`: categories, their questions and answers, and FAQ deflection.
- `tickets`: opening a ticket from the extranet form; lists, queue and one ticket's history.
- `partner_messages`: a delivery partner's "send us a message", which becomes a ticket.
- `ticket_changes`: replies, status, priority, support or consulting, consulting time.
- `attachments`: files on a ticket.
- `sla`: the ticket's SLA clocks, the workflow's start and signals, and the events it reports.
- `reports`: "% within SLA" per plan, deflection per category, consulting time.
- `common`: roles, limits, field checks, paging and who the caller is, shared by all of them.

Every function takes the caller's session keyword-only and never commits: the servicer owns the
transaction, so a refused request leaves nothing half-written. Time comes in as `now`; the caller
is `actor`, the verified principal.
"""
