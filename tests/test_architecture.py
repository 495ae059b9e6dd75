"""The house's layout rules, checked on the real tree (docs/decisions.md, "One house").

The import contracts live in pyproject.toml and run through import-linter; these tests prove they
hold today and that they are live: a deliberate crossing, made in a copy of the tree, breaks them.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
MAX_LINES = 800


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(tree / "pyproject.toml")],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _copy_of_the_tree(destination: Path) -> Path:
    """The Python sources of services/ and workflows/ and the contracts, nothing else."""
    ignore = shutil.ignore_patterns("__pycache__", "migrations", "*.pyc")
    for package in ("services", "workflows"):
        shutil.copytree(ROOT / package, destination / package, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", destination / "pyproject.toml")
    return destination


def test_the_import_contracts_hold() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.lower().replace("0 broken", "")


@pytest.mark.parametrize(
    ("importer", "crossing", "contract"),
    [
        (
            "services/identity/__init__.py",
            "import services.groups.models",
            "Services never import each other",
        ),
        (
            "services/support/__init__.py",
            "import workflows.ticket_sla",
            "Services know of workflows only their contracts",
        ),
        (
            "workflows/__init__.py",
            "import services.partners.models",
            "Workflows and activities import no service implementation",
        ),
        (
            "services/kit/__init__.py",
            "import services.identity.models",
            "The kit imports no service and no workflow",
        ),
    ],
)
def test_a_deliberate_crossing_breaks_the_contracts(
    tmp_path: Path, importer: str, crossing: str, contract: str
) -> None:
    tree = _copy_of_the_tree(tmp_path)
    module = tree / importer
    module.write_text(module.read_text() + f"\n{crossing}  # deliberate crossing\n")
    result = _lint_imports(tree)
    assert result.returncode != 0, result.stdout
    assert f"{contract} BROKEN" in result.stdout, result.stdout


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_contracts_import_only_other_contracts_and_libraries() -> None:
    """A contract module stays importable by both sides: no service code, no workflow code."""
    offenders = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in (ROOT / "workflows" / "contracts").rglob("*.py")
        for name in _imported_modules(path)
        if name.split(".")[0] == "services"
        or (name.split(".")[0] == "workflows" and not name.startswith("workflows.contracts"))
    }
    assert not offenders, sorted(offenders)


def test_no_source_file_is_over_the_size_a_reader_can_hold() -> None:
    """Outside the generated protos and the tests, a module stays under 800 lines."""
    too_long = {
        str(path.relative_to(ROOT)): count
        for folder in ("services", "workflows", "bench")
        for path in (ROOT / folder).rglob("*.py")
        if "migrations" not in path.parts
        and (count := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not too_long, too_long
