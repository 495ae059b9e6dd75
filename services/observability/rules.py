"""Prometheus rules: the SLOs' recording rules and burn-rate alerts, and the cause alerts.

Burn-rate alerts follow the Google SRE workbook (chapter 5, "Alerting on SLOs", table 5-8):
a page when the error budget of the 30-day window burns 14.4 times too fast over an hour (and
still over the last 5 minutes), or 6 times over 6 hours (and the last 30 minutes); a ticket at 3
times over a day (and 2 hours), or once over 3 days (and 6 hours). The short window makes an
alert stop soon after the problem does. An SLO without events (no traffic, or a stopped worker:
no workflow step is recorded at all) cannot burn: the cause alerts below catch what stops
moving. Every alert's `runbook_url` leads to its section of docs/runbook.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from services.observability.slo import SLOS, WINDOW, Slo

# The runbook's address: the chart replaces it with `monitoring.runbookBaseUrl` when set.
RUNBOOK = "https://guichet.dev/docs/runbook"
RECORD = "guichet_slo:errors:ratio_rate{window}"
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


@dataclass(frozen=True)
class Burn:
    severity: str
    factor: float
    long: str
    short: str


# (long, short) window pairs per alert; the workbook's factors for a 30-day window.
FAST = (Burn("page", 14.4, "1h", "5m"), Burn("page", 6.0, "6h", "30m"))
SLOW = (Burn("ticket", 3.0, "1d", "2h"), Burn("ticket", 1.0, "3d", "6h"))


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_: str
    severity: str
    summary: str
    description: str
    runbook: str  # the anchor of its section in docs/runbook.md

    def rule(self) -> dict[str, Any]:
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": self.for_,
            "labels": {"severity": self.severity, "team": "guichet"},
            "annotations": {
                "summary": self.summary,
                "description": self.description,
                "runbook_url": f"{RUNBOOK}#{self.runbook}",
            },
        }


def camel(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[-_]", name))


def recording_rules(slo: Slo) -> list[dict[str, Any]]:
    return [
        {
            "record": RECORD.format(window=window),
            "expr": slo.ratio(window),
            "labels": {"slo": slo.name},
        }
        for window in WINDOWS
    ]


def burn_alerts(slo: Slo) -> list[Alert]:
    def condition(burns: tuple[Burn, ...]) -> str:
        parts = []
        for burn in burns:
            threshold = f"({burn.factor:g} * {slo.budget:g})"
            long = f'{RECORD.format(window=burn.long)}{{slo="{slo.name}"}} > {threshold}'
            short = f'{RECORD.format(window=burn.short)}{{slo="{slo.name}"}} > {threshold}'
            parts.append(f"(\n  {long}\n  and\n  {short}\n)")
        return "\nor\n".join(parts)

    per = ", ".join(f"{{{{ $labels.{label} }}}}" for label in slo.by)
    return [
        Alert(
            name=f"{camel(slo.name)}BudgetBurnFast",
            expr=condition(FAST),
            for_="2m",
            severity="page",
            summary=f"{slo.title}: the error budget burns fast ({per})",
            description=f"{slo.description} At this rate the {WINDOW} budget "
            f"({slo.budget:.2%} of events) is gone within two days.",
            runbook=slo.runbook,
        ),
        Alert(
            name=f"{camel(slo.name)}BudgetBurnSlow",
            expr=condition(SLOW),
            for_="15m",
            severity="ticket",
            summary=f"{slo.title}: the error budget burns ({per})",
            description=f"{slo.description} At this rate the {WINDOW} budget "
            f"({slo.budget:.2%} of events) is gone before the window ends.",
            runbook=slo.runbook,
        ),
    ]


CAUSES: tuple[Alert, ...] = (
    Alert(
        name="DelegationNotMoving",
        expr="max(guichet_groups_in_flight_idle_seconds) > 120",
        for_="3m",
        severity="page",
        summary="A delegation has not moved for {{ $value | humanizeDuration }}",
        description="A pending or in-progress process request has not changed for more than "
        "two minutes (a batch takes seconds): no worker polls, its run is stuck or was stopped.",
        runbook="delegationnotmoving",
    ),
    Alert(
        name="EscalationNotMoving",
        expr="max(guichet_partners_escalations_overdue_seconds) > 300",
        for_="5m",
        severity="page",
        summary="An out-of-stock escalation is {{ $value | humanizeDuration }} past its deadline",
        description="An escalation is still waiting for the customer's answer, or for support's "
        "decision, more than 5 minutes after its deadline: its OrderEscalation run is not moving.",
        runbook="escalationnotmoving",
    ),
    Alert(
        name="OutboxNotDraining",
        expr="max by (service) (guichet_outbox_oldest_pending_seconds) > 300",
        for_="5m",
        severity="page",
        summary="{{ $labels.service }}'s outbox holds a workflow start for "
        "{{ $value | humanizeDuration }}",
        description="A workflow start recorded by {{ $labels.service }} has waited more than 5 "
        "minutes: Temporal is unreachable from the service, or refuses the start.",
        runbook="outboxnotdraining",
    ),
    Alert(
        name="SlaSignalsNotDelivered",
        expr="max(guichet_support_sla_signals_oldest_pending_seconds) > 300",
        for_="5m",
        severity="page",
        summary="Ticket events wait {{ $value | humanizeDuration }} for their TicketSla run",
        description="Ticket events have not reached their TicketSla workflow for more than 5 "
        "minutes: SLA clocks are not paused, resumed or stopped as they should be.",
        runbook="slasignalsnotdelivered",
    ),
    Alert(
        name="SlaBacklog",
        expr='sum(guichet_support_open_tickets{sla_state=~"warned|breached"}) > 25',
        for_="30m",
        severity="ticket",
        summary="{{ $value }} open tickets are past their SLA warning or breached",
        description="More than 25 open tickets have been warned or have breached their SLA for "
        "half an hour: support is behind (a staffing matter more than a technical one).",
        runbook="slabacklog",
    ),
    Alert(
        name="WorkflowTaskFailures",
        expr="sum by (workflow_type) (rate(temporal_workflow_task_execution_failed_total[10m]))"
        " > 0",
        for_="10m",
        severity="page",
        summary="{{ $labels.workflow_type }} workflow tasks keep failing",
        description="Workflow tasks of {{ $labels.workflow_type }} have failed for 10 minutes: "
        "a bug or a non-deterministic change; the runs wait, nothing moves.",
        runbook="workflowtaskfailures",
    ),
    Alert(
        name="ActivityFailuresHigh",
        # Activities and local activities alike: mails (`send_mail`) and SLA reports
        # (`record_sla_event`) run as local activities, counted apart by the SDK.
        expr="(\n"
        "  sum by (activity_type) (rate(temporal_activity_execution_failed_total[15m]))\n"
        "  /\n"
        "  sum by (activity_type) (rate(temporal_activity_execution_latency_seconds_count[15m]))\n"
        "  or\n"
        "  sum by (activity_type) (rate(temporal_local_activity_execution_failed_total[15m]))\n"
        "  /\n"
        "  sum by (activity_type)\n"
        "    (rate(temporal_local_activity_execution_latency_seconds_count[15m]))\n"
        ")\n"
        "> 0.1",
        for_="15m",
        severity="ticket",
        summary="{{ $value | humanizePercentage }} of {{ $labels.activity_type }} attempts fail",
        description="More than 10% of the attempts of {{ $labels.activity_type }} failed over 15 "
        "minutes; they are retried, but the steps they carry are late.",
        runbook="activityfailureshigh",
    ),
    Alert(
        name="LoginLockoutsSpiking",
        expr="sum(increase(guichet_identity_login_throttled_total[10m])) > 20\n"
        "and\n"
        "sum(rate(guichet_identity_login_throttled_total[10m]))\n"
        "  > 5 * sum(rate(guichet_identity_login_throttled_total[1d]))",
        for_="5m",
        severity="ticket",
        summary="{{ $value }} throttled logins in 10 minutes",
        description="Logins refused by the brute-force throttle are five times their daily rate: "
        "a password-guessing campaign, or a client that retries a wrong password in a loop.",
        runbook="loginlockoutsspiking",
    ),
    Alert(
        name="DatabasePoolExhausted",
        expr="sum by (service) (rate(guichet_db_pool_timeouts_total[5m])) > 0\n"
        "or\n"
        "histogram_quantile(0.99, sum by (service, le) "
        "(rate(guichet_db_pool_wait_seconds_bucket[5m]))) > 0.5",
        for_="5m",
        severity="page",
        summary="{{ $labels.service }} waits for database connections",
        description="Requests of {{ $labels.service }} wait more than half a second for a pooled "
        "connection (p99), or give up: the pool is exhausted.",
        runbook="databasepoolexhausted",
    ),
    Alert(
        name="BusinessGaugesDown",
        expr="min by (service) (guichet_db_gauges_up) == 0",
        for_="5m",
        severity="ticket",
        summary="{{ $labels.service }} cannot read its business gauges",
        description="The query behind {{ $labels.service }}'s business gauges has failed for 5 "
        "minutes (its database is away): the alerts that read them are blind.",
        runbook="businessgaugesdown",
    ),
    Alert(
        name="BackendErrors",
        expr="sum by (grpc_service) (rate(guichet_grpc_client_handled_total"
        '{grpc_code=~"UNAVAILABLE|DEADLINE_EXCEEDED|INTERNAL|UNKNOWN"}[5m]))\n'
        "/\n"
        "sum by (grpc_service) (rate(guichet_grpc_client_handled_total[5m]))\n"
        "> 0.05",
        for_="5m",
        severity="page",
        summary="{{ $value | humanizePercentage }} of calls to {{ $labels.grpc_service }} fail",
        description="More than 5% of the gRPC calls the gateway and the worker make to "
        "{{ $labels.grpc_service }} end unavailable, past their deadline or in an internal "
        "error.",
        runbook="backenderrors",
    ),
    Alert(
        name="TargetDown",
        expr='up{job=~"guichet.*"} == 0',
        for_="5m",
        severity="ticket",
        summary="{{ $labels.job }} {{ $labels.instance }} cannot be scraped",
        description="Prometheus has not reached {{ $labels.instance }} for 5 minutes: the "
        "process is down or its metrics port is closed.",
        runbook="targetdown",
    ),
)


def all_alerts() -> list[Alert]:
    return [alert for slo in SLOS for alert in burn_alerts(slo)] + list(CAUSES)


def rule_groups() -> dict[str, Any]:
    """The rules file: `groups:` as Prometheus and a PrometheusRule's `spec` both take it."""
    return {
        "groups": [
            {
                "name": "guichet-slo-recording",
                "rules": [rule for slo in SLOS for rule in recording_rules(slo)],
            },
            {
                "name": "guichet-slo-alerts",
                "rules": [alert.rule() for slo in SLOS for alert in burn_alerts(slo)],
            },
            {"name": "guichet-causes", "rules": [alert.rule() for alert in CAUSES]},
        ]
    }
