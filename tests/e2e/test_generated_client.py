"""The third-party generator gate (issue 24): openapi-python-client, the generator most Python
clients of an OpenAPI document are made with, takes our document whole, and the client it makes
works against the real processes.

The generator runs from its own environment (`.tools/openapi-client`, installed by `make`, like
the chart tools) on the committed document, which `make proto-check` proves to be the live one.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from services.devstack.demo import DEMO_PASSWORD
from services.devstack.stack import ADMIN_USERNAME, Stack
from services.kit.testing import scaled

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / ".tools" / "openapi-client" / "bin" / "openapi-python-client"
CONFIG = ROOT / "tests" / "contract" / "openapi-python-client.yaml"
DOCUMENT = ROOT / "tests" / "gateway" / "openapi.json"
PACKAGE = "guichet_api_client"


def _operations() -> list[tuple[str, str, str]]:
    document = json.loads(DOCUMENT.read_text())
    return [
        (method, path, operation["operationId"])
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """The client, generated once for the module: its folder and the generator's output."""
    if not GENERATOR.exists():
        pytest.fail(f"{GENERATOR} is missing: run `make install`")
    folder = tmp_path_factory.mktemp("generated")
    run = subprocess.run(
        [
            *(str(GENERATOR), "generate", "--path", str(DOCUMENT), "--config", str(CONFIG)),
            *("--meta", "none", "--output-path", str(folder / PACKAGE)),
        ],
        capture_output=True,
        text=True,
        timeout=scaled(120),
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    sys.path.insert(0, str(folder))
    try:
        yield folder / PACKAGE, output
    finally:
        sys.path.remove(str(folder))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def test_the_generator_takes_every_operation_without_a_warning(
    generated: tuple[Path, str],
) -> None:
    folder, output = generated
    assert "warning" not in output.lower(), output
    modules = {path.stem for path in (folder / "api").rglob("*.py") if path.name != "__init__.py"}
    wanted = {_snake(operation_id) for _, _, operation_id in _operations()}
    assert sorted(wanted - modules) == []
    assert len(modules) == len(_operations())


def _snake(operation_id: str) -> str:
    out = ""
    for char in operation_id:
        out += f"_{char.lower()}" if char.isupper() else char
    return out


def _api(tag: str, operation: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.api.{tag}.{operation}")


async def _client(stack: Stack, username: str, password: str) -> Any:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=scaled(30)) as http:
        response = await http.post(
            "/v1/auth/token", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
    module = importlib.import_module(PACKAGE)
    return module.AuthenticatedClient(
        base_url=stack.gateway_url,
        token=response.json()["access_token"],
        timeout=httpx.Timeout(scaled(30)),
        raise_on_unexpected_status=True,
    )


async def test_the_generated_client_calls_each_portal(
    stack: Stack, generated: tuple[Path, str]
) -> None:
    """One call per portal, through the generated methods and models only."""
    admin = await _client(stack, ADMIN_USERNAME, stack.secrets.admin_password)
    me = await _api("me", "get_me").asyncio_detailed(client=admin)
    assert me.status_code == 200 and me.parsed.username == ADMIN_USERNAME

    organisations = await _api("organisations", "list_organisations").asyncio_detailed(client=admin)
    assert organisations.status_code == 200
    by_code = {o.code: o for o in organisations.parsed.items}

    manager = await _client(stack, "dupont.jean", DEMO_PASSWORD)
    groups = await _api("client_groups", "list_groups").asyncio_detailed(
        provider_id=by_code["SP-DUPONT"].id, client=manager
    )
    assert groups.status_code == 200, groups.content

    categories = await _api("support", "list_categories").asyncio_detailed(client=admin)
    assert categories.status_code == 200, categories.content

    programs = await _api("workshops", "list_programs").asyncio_detailed(client=admin)
    assert programs.status_code == 200, programs.content

    association = await _client(stack, "assoc.admin", DEMO_PASSWORD)
    trainings = await _api("associations", "list_trainings").asyncio_detailed(
        association_id=by_code["75"].id, client=association
    )
    assert trainings.status_code == 200, trainings.content

    partner = await _client(stack, "napoli.manager", DEMO_PASSWORD)
    store = await _api("partners", "get_store").asyncio_detailed(
        store_id=by_code["DP-NAPOLI"].id, client=partner
    )
    assert store.status_code == 200, store.content
    assert store.parsed.name == "Pizzeria Napoli"
