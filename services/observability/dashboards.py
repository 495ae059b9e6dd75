"""Grafana dashboards as code (grafana-foundation-sdk): an overview of every objective, one
dashboard per portal and one per workflow. Each panel's query names metrics the processes
export (checked against a live scrape of the test stack: tests/e2e/test_monitoring.py) or the
recording rules of `services.observability.rules`.

Every dashboard takes its Prometheus from a `datasource` variable, so the same JSON works in any
Grafana; the chart ships them as ConfigMaps for Grafana's dashboard sidecar.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

from services.observability.slo import SLOS, Slo

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
TAGS = ["guichet"]


@dataclass(frozen=True)
class Portal:
    name: str
    title: str
    service: str  # the service behind most of its routes


PORTALS = (
    Portal("account", "Account (sign-in, registration, one's own account)", "identity"),
    Portal("groups", "Client groups (service providers)", "groups"),
    Portal("support", "Support (tickets, SLA)", "support"),
    Portal("partners", "Delivery partners", "partners"),
    Portal("workshops", "Workshops (banner program)", "membership"),
    Portal("associations", "Associations", "membership"),
    Portal("operator", "Operator back office", "identity"),
)


def _query(expr: str, legend: str = "") -> prometheus.Dataquery:
    query = prometheus.Dataquery().expr(expr).range()
    return query.legend_format(legend) if legend else query


def graph(
    title: str, *queries: tuple[str, str], unit: str = "short", description: str = ""
) -> timeseries.Panel:
    panel = timeseries.Panel().title(title).datasource(DATASOURCE).unit(unit).height(8).span(12)
    if description:
        panel = panel.description(description)
    for expr, legend in queries:
        panel = panel.with_target(_query(expr, legend))
    return panel


def number(title: str, expr: str, *, unit: str = "short", description: str = "") -> stat.Panel:
    panel = (
        stat.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .unit(unit)
        .height(4)
        .span(6)
        .with_target(_query(expr).instant())
    )
    return panel.description(description) if description else panel


def _board(uid: str, title: str, description: str) -> dashboard.Dashboard:
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .with_variable(
            dashboard.DatasourceVariable("datasource").label("Prometheus").type("prometheus")
        )
    )


def _burn(slo: Slo, window: str, where: str = "") -> str:
    """How many times faster than allowed the SLO's budget burns over `window`."""
    selector = f'slo="{slo.name}"' + (f", {where}" if where else "")
    return f"guichet_slo:errors:ratio_rate{window}{{{selector}}} / {slo.budget:g}"


def _slo_rows(board: dashboard.Dashboard, slos: tuple[Slo, ...], where: str = "") -> None:
    for slo in slos:
        by = " ".join(f"{{{{{label}}}}}" for label in slo.by)
        board.with_row(dashboard.Row(f"SLO: {slo.title} ({slo.objective:.1%})"))
        board.with_panel(
            graph(
                "Error budget burn rate (1 = spent exactly over 30 days)",
                (_burn(slo, "1h", where), f"1h {by}"),
                (_burn(slo, "6h", where), f"6h {by}"),
                (_burn(slo, "1d", where), f"1d {by}"),
                description=f"{slo.description} Pages above 14.4 (1 h) or 6 (6 h); tickets "
                "above 3 (1 day) or 1 (3 days). Runbook: docs/runbook.md#" + slo.runbook,
            )
        )
        board.with_panel(
            graph(
                "Bad events (share of all, 5 min)",
                (
                    f'guichet_slo:errors:ratio_rate5m{{slo="{slo.name}"'
                    + (f", {where}" if where else "")
                    + "}",
                    by,
                ),
                unit="percentunit",
            )
        )


