"""The Helm chart, checked offline: rendered for every `ci/*.yaml` (Helm's Go SDK through
helm-python-sdk, no helm binary), validated against the Kubernetes 1.31 schemas in strict mode,
and scanned by checkov. A failed check must be explained in docs/operations.md."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from services.devstack.components import COMPONENTS, DEFAULT_PORTS

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "guichet"
TOOLS = ROOT / ".tools" / "chart" / "bin"
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    chart = helm.Chart.load(str(CHART))
    manifests = chart.render(values, name="guichet", namespace="guichet", is_install=True)
    documents: list[dict[str, Any]] = []
    for text in manifests.values():
        documents += [d for d in yaml.safe_load_all(text) if d]
    return documents


def of_kind(documents: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


@pytest.fixture(scope="module", params=CI_VALUES, ids=[p.stem for p in CI_VALUES])
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    values = yaml.safe_load(request.param.read_text()) or {}
    documents = render(values)
    target = tmp_path_factory.mktemp("chart") / f"{request.param.stem}.yaml"
    target.write_text(yaml.safe_dump_all(documents))
    return target


def test_every_manifest_is_valid_kubernetes_1_31(rendered: Path) -> None:
    result = subprocess.run(
        [str(TOOLS / "kubernetes-validate"), "--strict", "-k", "1.31.0", "--quiet", str(rendered)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _explained_checks() -> set[str]:
    text = (ROOT / "docs" / "operations.md").read_text()
    return set(re.findall(r"\| `(CKV2?_K8S_\d+)` \|", text))


@pytest.fixture(scope="module")
def policy_scan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One checkov run over the manifests of every CI values file (checkov's start-up costs more
    than a scan, so one run instead of three)."""
    folder = tmp_path_factory.mktemp("policy")
    for values_file in CI_VALUES:
        values = yaml.safe_load(values_file.read_text()) or {}
        (folder / f"{values_file.stem}.yaml").write_text(yaml.safe_dump_all(render(values)))
    result = subprocess.run(
        [
            str(TOOLS / "checkov"),
            "--directory",
            str(folder),
            "--framework",
            "kubernetes",
            "--output",
            "json",
            "--compact",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    report = json.loads(result.stdout)
    return dict(report[0] if isinstance(report, list) else report)


@pytest.mark.parametrize("values_file", CI_VALUES, ids=[p.stem for p in CI_VALUES])
def test_policy_scan_reports_only_explained_findings(
    policy_scan: dict[str, Any], values_file: Path
) -> None:
    def of_this_file(checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [c for c in checks if Path(c["file_path"]).stem == values_file.stem]

    failed = {
        (f["check_id"], f["resource"])
        for f in of_this_file(policy_scan["results"]["failed_checks"])
    }
    unexplained = {check for check in failed if check[0] not in _explained_checks()}
    assert not unexplained, f"explain or fix in docs/operations.md: {sorted(unexplained)[:5]}"
    assert len(of_this_file(policy_scan["results"]["passed_checks"])) > 100


def test_every_component_of_the_devstack_is_deployed() -> None:
    documents = render({})
    deployments = of_kind(documents, "Deployment")
    assert {f"guichet-{c.name}" for c in COMPONENTS} <= set(deployments)


def test_grpc_services_use_native_grpc_probes_and_hardened_pods() -> None:
    documents = render({})
    for name, deployment in of_kind(documents, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert "limits" in container["resources"]
        assert not any(e["name"] == "DATABASE_URL" for e in container["env"]), name
        if any(p["name"] == "grpc" for p in container.get("ports", [])):
            assert "grpc" in container["readinessProbe"]
            assert "grpc" in container["livenessProbe"]


def test_only_the_gateway_and_the_worker_reach_services_and_services_reach_identity() -> None:
    policies = of_kind(render({}), "NetworkPolicy")

    def callers(component: str) -> set[str]:
        rule = policies[f"guichet-{component}"]["spec"]["ingress"][1]
        return {
            peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
            for peer in rule["from"]
            if "podSelector" in peer
        }

    assert callers("groups") == {"gateway", "worker"}
    assert {"gateway", "worker", "groups", "support", "partners", "membership"} <= callers(
        "identity"
    )
    # The ingress controller's namespace, and the web portal's pages.
    assert callers("gateway") == {"web"}
    assert "guichet-default-deny-ingress" in policies


def test_every_call_the_devstack_makes_is_allowed_by_a_network_policy() -> None:
    """`Component.calls` (services/devstack/components.py) is the list of who calls whom; each
    call needs the callee's address in the caller's environment and the caller in the callee's
    NetworkPolicy — identity → membership (the association fee check) among them."""
    documents = render({})
    policies = of_kind(documents, "NetworkPolicy")
    deployments = of_kind(documents, "Deployment")
    for component in COMPONENTS:
        [container] = deployments[f"guichet-{component.name}"]["spec"]["template"]["spec"][
            "containers"
        ]
        env = {e["name"]: e.get("value") for e in container["env"]}
        for callee in component.calls:
            port = DEFAULT_PORTS[callee]
            if callee == "gateway":  # over HTTP, the public API
                assert env["GATEWAY_URL"] == f"http://guichet-gateway:{port}"
            else:
                assert env[f"{callee.upper()}_ADDR"] == f"guichet-{callee}:{port}"
            [service_rule] = [
                rule
                for rule in policies[f"guichet-{callee}"]["spec"]["ingress"]
                if rule["ports"][0]["port"] == port
            ]
            allowed = {
                peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
                for peer in service_rule["from"]
                if "podSelector" in peer
            }
            assert component.name in allowed, f"{component.name} → {callee} is not allowed"
    identity = next(c for c in COMPONENTS if c.name == "identity")
    assert "membership" in identity.calls


def test_migrations_run_as_a_pre_upgrade_job_per_service() -> None:
    jobs = of_kind(render({}), "Job")
    assert "guichet-identity-migrate" in jobs
    job = jobs["guichet-identity-migrate"]
    assert "pre-upgrade" in job["metadata"]["annotations"]["helm.sh/hook"]
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "services.identity",
        "migrate",
    ]


def test_ingress_only_when_enabled() -> None:
    assert not of_kind(render({}), "Ingress")
    ingress = of_kind(render({"ingress": {"enabled": True, "tlsSecret": "tls"}}), "Ingress")
    assert ingress["guichet-gateway"]["spec"]["tls"][0]["secretName"] == "tls"
    paths = {
        path["path"]: path["backend"]["service"]["name"]
        for path in ingress["guichet-gateway"]["spec"]["rules"][0]["http"]["paths"]
    }
    assert paths["/v1"] == "guichet-gateway" and paths["/"] == "guichet-web"


@pytest.mark.parametrize(
    "values",
    [
        {"image": {"pullPolicy": "Sometimes"}},
        {"image": {"digest": "latest"}},
        {"components": {"gateway": {"kind": "soap"}}},
        {"temporal": {"address": "no-port"}},
    ],
)
def test_schema_refuses_bad_values(values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmValuesError):
        render(values)


def test_only_the_monitoring_namespace_scrapes_metrics() -> None:
    documents = render({})
    for name, policy in of_kind(documents, "NetworkPolicy").items():
        if name == "guichet-default-deny-ingress":
            continue
        scrape = policy["spec"]["ingress"][0]
        assert scrape["ports"] == [{"port": 9464, "protocol": "TCP"}]
        [source] = scrape["from"]
        assert source["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": "monitoring"
        }


# --- monitoring: rules, PodMonitor, dashboards ---------------------------------------------------

RULES = CHART / "files" / "prometheus" / "guichet-rules.yaml"
DASHBOARDS = sorted((CHART / "files" / "dashboards").glob("*.json"))


def test_rules_ship_as_a_configmap_without_the_prometheus_operator() -> None:
    documents = render({})
    assert not [d for d in documents if d["kind"] in ("PrometheusRule", "PodMonitor")]
    rules = of_kind(documents, "ConfigMap")["guichet-guichet-rules"]
    assert rules["data"]["guichet-rules.yaml"].strip() == RULES.read_text().strip()


def test_rules_ship_as_a_prometheusrule_for_the_operator_with_the_runbook_address() -> None:
    documents = render(
        {
            "metrics": {
                "rules": {
                    "kind": "PrometheusRule",
                    "labels": {"release": "kube-prometheus-stack"},
                    "runbookBaseUrl": "https://wiki.example.org/guichet/runbook",
                },
                "podMonitor": {"enabled": True},
            }
        }
    )
    [rule] = [d for d in documents if d["kind"] == "PrometheusRule"]
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    shipped = yaml.safe_load(RULES.read_text())["groups"]
    assert [g["name"] for g in rule["spec"]["groups"]] == [g["name"] for g in shipped]
    alerts = [r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r]
    assert len(alerts) == sum(1 for g in shipped for r in g["rules"] if "alert" in r)
    for alert in alerts:
        assert alert["annotations"]["runbook_url"].startswith(
            "https://wiki.example.org/guichet/runbook#"
        ), alert["alert"]
    [monitor] = [d for d in documents if d["kind"] == "PodMonitor"]
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    assert not [d for d in documents if d["metadata"]["name"] == "guichet-guichet-rules"]


def test_every_dashboard_ships_as_a_configmap_for_grafanas_sidecar() -> None:
    configmaps = of_kind(render({}), "ConfigMap")
    assert len(DASHBOARDS) >= 4  # the overview, the portals, the workflows
    for path in DASHBOARDS:
        configmap = configmaps[f"guichet-{path.stem}"]
        assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
        model = json.loads(configmap["data"][path.name])
        assert model["uid"] == path.stem
        assert model["panels"], path.name
    assert not [
        d for d in render({"metrics": {"dashboards": {"enabled": False}}}) if "uid" in str(d)
    ]


@pytest.mark.parametrize(
    "values",
    [
        {"metrics": {"rules": {"enabled": True, "kind": "Thanos"}}},
        {"metrics": {"podMonitor": {"enabled": "sometimes"}}},
        {"metrics": {"rules": {"enabled": True, "kind": "auto", "runbookBaseUrl": "wiki"}}},
    ],
)
def test_schema_refuses_bad_monitoring_values(values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmValuesError):
        render(values)
