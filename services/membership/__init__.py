"""The membership service: garages' banner programs and renewals, associations' members,
trainings, first-aid coverage requests, client records and their duplicates (docs/membership.md)."""
