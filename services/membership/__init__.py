"""The membership service: not built yet; it will follow the anatomy of services/identity."""
