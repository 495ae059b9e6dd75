"""Identity's rules, one module per aggregate or process; import from the module that owns a rule.

- `accounts`: the user row, unique usernames, the profile and when it is complete
- `registration`: self sign-up and e-mail verification
- `credentials`: username and password rules, forgot/reset password, forgotten usernames
- `tokens`: login with lockout, refresh rotation, logout, service tokens
- `signing_keys`: key rotation, the JWKS, signing
- `organisations`: organisations, their members, granting and revoking roles
- `roles`: the roles of each organisation kind and who may administer what
- `validation_queue`: the admin's accounts to validate, and validation (association fee check)
- `admin`: an admin's account pages (create, search, complete an e-mail, audit trail)
- `startup`: service clients, first key and first operator admin at start
- `links` (one-time mailed links) and `common` (checks, audit, mail, paging) serve the others

Every function takes the caller's session keyword-only and never commits: the servicer owns the
transaction, so a refused request leaves nothing half-written. Time comes in as `now` so that one
call sees one instant. The caller is `actor` (the verified principal, or None on public calls).
"""
