"""Domain objects of the registry (model versions, data set versions, runs) and URI parsing."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any, Literal, NamedTuple
from urllib.parse import unquote

from pydantic import BaseModel, Field

from herald.errors import HeraldError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
MODEL_KINDS = ("base", "lora", "qlora", "full", "gguf")
RUN_STATUSES = ("running", "finished", "failed", "killed")
ModelStatus = Literal["ready", "archived"]


class InvalidRegistryRequest(HeraldError):
    """A registry call had an invalid argument (bad name, alias, URI, metric value...)."""

    code = "invalid_request"
    status = 422


class ModelVersion(BaseModel):
    """One immutable version of a registered model."""

    name: str
    version: int
    uri: str = Field(description="models:/name/version")
    artifact_uri: str
    kind: str
    status: ModelStatus = "ready"
    aliases: list[str] = Field(default_factory=list)
    base_model: str | None = None
    dataset: str | None = None
    run_id: str | None = None
    job_id: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    chat_template: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    description: str = ""
    lineage: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    archived_at: datetime | None = None


class DatasetVersion(BaseModel):
    """One content-addressed version of a data set."""

    name: str
    version: int
    uri: str = Field(description="datasets:/name/version")
    fingerprint: str
    artifact_uri: str
    format: str
    rows: int
    splits: dict[str, int] = Field(default_factory=dict)
    stats: dict[str, Any] = Field(default_factory=dict)
    pii: dict[str, int] = Field(default_factory=dict)
    source: str
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    lineage: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime


class Run(BaseModel):
    """An experiment run (usually one fine-tuning job): params, metrics, artifacts."""

    id: str
    name: str
    job_id: str | None = None
    status: str
    params: dict[str, Any] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict, description="last value per key")
    artifacts: dict[str, str] = Field(default_factory=dict)
    models: list[str] = Field(default_factory=list, description="model versions it produced")
    created_at: datetime
    finished_at: datetime | None = None


class ModelRef(NamedTuple):
    """A parsed model reference: exactly one of version / alias, or neither (= latest)."""

    name: str
    version: int | None = None
    alias: str | None = None


def check_name(name: str, what: str = "model") -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidRegistryRequest(
            f"invalid {what} name {name!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_alias(alias: str) -> str:
    if not isinstance(alias, str) or not ALIAS_RE.match(alias):
        raise InvalidRegistryRequest(
            f"invalid alias {alias!r}: use 1-64 letters, digits, '_' or '-', starting with a letter"
        )
    return alias


def check_metrics(metrics: dict[str, float] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in (metrics or {}).items():
        if not isinstance(k, str) or not k or len(k) > 256:
            raise InvalidRegistryRequest(f"metric names must be 1-256 character strings: {k!r}")
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise InvalidRegistryRequest(f"metric {k!r} must be a finite number, got {v!r}")
        out[k] = float(v)
    return out


def _split_ref(ref: str, scheme: str) -> str:
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidRegistryRequest(f"empty {scheme} reference")
    ref = unquote(ref.strip())
    if ref.startswith(f"{scheme}:/"):
        ref = ref[len(scheme) + 2 :].lstrip("/")
    elif ":" in ref.split("/", 1)[0]:
        raise InvalidRegistryRequest(
            f"{ref!r} is not a {scheme}:/ URI (expected {scheme}:/name, {scheme}:/name/3"
            + (f" or {scheme}:/name@alias)" if scheme == "models" else ")")
        )
    return ref


def parse_model_uri(uri: str) -> ModelRef:
    """``models:/name@alias``, ``models:/name/3``, ``models:/name``, ``name``, ``name@alias``,
    ``name/3`` → :class:`ModelRef`."""
    ref = _split_ref(uri, "models")
    alias: str | None = None
    version: int | None = None
    if "@" in ref:
        ref, alias = ref.split("@", 1)
        check_alias(alias)
    if "/" in ref:
        ref, v = ref.split("/", 1)
        if alias is not None or not v.isdigit() or int(v) < 1:
            raise InvalidRegistryRequest(
                f"bad model reference {uri!r}: the part after '/' must be a version number >= 1"
            )
        version = int(v)
    return ModelRef(check_name(ref), version, alias)


def parse_dataset_uri(uri: str, version: int | None = None) -> tuple[str, int | None]:
    """``datasets:/name/3``, ``datasets:/name``, ``name``, ``name/3`` → (name, version)."""
    ref = _split_ref(uri, "datasets")
    if "/" in ref:
        ref, v = ref.split("/", 1)
        if not v.isdigit() or int(v) < 1:
            raise InvalidRegistryRequest(
                f"bad data set reference {uri!r}: the part after '/' must be a version number"
            )
        if version is not None and version != int(v):
            raise InvalidRegistryRequest(f"{uri!r} names version {v}, but version={version}")
        version = int(v)
    return check_name(ref, "data set"), version
