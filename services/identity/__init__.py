"""Identity: organisations, users, roles, credentials and tokens (JWKS) for every portal."""
