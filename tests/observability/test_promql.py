"""The metric names read from PromQL, on the shapes of this project's rules and dashboards."""

from __future__ import annotations

import pytest

from services.observability.promql import metric_names


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            "max(guichet_groups_in_flight_idle_seconds) > 120",
            {"guichet_groups_in_flight_idle_seconds"},
        ),
        (
            "histogram_quantile(0.99, sum by (le, route) "
            '(rate(guichet_http_request_seconds_bucket{portal="groups", le="1.0"}[5m])))',
            {"guichet_http_request_seconds_bucket"},
        ),
        (
            'sum(rate(a_total{x=~"b|c"}[1h])) / ignoring (le) sum(rate(b_count[1h]))'
            " and on (service) c:rule:ratio > (14.4 * 0.01)",
            {"a_total", "b_count", "c:rule:ratio"},
        ),
        ('up{job=~"guichet.*"} == 0 or absent(up{job="by (x)"})', {"up"}),
        (
            'sum by (activity_type) (rate(t{activity_type=~"partners\\\\.escalation\\\\..*"}[5m]))',
            {"t"},
        ),
    ],
)
def test_metric_names(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names
