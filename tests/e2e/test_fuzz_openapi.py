"""Every operation of the gateway's OpenAPI, fuzzed by schemathesis as an authenticated operator
against the real processes: no 5xx, and every response conforms to the documented schema.

`make test` runs the quick pass: the documented examples and the schema's valid boundary cases
(1,503 cases, 25 s on a quiet machine). `make chaos` runs the thorough one: the invalid boundary
cases too (5,240 more cases: they took the quick pass from 25 s to 48 s, and to 85 s in a busy
`make test`), random fuzzing and more examples. Malformed input at the edge stays covered in
`make test` by tests/gateway/test_problems.py."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from services.devstack.stack import Stack

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
    ]
)


@pytest.mark.parametrize(
    ("phases", "mode", "max_examples"),
    [
        pytest.param("examples,coverage", "positive", "2", id="quick"),
        pytest.param(
            "examples,coverage,fuzzing", "all", "8", id="thorough", marks=pytest.mark.slow
        ),
    ],
)
async def test_no_operation_answers_5xx_or_breaks_its_schema(
    stack: Stack,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
    phases: str,
    mode: str,
    max_examples: str,
) -> None:
    token = await stack.admin_token()
    report = tmp_path / "report.json"
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{stack.gateway_url}/openapi.json",
        "--checks",
        CHECKS,
        "--header",
        f"Authorization: Bearer {token}",
        "--max-examples",
        max_examples,
        "--seed",
        "20261122",
        "--phases",
        phases,
        "--mode",
        mode,
        "--workers",
        "2",
        "--request-timeout",
        "10",
        "--no-shrink",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    (tmp_path / "schemathesis.txt").write_text(text)
    print(f"schemathesis output: {tmp_path / 'schemathesis.txt'}")
    # Failed checks fail the test; schemathesis' own internal errors (it is a fuzzer) do not.
    failures = re.findall(r"❌ (ST\d+) ([^:\n]+): (\d+)", text)
    assert not failures, text[-8000:]
    events = [json.loads(line) for line in report.read_text().splitlines() if line.strip()]
    cases = [
        e["ScenarioFinished"]["recorder"].get("cases", {})
        for e in events
        if "ScenarioFinished" in e
    ]
    record_property(
        "reliability",
        {"kind": "input", "name": "schemathesis", "tried": sum(map(len, cases)), "lost": 0},
    )
    assert events, "schemathesis ran nothing"
    assert "operations" in text.lower() or "passed" in text.lower(), text[-2000:]
