"""The end-to-end tests run on the whole stack (tests/stack_fixture.py)."""

from tests.stack_fixture import stack

__all__ = ["stack"]
