"""The membership service: not built yet; it will follow the identity service's anatomy (see ARCHITECTURE.md)."""
