"""What the services can refuse with, read from their source: every `reason=` given to a domain
error and every `code=` given to a field violation. The gateway's registry of problem types and
field codes (services/gateway/problem_types.py) is compared with it by test_problem_types.py."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SERVICES = Path(__file__).resolve().parents[2] / "services"
SERVICE_PACKAGES = ("identity", "groups", "support", "partners", "membership", "kit")

# The HTTP status each domain error reaches (services/gateway/problems.py, GRPC_TO_HTTP).
STATUS_OF_ERROR = {
    "NotFound": 404,
    "AlreadyExists": 409,
    "FailedPrecondition": 409,
    "DomainError": 409,
    "PermissionDenied": 403,
    "Unauthenticated": 401,
    "ResourceExhausted": 429,
    "InvalidArgument": 400,
}


def _sources() -> Iterator[tuple[Path, ast.Module]]:
    for package in SERVICE_PACKAGES:
        for path in sorted((SERVICES / package).rglob("*.py")):
            if "migrations" in path.parts or path.name.endswith("_pb2.py"):
                continue
            yield path, ast.parse(path.read_text(), str(path))


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def service_reasons() -> set[tuple[str, int]]:
    """(reason, status) of every domain error raised with an explicit `reason=`."""
    found: set[tuple[str, int]] = set()
    for _, tree in _sources():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            status = STATUS_OF_ERROR.get(_name(node.func))
            if status is None:
                continue
            for keyword in node.keywords:
                if keyword.arg == "reason" and isinstance(keyword.value, ast.Constant):
                    found.add((str(keyword.value.value), status))
    return found


def _constant(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def service_field_codes() -> set[str]:
    """Every `code=` given to a violation (Validator.check/require/add, or a helper's `code=`),
    the third argument of every `v.add(field, description, code)`, and the third item of every
    literal (field, description, code) violation."""
    found: set[str] = set()
    for _, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _name(node.func) in STATUS_OF_ERROR:
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Tuple) and len(inner.elts) == 3:
                        code = _constant(inner.elts[2])
                        if code is not None:
                            found.add(code)
            if (
                isinstance(node, ast.Call)
                and _name(node.func) == "add"
                and len(node.args) == 3
                and _constant(node.args[2]) is not None
            ):
                found.add(str(_constant(node.args[2])))
            if isinstance(node, ast.Call):
                for keyword in node.keywords:
                    value = keyword.value
                    if (
                        keyword.arg == "code"
                        and isinstance(value, ast.Constant)
                        and isinstance(value.value, str)
                    ):
                        found.add(value.value)
    return found
