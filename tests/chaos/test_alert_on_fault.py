"""An alert proven against a real fault: the worker stopped in the middle of a delegation, a real
Prometheus scraping the real processes with the chart's rules, and `DelegationNotMoving`'s
expression turning true within its `for:`; the worker back, and the expression clears."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from services.kit.testing import scaled
from services.observability.rules import CAUSES
from tests.chaos.harness import Chaos, eventually, record_fault

pytestmark = pytest.mark.slow

PROMETHEUS = shutil.which("prometheus")
[ALERT] = [alert for alert in CAUSES if alert.name == "DelegationNotMoving"]
SIZE = 100_000


def _seconds(duration: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    return float(duration[:-1]) * units[duration[-1]]


async def _query(client: httpx.AsyncClient, expr: str) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/query", params={"query": expr})
    response.raise_for_status()
    return list(response.json()["data"]["result"])


async def _alert_state(client: httpx.AsyncClient, name: str) -> str | None:
    response = await client.get("/api/v1/alerts")
    response.raise_for_status()
    states = [
        a["state"] for a in response.json()["data"]["alerts"] if a["labels"]["alertname"] == name
    ]
    return states[0] if states else None


@pytest.mark.skipif(PROMETHEUS is None, reason="no prometheus binary: `make prometheus` as root")
@pytest.mark.timeout(1200)
async def test_delegation_not_moving_turns_true_when_the_worker_stops_and_clears_after(
    chaos: Chaos, record_property: Callable[[str, object], None]
) -> None:
    assert PROMETHEUS is not None
    await chaos.stack.start_prometheus(PROMETHEUS, interval="1s")
    async with httpx.AsyncClient(base_url=chaos.stack.prometheus_url or "", timeout=10) as prom:
        # Every process is a healthy target, and the chart's rules are loaded.
        async def all_up() -> bool:
            response = await prom.get("/api/v1/targets")
            targets = response.json()["data"]["activeTargets"]
            return bool(targets) and all(t["health"] == "up" for t in targets)

        await eventually(all_up, within=60)
        groups = (await prom.get("/api/v1/rules")).json()["data"]["groups"]
        assert any(r["name"] == ALERT.name for g in groups for r in g["rules"])

        provider, employee = await chaos.provider_and_employee()
        group = await chaos.record_group(provider, SIZE)
        request = await chaos.assign(provider, group, employee)

        async def moving() -> bool:
            row = await chaos.request_row(request)
            assert row["status"] not in ("completed", "failed"), dict(row)
            return int(row["done"]) > 0

        await eventually(moving, within=120, every=0.05)
        assert await _query(prom, ALERT.expr) == []  # it moves: quiet

        await chaos.stack.kill("worker")
        stopped = time.monotonic()
        within = _seconds(ALERT.for_)

        async def fires() -> list[dict[str, Any]] | None:
            return await _query(prom, ALERT.expr) or None

        # Within its `for:` (stretched, as every deadline of the suite, for a loaded machine).
        [sample] = await eventually(fires, within=within, every=1.0)
        turned = time.monotonic() - stopped
        assert float(sample["value"][1]) > 120
        # Prometheus's own evaluation of the rule agrees: the alert is pending (it fires once
        # the expression has held for its `for:`).
        assert await eventually(lambda: _alert_state(prom, ALERT.name), within=30) in (
            "pending",
            "firing",
        )

        await chaos.stack.restart("worker")

        async def clears() -> bool:
            return await _query(prom, ALERT.expr) == []

        await eventually(clears, within=scaled(120), every=1.0)
        row = await chaos.finished(request, within=600)
        assert row["status"] == "completed", dict(row)
    record_property("alert_turned_true_after_seconds", round(turned, 1))
    record_fault(record_property, "alert DelegationNotMoving on a stopped worker", tried=1, lost=0)
