"""The Helm chart under deploy/helm/herald, rendered and validated.

`helm` is not installed here (Debian bookworm has no package), so a small renderer does what
`helm template` does for the subset of Go templating the chart restricts itself to:
`{{ .Values.path | toJson }}` substitutions and whole-line `{{- if .Values.path }}` /
`{{- end }}` blocks (Go truthiness). Anything else in a template fails the test, so the chart
cannot drift into templating this renderer would get wrong. Every standard object is
validated against the Kubernetes 1.30 schema (kubernetes-validate, strict); the two custom
resources (ServiceMonitor, RayCluster) are checked by hand; values.schema.json is checked to
accept the shipped values and reject bad ones.
"""

from __future__ import annotations

import copy
import importlib
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

kv = importlib.import_module("kubernetes_validate")

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "herald"
K8S_VERSION = "1.30.0"
SUBST = re.compile(r"\{\{\s*\.Values\.([A-Za-z0-9_.]+)\s*\|\s*toJson\s*\}\}")
CONTROL = re.compile(r"^\{\{-?\s*(?:if\s+\.Values\.([A-Za-z0-9_.]+)|(end))\s*-?\}\}$")
CUSTOM = {"ServiceMonitor", "RayCluster"}
KEY = "sk-test-" + "x" * 24


def lookup(values: dict[str, Any], path: str, where: str) -> Any:
    node: Any = values
    for key in path.split("."):
        assert isinstance(node, dict) and key in node, f"{where}: .Values.{path} is not set"
        node = node[key]
    return node


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for template in sorted((CHART / "templates").glob("*.yaml")):
        out: list[str] = []
        stack: list[bool] = []
        for n, line in enumerate(template.read_text().splitlines(), 1):
            where = f"{template.name}:{n}"
            m = CONTROL.match(line.strip())
            if m:
                if m.group(2):
                    assert stack, f"{where}: end without if"
                    stack.pop()
                else:
                    stack.append(bool(lookup(values, m.group(1), where)))  # Go truthiness
                continue
            if not all(stack):
                continue
            rendered = SUBST.sub(lambda m, w=where: json.dumps(lookup(values, m[1], w)), line)
            assert "{{" not in rendered, f"{where} uses templating beyond the chart's subset"
            out.append(rendered)
        assert not stack, f"{template.name}: if without end"
        docs.extend(d for d in yaml.safe_load_all("\n".join(out)) if d)
    return docs


def values(**overrides: Any) -> dict[str, Any]:
    v: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    v["apiKey"] = KEY  # required: the chart has no default key
    for path, value in overrides.items():
        node = v
        *parents, last = path.split("__")
        for p in parents:
            node = node[p]
        node[last] = value
    return v


def everything() -> dict[str, Any]:
    return values(
        busUrl="nats://nats.herald.svc:4222",
        executor="ray",
        serve__autoscaling__enabled=True,
        serviceMonitor__enabled=True,
        ray__enabled=True,
    )


def by_name(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in docs}


def schema_errors(v: dict[str, Any]) -> list[str]:
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    return [
        "/".join(str(p) for p in e.absolute_path) or e.message for e in validator.iter_errors(v)
    ]


def pods(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        f"{d['kind']}/{d['metadata']['name']}": d["spec"]["template"]["spec"]
        for d in docs
        if d["kind"] == "Deployment"
    }


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "herald"
    assert (CHART / "values.schema.json").is_file()


DEFAULT_KINDS = [
    "ConfigMap/herald-config",
    "Deployment/herald-api",
    "Deployment/herald-serve",
    "Deployment/herald-worker",
    "NetworkPolicy/herald-http",
    "PodDisruptionBudget/herald-api",
    "PodDisruptionBudget/herald-serve",
    "PodDisruptionBudget/herald-worker",
    "Role/herald-jobs",
    "RoleBinding/herald-jobs",
    "Secret/herald-env",
    "Service/herald-api",
    "Service/herald-serve",
    "Service/herald-worker",
    "ServiceAccount/herald",
]


def test_defaults_render_and_every_object_validates() -> None:
    v = values()
    assert schema_errors(v) == []
    docs = render(v)
    assert sorted(by_name(docs)) == DEFAULT_KINDS
    for doc in docs:
        kv.validate(doc, K8S_VERSION, strict=True)


