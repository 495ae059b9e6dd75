"""Every alert of the chart's rules is proven by `promtool test rules`: a case where it fires and
one where it stays quiet. The burn-rate alerts' cases are built from the SLO table (the input
series are the raw counters the processes export, at a rate that burns the budget 20 times too
fast, or half as fast as allowed, beside series the SLO must ignore); the cause alerts' cases
are written by hand in `*.test.yaml` beside this file."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from services.observability.generate import RULES_FILE
from services.observability.rules import RUNBOOK, all_alerts, burn_alerts
from services.observability.slo import SLOS, Slo
from tests.observability.promtool import needs_promtool, promtool

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
PER_MINUTE = 10_000
MINUTES = 70


def _labels(text: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="([^"]*)"', text))


def _selector(metric: str, labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{metric}{{{inner}}}"


def _series(metric: str, labels: dict[str, str], per_minute: float) -> dict[str, str]:
    return {"series": _selector(metric, labels), "values": f"0+{per_minute:g}x{MINUTES}"}


def _concrete(slo: Slo, where: dict[str, str]) -> dict[str, str]:
    """Label values that the SLO's selector matches: a regex by its first alternative, a
    negative matcher left out."""
    labels = {}
    for key, operator, value in re.findall(r'(\w+)(=~|!=|=)"([^"]*)"', slo.total):
        if operator == "=":
            labels[key] = value
        elif operator == "=~":
            labels[key] = value.split("|")[0]
    labels.update(where)
    return labels


def _traffic(slo: Slo, where: dict[str, str], bad_per_minute: float) -> list[dict[str, str]]:
    """Series of the raw counters where `bad_per_minute` of PER_MINUTE events are bad."""
    labels = _concrete(slo, where)
    if slo.bad is not None:  # availability: requests by status
        base = {**labels, "route": "/v1/example"}
        return [
            _series(
                "guichet_http_requests_total",
                {**base, "status": "200"},
                PER_MINUTE - bad_per_minute,
            ),
            _series("guichet_http_requests_total", {**base, "status": "503"}, bad_per_minute),
        ]
    assert slo.good is not None
    histogram = slo.good.split("{")[0].removesuffix("_bucket")
    le = _labels(slo.good)["le"]
    return [
        _series(f"{histogram}_count", labels, PER_MINUTE),
        _series(f"{histogram}_bucket", {**labels, "le": le}, PER_MINUTE - bad_per_minute),
        _series(f"{histogram}_bucket", {**labels, "le": "+Inf"}, PER_MINUTE),
    ]


def _subject(slo: Slo) -> tuple[dict[str, str], dict[str, str]]:
    """The evaluated group that burns, and a neighbour that stays healthy."""
    if slo.by == ("portal",):
        return {"portal": "groups"}, {"portal": "support"}
    workflow = _labels(slo.total)["workflow"]
    return {"workflow": workflow}, {}


def _expected(slo: Slo, alert_name: str, subject: dict[str, str]) -> dict[str, Any]:
    [alert] = [a for a in burn_alerts(slo) if a.name == alert_name]
    summary = alert.summary
    for key, value in subject.items():
        summary = summary.replace(f"{{{{ $labels.{key} }}}}", value)
    return {
        "exp_labels": {"severity": alert.severity, "team": "guichet", "slo": slo.name, **subject},
        "exp_annotations": {
            "summary": summary,
            "description": alert.description,
            "runbook_url": f"{RUNBOOK}#{alert.runbook}",
        },
    }


def burn_rate_tests() -> list[dict[str, Any]]:
    """Two promtool tests for all SLOs at once (each evaluation runs every rule, so one test per
    SLO would cost eight times as much): one where every SLO burns for its subject while a
    neighbour stays healthy, one at half the allowed rate beside out-of-scope errors."""
    burning: list[dict[str, str]] = []
    quiet: list[dict[str, str]] = []
    fires: list[dict[str, Any]] = []
    stays_quiet: list[dict[str, Any]] = []
    for slo in SLOS:
        subject, neighbour = _subject(slo)
        fast = round(PER_MINUTE * slo.budget * 20)
        calm = round(PER_MINUTE * slo.budget * 0.5)
        burning += _traffic(slo, subject, fast)
        if neighbour:
            burning += _traffic(slo, neighbour, calm)
        quiet += _traffic(slo, subject, calm)
        if slo.by == ("portal",):  # probes and unmatched paths are nobody's portal
            quiet += _traffic(slo, {"portal": "none"}, PER_MINUTE)
        elif slo.name == "delegation-duration":  # beyond 10,000 accounts: another objective
            quiet += _traffic(slo, {**subject, "size": "gt_100000"}, PER_MINUTE)
        for alert in burn_alerts(slo):
            fires.append(
                {
                    "eval_time": "65m",
                    "alertname": alert.name,
                    "exp_alerts": [_expected(slo, alert.name, subject)],
                }
            )
            stays_quiet.append({"eval_time": "65m", "alertname": alert.name, "exp_alerts": []})

    # Portal SLOs share their counters (reads and writes by method): deduplicated series.
    def unique(series: list[dict[str, str]]) -> list[dict[str, str]]:
        return list({s["series"]: s for s in series}.values())

    return [
        {
            "name": "every SLO burning 20 times too fast pages and tickets, for its subject only",
            "interval": "1m",
            "input_series": unique(burning),
            "alert_rule_test": fires,
        },
        {
            "name": "half the allowed rate, and errors outside the SLOs, stay quiet",
            "interval": "1m",
            "input_series": unique(quiet),
            "alert_rule_test": stays_quiet,
        },
    ]


def write_test_files(folder: Path) -> list[Path]:
    """The promtool test files, each naming the chart's rules. The hand-written cases of the cause
    alerts load only the rule group they test (its rules verbatim from the chart's file): every
    evaluation step runs every loaded rule, and the SLO groups would make them ten times dearer."""
    burn = folder / "burn_rate.test.yaml"
    burn.write_text(
        yaml.safe_dump(
            {
                "rule_files": [str(RULES_FILE)],
                "evaluation_interval": "5m",
                "tests": burn_rate_tests(),
            },
            sort_keys=False,
            width=200,
        )
    )
    rules = yaml.safe_load(RULES_FILE.read_text())
    causes = folder / "guichet-causes.rules.yaml"
    causes.write_text(
        yaml.safe_dump(
            {"groups": [g for g in rules["groups"] if g["name"] == "guichet-causes"]},
            sort_keys=False,
            width=200,
        )
    )
    files = [burn]
    for source in sorted(HERE.glob("*.test.yaml")):
        cases = yaml.safe_load(source.read_text())
        cases["rule_files"] = [str(causes)]
        target = folder / source.name
        target.write_text(yaml.safe_dump(cases, sort_keys=False, width=200))
        files.append(target)
    return files


def _cases(files: list[Path]) -> Iterator[tuple[str, bool]]:
    for path in files:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                yield case["alertname"], bool(case.get("exp_alerts"))


def test_every_alert_has_a_case_that_fires_and_one_that_stays_quiet(tmp_path: Path) -> None:
    cases = set(_cases(write_test_files(tmp_path)))
    for alert in all_alerts():
        assert (alert.name, True) in cases, f"{alert.name}: no case where it fires"
        assert (alert.name, False) in cases, f"{alert.name}: no case where it stays quiet"


@needs_promtool
def test_the_rules_file_is_valid() -> None:
    result = promtool("check", "rules", RULES_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_unit_tests_of_every_alert(tmp_path: Path) -> None:
    result = promtool("test", "rules", *write_test_files(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    anchors = set()
    for heading in re.findall(r"^#+ (.+)$", markdown, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_every_alert_links_to_a_section_of_the_runbook() -> None:
    anchors = _anchors((ROOT / "docs" / "runbook.md").read_text())
    missing = {alert.name: alert.runbook for alert in all_alerts() if alert.runbook not in anchors}
    assert not missing, f"runbook sections missing in docs/runbook.md: {missing}"
