"""Every operation of the gateway's OpenAPI, fuzzed by schemathesis against the real processes,
with every check it has (issue 24's gate): no 5xx, every answer in the documented shape, status
and headers, `Allow` naming every method, valid data accepted (positive_data_acceptance: only the
statuses tests/e2e/schemathesis.toml lists, so a 400 means the schema did not say a rule the
server enforces), invalid data refused (negative_data_rejection: the schema says a rule the server
does not enforce), and authentication not ignored.

Two roles, because each sees a different API: the operator (every portal's operator routes) and a
service provider's business account manager (a tenant, refused on the others' routes). `make test`
runs the quick pass: the documented examples and the coverage phase (every schema boundary: at
max and max+1, each enum value, each wrong type), positive and negative, with a fixed seed, and
three undeclared methods on each path. `make chaos` runs the thorough one: all eight undeclared
methods, random fuzzing with more examples, for a third role.

Under xdist the quick pass is a group of its own, on a stack of its own (another worker's), so
that it does not lengthen the browser tests' worker; run serially it comes last, after the
browser tests, and nothing runs on the stack after it (tests/conftest.py, FUZZ_GROUP and
LAST_IN_GROUP)."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from services.devstack.demo import DEMO_PASSWORD
from services.devstack.stack import ADMIN_USERNAME, Stack
from services.kit.testing import scaled

CONFIG = Path(__file__).with_name("schemathesis.toml")
# What a role's fuzzing must not do to the stack that later tests share: the bootstrap ops admin
# removing its own authenticator app would leave its role withheld for everyone after it
# (tests/identity/test_second_factor.py covers that route).
_SPARED: dict[str, tuple[str, ...]] = {
    ADMIN_USERNAME: ("--exclude-name", "DELETE /v1/me/second-factors/totp"),
}
SEED = "20261122"
QUICK_ROLES = (ADMIN_USERNAME, "dupont.jean")
QUICK_PHASES = "examples,coverage"
# The quick pass sends each path the methods of these it does not declare (routes declare GET,
# POST, PUT and five DELETE; none PATCH or TRACE), where schemathesis' default sends eight: 1,023 of
# a role's 8,800 cases, answered by the same router. The thorough pass keeps the eight.
QUICK_UNEXPECTED_METHODS = ("delete", "patch", "trace")


@pytest.mark.parametrize(
    ("role", "phases", "max_examples"),
    [
        *(pytest.param(role, QUICK_PHASES, "2", id=f"quick-{role}") for role in QUICK_ROLES),
        *(
            pytest.param(
                role,
                "examples,coverage,fuzzing",
                "8",
                id=f"thorough-{role}",
                marks=pytest.mark.slow,
            )
            for role in (*QUICK_ROLES, "napoli.manager")
        ),
    ],
)
async def test_every_operation_passes_every_check(
    stack: Stack,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
    role: str,
    phases: str,
    max_examples: str,
) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=scaled(30)) as client:
        if role == ADMIN_USERNAME:
            token = await stack.admin_token()  # the ops admin answers its TOTP
        else:
            response = await client.post(
                "/v1/auth/token", json={"username": role, "password": DEMO_PASSWORD}
            )
            assert response.status_code == 200, response.text
            token = response.json()["access_token"]
        # Built on first read (a few seconds on a busy machine): warm it before schemathesis,
        # which gives up loading after its own 10 s.
        assert (await client.get("/openapi.json")).status_code == 200
    config = CONFIG
    if phases == QUICK_PHASES:
        config = tmp_path / "schemathesis.toml"
        methods = ", ".join(f'"{method}"' for method in QUICK_UNEXPECTED_METHODS)
        config.write_text(
            f"{CONFIG.read_text()}\n[phases.coverage]\nunexpected-methods = [{methods}]\n"
        )
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(config),
        "run",
        f"{stack.gateway_url}/openapi.json",
        "--checks",
        "all",
        "--header",
        f"Authorization: Bearer {token}",
        "--max-examples",
        max_examples,
        "--seed",
        SEED,
        "--phases",
        phases,
        "--mode",
        "all",
        "--workers",
        "2",
        "--request-timeout",
        str(int(scaled(10))),
        "--no-shrink",
        "--continue-on-failure",
        *_SPARED.get(role, ()),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    (tmp_path / "schemathesis.txt").write_text(text)
    print(f"schemathesis output: {tmp_path / 'schemathesis.txt'}")
    # Failed checks fail the test; schemathesis' own internal errors (it is a fuzzer) do not.
    failures = re.findall(r"❌ (ST\d+) ([^:\n]+): (\d+)", text)
    assert not failures, (failures, text[-12000:])
    # The summary's count of cases (an NDJSON report of every case, 32 MB a role, said the same
    # and cost its writing and reading).
    generated = re.search(r"Test cases:\s+(\d+) generated", text)
    assert generated is not None and int(generated[1]) > 0, "schemathesis ran nothing"
    record_property(
        "reliability",
        {"kind": "input", "name": f"schemathesis ({role})", "tried": int(generated[1]), "lost": 0},
    )
    # A run answered mostly 401/403 checked nothing: the token died or was refused. (A tenant
    # meets 403 on the operator's and other portals' routes: about 30 operations.)
    refused = re.search(r"Authentication failed: (\d+) operations", text)
    assert refused is None or int(refused[1]) < 60, text[-4000:]
    assert "operations" in text.lower() or "passed" in text.lower(), text[-2000:]
