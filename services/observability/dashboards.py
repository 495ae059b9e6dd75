"""Grafana dashboards (placeholder until written)."""

from __future__ import annotations


def dashboards() -> dict[str, str]:
    return {}
