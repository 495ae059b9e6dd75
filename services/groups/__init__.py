"""The groups service: client groups and delegated access for service providers."""
