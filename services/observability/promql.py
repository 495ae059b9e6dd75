"""The metric names a PromQL expression reads, without a PromQL parser (none is packaged for
Python): string literals, label matchers, ranges and label lists (`by (…)`, `on (…)`…) are cut,
then every identifier that is not a function, a keyword or a number is a metric name. Enough for
the expressions of this project's rules and dashboards, which the tests check against a live
scrape (tests/e2e/test_monitoring.py)."""

from __future__ import annotations

import re

_KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
     "bool", "offset", "inf", "nan"}
)  # fmt: skip
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_LABEL_LISTS = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", re.IGNORECASE
)
_BRACES = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_IDENTIFIER = re.compile(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?")


def metric_names(expr: str) -> set[str]:
    text = _STRINGS.sub('""', expr)
    text = _BRACES.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _LABEL_LISTS.sub(" ", text)
    names = set()
    for name, call in _IDENTIFIER.findall(text):
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names
