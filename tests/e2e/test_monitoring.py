"""The monitoring reads what the processes really export: every metric named by a rule or a
dashboard panel is in a live scrape of the whole stack (or is a recording rule of ours); the new
metrics of issue 27 are there with their labels; a scrape costs no database query."""

from __future__ import annotations

import json
import time

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from services.devstack.components import COMPONENTS
from services.devstack.stack import ADMIN_USERNAME, Stack
from services.kit.testing import scaled
from services.observability.generate import DASHBOARDS, RULES_FILE
from services.observability.promql import metric_names

# Prometheus's own series, and SDK counters that exist once something failed (the Temporal SDK
# creates a counter on its first increment; a healthy test stack has none).
NOT_SCRAPED = {
    "up",
    "temporal_workflow_task_execution_failed_total",
    "temporal_activity_execution_failed_total",
    "temporal_local_activity_execution_failed_total",
}
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("_count", "_sum", ""),
    "gauge": ("",),
    "untyped": ("",),
    "info": ("_info",),
}


async def scrape_all(stack: Stack) -> dict[str, str]:
    texts = {}
    async with httpx.AsyncClient(timeout=60) as client:
        for component in COMPONENTS:
            port = stack.metrics_port(component)
            if port is None:
                continue
            response = await client.get(f"http://127.0.0.1:{port}/metrics")
            assert response.status_code == 200, component.name
            texts[component.name] = response.text
    return texts


def exported(texts: dict[str, str]) -> set[str]:
    """Every sample name a scrape can hold: a family declared without samples yet counts."""
    names = set()
    for text in texts.values():
        for family in text_string_to_metric_families(text):
            names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
            names |= {sample.name for sample in family.samples}
    return names


def queries() -> dict[str, str]:
    """Every PromQL expression of the rules and the dashboards, by where it is."""
    found = {}
    rules = yaml.safe_load(RULES_FILE.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            found[f"rule {rule.get('alert') or rule.get('record')}"] = rule["expr"]
    for path in sorted(DASHBOARDS.glob("*.json")):
        model = json.loads(path.read_text())
        for panel in model["panels"]:
            for target in panel.get("targets", []):
                found[f"{path.stem}: {panel['title']}"] = target["expr"]
    return found


async def test_every_rule_and_panel_reads_metrics_the_processes_export(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as client:
        await client.get("/v1/me")  # a request of the `account` portal, refused
    texts = await scrape_all(stack)
    names = exported(texts)
    recorded = {
        rule["record"]
        for group in yaml.safe_load(RULES_FILE.read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
    all_queries = queries()
    assert len(all_queries) > 100
    unknown = {
        where: sorted(metric_names(expr) - names - recorded - NOT_SCRAPED)
        for where, expr in all_queries.items()
        if metric_names(expr) - names - recorded - NOT_SCRAPED
    }
    assert not unknown, f"queries naming metrics no process exports: {unknown}"


async def test_the_metrics_of_issue_27_are_exported_with_their_labels(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as client:
        login = await client.post(
            "/v1/auth/token",
            json={"username": ADMIN_USERNAME, "password": stack.secrets.admin_password},
        )
        assert login.status_code == 202  # the password step (the ops admin has a second factor)
    texts = await scrape_all(stack)
    gateway, worker = texts["gateway"], texts["worker"]
    # The gateway: requests by portal, in flight, and its back ends as it calls them.
    assert 'guichet_http_requests_total{method="POST",portal="account"' in gateway
    assert "guichet_http_requests_in_flight " in gateway
    assert 'le="1.5"' in gateway and 'le="2.0"' in gateway  # between 1 s and 2.5 s
    assert 'guichet_grpc_client_handled_total{grpc_code="OK",grpc_method="Login"' in gateway
    # The worker: its own calls to the services beside the Temporal SDK's metrics, one port.
    assert "guichet_grpc_client_handled_total{" in worker
    assert "temporal_num_pollers{" in worker
    assert "temporal_workflow_task_schedule_to_start_latency_seconds_bucket{" in worker
    # Every service: in-flight calls, pool waits, its outbox backlog.
    for name in ("identity", "groups", "support", "partners", "membership"):
        text = texts[name]
        assert f'guichet_db_pool_wait_seconds_count{{service="{name}"}}' in text, name
        assert "guichet_grpc_server_in_flight{" in text, name
        assert f'guichet_outbox_pending{{service="{name}"}}' in text, name
    assert 'guichet_partners_escalations_open{status="awaiting_answer"}' in texts["partners"]
    assert "# TYPE guichet_identity_login_throttled_total counter" in texts["identity"]


async def test_a_scrape_reads_the_business_gauges_without_querying(stack: Stack) -> None:
    """The gauges are refreshed in the background: scrapes back to back are served from the
    last refresh (the query's own duration is reported, unchanged), each in milliseconds."""
    port = stack.metrics_port(next(c for c in COMPONENTS if c.name == "support"))
    async with httpx.AsyncClient(timeout=10) as client:
        durations, took = [], set()
        for _ in range(5):
            started = time.perf_counter()
            text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
            durations.append(time.perf_counter() - started)
            [value] = [
                s.value
                for f in text_string_to_metric_families(text)
                for s in f.samples
                if s.name == "guichet_db_gauges_query_seconds"
            ]
            took.add(value)
    assert len(took) <= 2  # at most one background refresh between the five scrapes
    assert min(durations) < scaled(0.25), durations  # stretched on a loaded machine
