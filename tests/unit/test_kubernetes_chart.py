"""The Helm chart under deploy/helm/herald: its templates use only `{{ .Values.path | toJson }}`
substitutions, so this test renders them with values.yaml exactly as `helm template` would and
validates every object against a Kubernetes schema that kubernetes-validate ships."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

kv = importlib.import_module("kubernetes_validate")

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "herald"
K8S_VERSION = "1.30.0"
SUBST = re.compile(r"\{\{\s*\.Values\.([A-Za-z0-9_.]+)\s*\|\s*toJson\s*\}\}")


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for template in sorted((CHART / "templates").glob("*.yaml")):
        text = template.read_text()

        def value(m: re.Match[str], template: Path = template) -> str:
            node: Any = values
            for key in m.group(1).split("."):
                assert isinstance(node, dict) and key in node, f"{template.name}: {m.group(0)}"
                node = node[key]
            return json.dumps(node)

        rendered = SUBST.sub(value, text)
        assert "{{" not in rendered, f"{template.name} uses templating beyond .Values | toJson"
        docs.extend(d for d in yaml.safe_load_all(rendered) if d)
    return docs


def values() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return loaded


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "herald"


def test_every_rendered_object_validates() -> None:
    docs = render(values())
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs)
    assert kinds == [
        "ConfigMap/herald-config",
        "Deployment/herald-api",
        "Deployment/herald-worker",
        "Role/herald-jobs",
        "RoleBinding/herald-jobs",
        "Secret/herald-env",
        "Service/herald-api",
        "ServiceAccount/herald",
    ]
    for doc in docs:
        kv.validate(doc, K8S_VERSION, strict=True)


def test_values_reach_the_objects_and_the_config_loads() -> None:
    v = values()
    v["worker"]["replicas"] = 5
    docs = {f"{d['kind']}/{d['metadata']['name']}": d for d in render(v)}
    assert docs["Deployment/herald-worker"]["spec"]["replicas"] == 5
    assert docs["Service/herald-api"]["spec"]["type"] == "ClusterIP"
    secret = docs["Secret/herald-env"]["stringData"]
    assert secret["HERALD_DATABASE_URL"].startswith("postgresql://")
    from herald.settings import Settings

    config = yaml.safe_load(docs["ConfigMap/herald-config"]["data"]["herald.yaml"])
    settings = Settings.model_validate(config)  # the shipped herald.yaml is valid Herald config
    assert settings.jobs.kubernetes.enabled and settings.jobs.kubernetes.gpus == 1
    rules = docs["Role/herald-jobs"]["rules"]
    assert {"create", "delete"} <= set(rules[0]["verbs"]) and rules[2]["resources"] == ["pods/log"]
    for name in ("Deployment/herald-api", "Deployment/herald-worker"):
        pod = docs[name]["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True


def test_a_wrong_value_type_is_rejected() -> None:
    v = values()
    v["api"]["replicas"] = "two"
    with pytest.raises(kv.ValidationError):
        for doc in render(v):
            kv.validate(doc, K8S_VERSION, strict=True)