def _render(board: dashboard.Dashboard) -> str:
    return json.dumps(board.build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def overview() -> dashboard.Dashboard:
    board = _board(
        "guichet-overview",
        "Guichet / Overview",
        "Every objective of docs/slo.md and the signals of the cause alerts.",
    )
    board.with_row(dashboard.Row("Objectives: budget burn over the last hour"))
    for slo in SLOS:
        board.with_panel(
            number(
                slo.title,
                f"max({_burn(slo, '1h')})",
                description=f"{slo.description} 1 = the 30-day budget spent exactly; 14.4 pages.",
            )
        )
    board.with_row(dashboard.Row("Is anything stuck?"))
    board.with_panel(
        graph(
            "Delegation idle / escalation overdue",
            ("max(guichet_groups_in_flight_idle_seconds)", "delegation idle"),
            ("max(guichet_partners_escalations_overdue_seconds)", "escalation overdue"),
            unit="s",
            description="DelegationNotMoving above 120 s, EscalationNotMoving above 300 s.",
        )
    )
    board.with_panel(
        graph(
            "Outbox and ticket events waiting",
            ("max by (service) (guichet_outbox_oldest_pending_seconds)", "outbox {{service}}"),
            ("max(guichet_support_sla_signals_oldest_pending_seconds)", "ticket events"),
            unit="s",
        )
    )
    board.with_panel(
        graph(
            "Scrape targets up",
            ('sum by (job) (up{job=~"guichet.*"})', "{{job}}"),
        )
    )
    board.with_panel(
        graph(
            "Back-end calls failing",
            (
                "sum by (grpc_service) (rate(guichet_grpc_client_handled_total"
                '{grpc_code=~"UNAVAILABLE|DEADLINE_EXCEEDED|INTERNAL|UNKNOWN"}[5m]))',
                "{{grpc_service}}",
            ),
            unit="reqps",
        )
    )
    return board


def portal(p: Portal) -> dashboard.Dashboard:
    where = f'portal="{p.name}"'
    board = _board(
        f"guichet-portal-{p.name}",
        f"Guichet / Portal / {p.title}",
        f"The {p.name} portal at the gateway, and the {p.service} service behind it.",
    )
    _slo_rows(board, tuple(s for s in SLOS if s.by == ("portal",)), where)
    board.with_row(dashboard.Row("Requests at the gateway"))
    board.with_panel(
        graph(
            "Requests by route and status",
            (
                "sum by (route, method, status) "
                f"(rate(guichet_http_requests_total{{{where}}}[5m]))",
                "{{method}} {{route}} {{status}}",
            ),
            unit="reqps",
        )
    )
    board.with_panel(
        graph(
            "Latency p50 / p99 by route",
            (
                "histogram_quantile(0.5, sum by (le, route) "
                f"(rate(guichet_http_request_seconds_bucket{{{where}}}[5m])))",
                "p50 {{route}}",
            ),
            (
                "histogram_quantile(0.99, sum by (le, route) "
                f"(rate(guichet_http_request_seconds_bucket{{{where}}}[5m])))",
                "p99 {{route}}",
            ),
            unit="s",
        )
    )
    board.with_panel(
        graph("Requests in flight (gateway)", ("sum(guichet_http_requests_in_flight)", ""))
    )
    service = f'grpc_service=~"guichet.{p.service}.v1.*"'
    board.with_row(dashboard.Row(f"The {p.service} service"))
    board.with_panel(
        graph(
            f"Calls to {p.service} by code (as the gateway and the worker see them)",
            (
                f"sum by (grpc_method, grpc_code) (rate(guichet_grpc_client_handled_total"
                f"{{{service}}}[5m]))",
                "{{grpc_method}} {{grpc_code}}",
            ),
            unit="reqps",
        )
    )
    board.with_panel(
        graph(
            f"{p.service} latency p99 (client and server side)",
            (
                "histogram_quantile(0.99, sum by (le, grpc_method) "
                f"(rate(guichet_grpc_client_handling_seconds_bucket{{{service}}}[5m])))",
                "client {{grpc_method}}",
            ),
            (
                "histogram_quantile(0.99, sum by (le, grpc_method) "
                f"(rate(guichet_grpc_server_handling_seconds_bucket{{{service}}}[5m])))",
                "server {{grpc_method}}",
            ),
            unit="s",
        )
    )
    board.with_panel(
        graph(
            f"{p.service} database pool",
            (
                f'sum by (state) (guichet_db_pool_connections{{service="{p.service}"}})',
                "{{state}}",
            ),
            (
                "histogram_quantile(0.99, sum by (le) (rate(guichet_db_pool_wait_seconds_bucket"
                f'{{service="{p.service}"}}[5m]))) * 1000',
                "wait p99 (ms)",
            ),
        )
    )
    board.with_panel(
        graph(
            f"{p.service} calls in flight",
            (f"sum(guichet_grpc_server_in_flight{{{service}}})", "server"),
            (f"sum(guichet_grpc_client_in_flight{{{service}}})", "callers"),
        )
    )
    return board


def _workflow_common(board: dashboard.Dashboard, workflow: str, activities: str) -> None:
    board.with_row(dashboard.Row(f"{workflow} runs in the worker"))
    board.with_panel(
        graph(
            "Runs completed and failed",
            (
                f'sum(rate(temporal_workflow_completed_total{{workflow_type="{workflow}"}}[5m]))',
                "completed",
            ),
            (
                "sum(rate(temporal_workflow_task_execution_failed_total"
                f'{{workflow_type="{workflow}"}}[5m]))',
                "workflow task failures",
            ),
            unit="ops",
        )
    )
    board.with_panel(
        graph(
            "Activity attempts failing, and their schedule-to-start p99",
            (
                "sum by (activity_type) (rate(temporal_activity_execution_failed_total"
                f'{{activity_type=~"{activities}"}}[5m]))',
                "failed {{activity_type}}",
            ),
            # Mails and SLA reports run as local activities, which the SDK counts apart.
            (
                "sum by (activity_type) (rate(temporal_local_activity_execution_failed_total"
                f'{{activity_type=~"{activities}"}}[5m]))',
                "failed {{activity_type}} (local)",
            ),
            (
                "histogram_quantile(0.99, sum by (le, activity_type) (rate("
                "temporal_activity_schedule_to_start_latency_seconds_bucket"
                f'{{activity_type=~"{activities}"}}[5m])))',
                "schedule-to-start p99 {{activity_type}} (s)",
            ),
        )
    )


def workflow_board(
    uid: str,
    workflow: str,
    description: str,
    activities: str,
    extra: list[timeseries.Panel],
) -> dashboard.Dashboard:
    board = _board(uid, f"Guichet / Workflow / {workflow}", description)
    _slo_rows(board, tuple(s for s in SLOS if s.dashboard == uid))
    if extra:
        board.with_row(dashboard.Row("Business state"))
        for panel in extra:
            board.with_panel(panel)
    _workflow_common(board, workflow, activities)
    return board


def _lateness(workflow: str) -> timeseries.Panel:
    return graph(
        "Step lateness p50 / p99 (after the instant it was due)",
        (
            "histogram_quantile(0.5, sum by (le, step) (rate("
            f'guichet_workflow_step_lateness_seconds_bucket{{workflow="{workflow}"}}[1h])))',
            "p50 {{step}}",
        ),
        (
            "histogram_quantile(0.99, sum by (le, step) (rate("
            f'guichet_workflow_step_lateness_seconds_bucket{{workflow="{workflow}"}}[1h])))',
            "p99 {{step}}",
        ),
        unit="s",
    )


def workflows() -> list[dashboard.Dashboard]:
    return [
        workflow_board(
            "guichet-delegation",
            "Delegation",
            "Process requests of the groups service: progress, duration by size, the worker.",
            "apply_delegation_batches|fail_delegation_batch|expire_relationship",
            [
                graph(
                    "Process requests by status",
                    ("max by (status) (guichet_groups_process_requests)", "{{status}}"),
                ),
                graph(
                    "Program accounts in flight",
                    ("max by (state) (guichet_groups_in_flight_program_accounts)", "{{state}}"),
                ),
                graph(
                    "Oldest and idlest unfinished request",
                    ("max(guichet_groups_in_flight_oldest_seconds)", "oldest"),
                    ("max(guichet_groups_in_flight_idle_seconds)", "idle (alert > 120 s)"),
                    unit="s",
                ),
                graph(
                    "Duration p99 by size",
                    (
                        "histogram_quantile(0.99, sum by (le, size) (rate("
                        'guichet_workflow_duration_seconds_bucket{workflow="Delegation"}[1h])))',
                        "{{size}}",
                    ),
                    unit="s",
                ),
            ],
        ),
        workflow_board(
            "guichet-ticket-sla",
            "TicketSla",
            "SLA clocks of support tickets: warnings and breaches, backlogs, the worker.",
            "record_sla_event",
            [
                _lateness("TicketSla"),
                graph(
                    "Open tickets by SLA state",
                    (
                        "sum by (sla_state) (max by (sla_state, priority) "
                        "(guichet_support_open_tickets))",
                        "{{sla_state}}",
                    ),
                ),
                graph(
                    "Ticket events waiting for their run",
                    ("max(guichet_support_sla_signals_pending)", "pending"),
                    ("max(guichet_support_sla_signals_oldest_pending_seconds)", "oldest (s)"),
                ),
            ],
        ),
        workflow_board(
            "guichet-renewal",
            "Renewal",
            "Banner program renewals: anniversary letters on their day, removal windows.",
            "membership_.*",
            [_lateness("Renewal")],
        ),
        workflow_board(
            "guichet-order-escalation",
            "OrderEscalation",
            "Out-of-stock escalations of delivery partners' orders: answers, support, deadlines.",
            "partners\\\\.escalation\\\\..*",
            [
                _lateness("OrderEscalation"),
                graph(
                    "Open escalations by status",
                    ("max by (status) (guichet_partners_escalations_open)", "{{status}}"),
                ),
                graph(
                    "Most overdue escalation",
                    ("max(guichet_partners_escalations_overdue_seconds)", "overdue (alert > 300)"),
                    unit="s",
                ),
            ],
        ),
        workflow_board(
            "guichet-deliver-mail",
            "DeliverMail",
            "Mails recorded by identity, support and membership, sent over SMTP by the worker.",
            "send_mail",
            [
                graph(
                    "Outbox backlog (mails and other starts) by service",
                    ("max by (service) (guichet_outbox_pending)", "{{service}}"),
                ),
            ],
        ),
    ]


def dashboards() -> dict[str, str]:
    """Every dashboard's JSON model, by uid."""
    boards = [overview(), *(portal(p) for p in PORTALS), *workflows()]
    return {str(board.build().uid): _render(board) for board in boards}
