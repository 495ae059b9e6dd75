"""The partners service: the delivery-partner back office (docs/partners.md)."""
