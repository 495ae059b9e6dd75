"""What a service and the workflows it starts must agree on, and nothing else.

One module per service: workflow type names, workflow ids, signal and query names, the
dataclasses that cross the boundary, and pure arithmetic both sides compute (the SLA clock,
business time). A module here imports only the standard library and third-party packages:
never `services.*` and never another `workflows` module, so that a service may import it
without pulling in workflow code and a workflow may import it without pulling in SQLAlchemy.
The rule is checked by the import contracts in `pyproject.toml` (see docs/decisions.md).
"""