def test_everything_enabled_renders_and_validates() -> None:
    v = everything()
    assert schema_errors(v) == []
    docs = by_name(render(v))
    assert set(docs) == {
        *DEFAULT_KINDS,
        "HorizontalPodAutoscaler/herald-serve",
        "ServiceMonitor/herald",
        "RayCluster/herald-ray",
    }
    for doc in docs.values():
        if doc["kind"] not in CUSTOM:
            kv.validate(doc, K8S_VERSION, strict=True)
    assert docs["Secret/herald-env"]["stringData"]["HERALD_BUS_URL"] == v["busUrl"]


def test_hpa_scales_the_model_servers_on_a_metric_herald_exports() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from herald.serving.metrics import ServingMetrics

    docs = by_name(render(everything()))
    hpa = docs["HorizontalPodAutoscaler/herald-serve"]["spec"]
    target = hpa["scaleTargetRef"]
    assert f"{target['kind']}/{target['name']}" in docs
    [metric] = hpa["metrics"]
    name = metric["pods"]["metric"]["name"]
    assert name == "herald_num_requests_waiting"
    # the adapter's name maps back to the gauge a model server exports on /metrics
    registry = CollectorRegistry()
    ServingMetrics(registry)
    exported = generate_latest(registry).decode()
    assert "# TYPE herald:num_requests_waiting gauge" in exported
    assert name.replace("herald_", "herald:", 1) in exported
    assert hpa["minReplicas"] <= hpa["maxReplicas"]


