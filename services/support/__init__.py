"""Support: plans and SLA targets, calendars, contracts, categories and FAQ, tickets, SLA events."""
