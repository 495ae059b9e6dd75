"""The support servicer's methods, one mixin per aggregate, composed in `services.support.servicer`.

- `base`: the servicer's state (sessions, settings, identity look-ups, relays, clock) and helpers.
- `protos`: proto <-> domain mapping (enums both ways, rows and views to messages).
- `plans`: calendars, plans, contracts. `categories`: categories, answers, deflection.
- `tickets`: tickets, partner messages, attachments. `sla`: SLA events and the SLA report.
"""
