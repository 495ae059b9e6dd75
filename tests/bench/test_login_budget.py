"""The login bench's budget line: what the target leaves beside a hash that shares the cores."""

from __future__ import annotations

import pytest

from bench.login import TARGET_RATIO, budget_per_login


def test_budget_is_the_target_cost_less_the_hash_on_every_core() -> None:
    # 50 raw verifications per CPU-second on an idle machine: 20 ms each; at 0.8 a login may
    # cost 25 ms. With every core hashing, 45 per CPU-second: 22.2 ms, so 2.8 ms are left.
    at_target, left = budget_per_login(50.0, 45.0)
    assert at_target == pytest.approx(1 / (TARGET_RATIO * 50.0))
    assert at_target == pytest.approx(0.025)
    assert left == pytest.approx(0.025 - 1 / 45.0)
    assert left == pytest.approx(0.00278, abs=1e-5)


def test_nothing_is_left_when_sharing_the_cores_costs_a_fifth() -> None:
    # Every core hashing at 0.8 of the idle rate: the hash alone spends the whole budget.
    at_target, left = budget_per_login(50.0, 50.0 * TARGET_RATIO)
    assert left == pytest.approx(0.0, abs=1e-12)
    assert at_target > 0
