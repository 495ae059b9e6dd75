"""Membership's rules, one module per aggregate or process of DOMAIN.md.

Banner portal: `banner` (programs, workshop memberships), `options` (option-change requests),
`renewals` (what the renewal workflow asks of the service), `technicians` (technicians, training
courses), `claims` (labour-warranty claims). Association portal: `members` (members, yearly
fees), `trainings` (trainings, registrations), `coverage` (first-aid coverage requests),
`records` (client records, deletions, audit, imports), `merges` (duplicates and merges), with
the pure matching of `normalise` (name keys) and `duplicates` (the report). `common` holds what
they share: roles, input checks, pages, who may do what, mail.

Every function takes the caller's session keyword-only and never commits: the servicer owns the
transaction, so a refused request leaves nothing half-written. Time comes in as `now` (UTC; dates
are UTC calendar dates). The caller is `actor`: the verified principal, or None on the three
public calls. A tenant asking about another tenant's data gets NOT_FOUND, never a hint that it
exists; someone of the right tenant without the right role gets PERMISSION_DENIED.
"""
