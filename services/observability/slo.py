"""The service level objectives of Guichet (docs/slo.md), one table for rules, dashboards, docs.

An SLO is a ratio of good events over all events, read from counters the processes export:
availability from `guichet_http_requests_total` (5xx are bad), latency and the workflow
objectives from histogram buckets (`le` = the objective's threshold, a bound of the histogram:
see `services.kit.metrics`). Portal SLOs are evaluated per portal (`portal` label, set by the
gateway from the route); workflow SLOs per workflow.
"""

from __future__ import annotations

from dataclasses import dataclass

# The error budget is spent over this window (the SRE workbook's burn rates assume 30 days).
WINDOW = "30d"
READ = 'method="GET"'
WRITE = 'method=~"POST|PUT|PATCH|DELETE"'
# Probes, docs and unmatched paths are nobody's portal.
PORTALS = 'portal!="none"'


@dataclass(frozen=True)
class Slo:
    """`total` and either `bad` or `good` are PromQL selectors of counters (rated by the
    rules); `by` the labels an objective is evaluated per."""

    name: str
    title: str
    objective: float  # e.g. 0.995
    description: str
    total: str
    bad: str | None
    good: str | None
    by: tuple[str, ...]
    metric: str  # what measures it, as docs/slo.md names it
    runbook: str  # anchor in docs/runbook.md
    dashboard: str  # the dashboard that shows it (its uid)

    @property
    def budget(self) -> float:
        return round(1 - self.objective, 6)

    def ratio(self, window: str) -> str:
        """Bad events over all events in `window`, per `by`."""
        by = ", ".join(self.by)
        total = f"sum by ({by}) (rate({self.total}[{window}]))"
        if self.bad is not None:
            return f"sum by ({by}) (rate({self.bad}[{window}]))\n/\n{total}"
        good = f"sum by ({by}) (rate({self.good}[{window}]))"
        return f"(\n  {total}\n  -\n  {good}\n)\n/\n{total}"


def _availability(kind: str, methods: str, objective: float) -> Slo:
    selector = f"{methods}, {PORTALS}"
    return Slo(
        name=f"portal-{kind}-availability",
        title=f"Portal {kind}s answered without a server error",
        objective=objective,
        description=f"{objective:.1%} of each portal's {kind}s (HTTP "
        f"{'GET' if kind == 'read' else 'POST, PUT, PATCH, DELETE'}) are answered without a "
        "5xx status by the gateway.",
        total=f"guichet_http_requests_total{{{selector}}}",
        bad=f'guichet_http_requests_total{{{selector}, status=~"5.."}}',
        good=None,
        by=("portal",),
        metric="guichet_http_requests_total{portal, method, status}",
        runbook="portal-availability",
        dashboard="guichet-portal",
    )


def _latency(kind: str, methods: str, objective: float, seconds: float) -> Slo:
    selector = f"{methods}, {PORTALS}"
    return Slo(
        name=f"portal-{kind}-latency",
        title=f"Portal {kind}s answered within {seconds:g} s",
        objective=objective,
        description=f"{objective:.0%} of each portal's {kind}s are answered within {seconds:g} s "
        "at the gateway (from the request's arrival to its last byte).",
        total=f"guichet_http_request_seconds_count{{{selector}}}",
        bad=None,
        good=f'guichet_http_request_seconds_bucket{{{selector}, le="{seconds!r}"}}',
        by=("portal",),
        metric=f'guichet_http_request_seconds_bucket{{le="{seconds!r}"}}',
        runbook="portal-latency",
        dashboard="guichet-portal",
    )


def _step(
    name: str,
    title: str,
    objective: float,
    description: str,
    histogram: str,
    selector: str,
    seconds: float,
    runbook: str,
    dashboard: str,
    by: tuple[str, ...] = ("workflow",),
) -> Slo:
    return Slo(
        name=name,
        title=title,
        objective=objective,
        description=description,
        total=f"{histogram}_count{{{selector}}}",
        bad=None,
        good=f'{histogram}_bucket{{{selector}, le="{seconds!r}"}}',
        by=by,
        metric=f'{histogram}_bucket{{{selector}, le="{seconds!r}"}}',
        runbook=runbook,
        dashboard=dashboard,
    )


SLOS: tuple[Slo, ...] = (
    _availability("read", READ, 0.995),
    _latency("read", READ, 0.99, 1.0),
    _availability("write", WRITE, 0.995),
    _latency("write", WRITE, 0.99, 2.0),
    _step(
        "delegation-duration",
        "Delegations of up to 10,000 accounts finished within 10 minutes",
        0.99,
        "99% of process requests (delegations) of up to 10,000 program accounts finish, "
        "completed or failed, within 10 minutes of being recorded.",
        "guichet_workflow_duration_seconds",
        'workflow="Delegation", size=~"le_100|le_1000|le_10000"',
        600.0,
        "delegation-slo",
        "guichet-delegation",
    ),
    _step(
        "sla-event-lateness",
        "SLA warnings and breaches recorded within a minute of their due time",
        0.99,
        "99% of SLA warnings and breaches are recorded on their ticket (priority raised, team "
        "mailed) within 60 s of the instant they were due.",
        "guichet_workflow_step_lateness_seconds",
        'workflow="TicketSla"',
        60.0,
        "ticket-sla-slo",
        "guichet-ticket-sla",
    ),
    _step(
        "renewal-letter-on-its-day",
        "Renewal letters sent on their day",
        0.999,
        "99.9% of anniversary letters go out on their day: within 24 h of the start (UTC) of "
        "the day they are due, the renewal date less the letter lead time.",
        "guichet_workflow_step_lateness_seconds",
        'workflow="Renewal", step="letter"',
        86400.0,
        "renewal-slo",
        "guichet-renewal",
    ),
    _step(
        "escalation-to-support",
        "Escalations reach support within 5 minutes of the answer deadline",
        0.99,
        "99% of out-of-stock escalations reach support (a support message with a decision "
        "deadline) within 5 minutes of the partner's answer deadline, at once when the customer "
        "refused earlier.",
        "guichet_workflow_step_lateness_seconds",
        'workflow="OrderEscalation", step="escalated"',
        300.0,
        "order-escalation-slo",
        "guichet-order-escalation",
    ),
)