def test_servicemonitor_and_raycluster_structure() -> None:
    v = everything()
    docs = by_name(render(v))
    sm = docs["ServiceMonitor/herald"]
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    [endpoint] = sm["spec"]["endpoints"]
    scraped = [
        d
        for d in docs.values()
        if d["kind"] == "Service"
        and sm["spec"]["selector"]["matchLabels"].items() <= d["metadata"]["labels"].items()
    ]
    assert {d["metadata"]["name"] for d in scraped} == {
        "herald-api",
        "herald-serve",
        "herald-worker",
    }
    for svc in scraped:
        assert endpoint["port"] in [p["name"] for p in svc["spec"]["ports"]]
    assert endpoint["path"] == "/metrics"  # /metrics needs the key: Bearer from the Secret
    creds = endpoint["authorization"]["credentials"]
    assert endpoint["authorization"]["type"] == "Bearer"
    assert creds["key"] in docs[f"Secret/{creds['name']}"]["stringData"]

    rc = docs["RayCluster/herald-ray"]
    assert rc["apiVersion"] == "ray.io/v1" and rc["spec"]["rayVersion"] == v["ray"]["rayVersion"]
    head = rc["spec"]["headGroupSpec"]
    # the Ray dashboard (no auth, accepts job submissions) stays on the pod's loopback
    assert head["rayStartParams"]["dashboard-host"] == "127.0.0.1"
    [group] = rc["spec"]["workerGroupSpecs"]
    assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    for pod in (head["template"]["spec"], group["template"]["spec"]):
        assert pod["securityContext"]["runAsNonRoot"] is True
        for c in pod["containers"]:
            assert c["image"] == v["image"]
            kv.validate(  # the pod templates are core/v1 PodSpecs: validate them as such
                {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": pod},
                K8S_VERSION,
                strict=True,
            )
    # the workers reach the head through the Service KubeRay names <cluster>-head-svc
    env = {
        e["name"]: e.get("value")
        for e in pods(list(docs.values()))["Deployment/herald-worker"]["containers"][0]["env"]
    }
    assert env["HERALD_JOBS__RAY__ENABLED"] == "true" and env["HERALD_EXECUTOR"] == "ray"
    host, port = env["HERALD_JOBS__RAY__ADDRESS"].removeprefix("ray://").split(":")
    assert host == f"{rc['metadata']['name']}-head-svc"
    ports = {
        p["name"]: p["containerPort"] for p in head["template"]["spec"]["containers"][0]["ports"]
    }
    assert int(port) == ports["client"]


def test_secure_defaults() -> None:
    docs = render(values())
    named = by_name(docs)
    assert all(d["spec"]["type"] == "ClusterIP" for d in docs if d["kind"] == "Service")
    assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    for name, pod in pods(docs).items():
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001  # the Dockerfile's USER
        assert "hostNetwork" not in pod and all("hostPath" not in vol for vol in pod["volumes"])
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"]
            assert sc["readOnlyRootFilesystem"] is True
            assert c["envFrom"] == [{"secretRef": {"name": "herald-env"}}]  # key, URLs
        if name != "Deployment/herald-worker":  # only workers call the cluster API
            assert pod["automountServiceAccountToken"] is False
    assert named["Secret/herald-env"]["stringData"]["HERALD_API_KEY"] == KEY
    policy = named["NetworkPolicy/herald-http"]["spec"]
    assert policy["ingress"][0]["from"] == [{"podSelector": {}}]  # this namespace only
    [roles] = policy["podSelector"]["matchExpressions"][1:]
    assert roles["values"] == ["api", "serve", "worker"]  # every pod with a port
    for name, pod in pods(docs).items():  # each listens on 0.0.0.0 in its pod, probed by kubelet
        [c] = pod["containers"]
        assert [p["name"] for p in c["ports"]] == ["http"], name
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", name


def test_roles_run_existing_commands_and_the_config_loads() -> None:
    from typer.main import get_command

    from herald.cli.main import app
    from herald.settings import Settings

    commands = get_command(app).commands  # type: ignore[attr-defined]
    docs = render(values(worker__replicas=5))
    named = by_name(docs)
    roles = {}
    for name, pod in pods(docs).items():
        [c] = pod["containers"]
        assert c["command"][0] == "herald"
        role = c["command"][1]
        roles[name] = role
        params = {o for p in commands[role].params for o in p.opts}
        assert {a for a in c["command"][2:] if a.startswith("--")} <= params
    assert roles == {
        "Deployment/herald-api": "api",
        "Deployment/herald-serve": "serve",
        "Deployment/herald-worker": "worker",
    }
    assert named["Deployment/herald-worker"]["spec"]["replicas"] == 5
    secret = named["Secret/herald-env"]["stringData"]
    assert set(secret) == {"HERALD_DATABASE_URL", "HERALD_API_KEY", "HERALD_ARTIFACTS_URL"}
    config = yaml.safe_load(named["ConfigMap/herald-config"]["data"]["herald.yaml"])
    settings = Settings.model_validate(config)  # the shipped herald.yaml is valid Herald config
    assert settings.jobs.kubernetes.enabled and settings.jobs.kubernetes.gpus == 1
    rules = named["Role/herald-jobs"]["rules"]
    assert {"create", "delete"} <= set(rules[0]["verbs"]) and rules[2]["resources"] == ["pods/log"]


def test_optional_parts_switch_off() -> None:
    docs = by_name(
        render(
            values(
                secret__create=False,
                serve__enabled=False,
                podDisruptionBudget__enabled=False,
                networkPolicy__enabled=False,
            )
        )
    )
    assert not [k for k in docs if k.split("/")[0] in ("Secret", "PodDisruptionBudget")]
    assert not [k for k in docs if "serve" in k or k.startswith("NetworkPolicy/")]
    assert "Deployment/herald-api" in docs and "Deployment/herald-worker" in docs


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"apiKey": ""}, "apiKey"),  # no default key: auth is always on
        ({"apiKey": "short"}, "apiKey"),
        ({"databaseUrl": "sqlite:///herald.db"}, "databaseUrl"),
        ({"artifactsUrl": "file:///var/lib/herald"}, "artifactsUrl"),
        ({"busUrl": "redis://cache:6379"}, "busUrl"),
        ({"executor": "celery"}, "executor"),
        ({"imagePullPolicy": "Sometimes"}, "imagePullPolicy"),
        ({"workers": {"replicas": 3}}, "Additional properties"),  # a typo of worker
        ({"api__replicas": "two"}, "api/replicas"),
        ({"serve__autoscaling__metric": "herald:num_requests_waiting"}, "serve/autoscaling/metric"),
        ({"ray__address": "herald-ray-head-svc"}, "ray/address"),
    ],
)
def test_values_schema_rejects_bad_values(change: dict[str, Any], path: str) -> None:
    v = values()
    for key, value in change.items():
        if "__" in key:
            v = values(**{key: value})
        else:
            v = copy.deepcopy(v)
            v[key] = value
    errors = schema_errors(v)
    assert any(path in e for e in errors), errors


def test_a_wrong_value_type_is_rejected_by_kubernetes_too() -> None:
    v = values()
    v["api"]["replicas"] = "two"
    with pytest.raises(kv.ValidationError):
        for doc in render(v):
            kv.validate(doc, K8S_VERSION, strict=True)
