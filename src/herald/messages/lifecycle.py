"""Message types of the model lifecycle: datasets, fine-tuning, the model registry.

These payloads are contracts between capabilities (datasets → training → registry → serving →
evaluation), the dashboard and users' own sensors. Add optional fields freely; renaming or
removing a field needs a new message version.

``finetune.requested`` is not here: its payload is the fine-tuning job's signature
(``herald.training``), so the YAML config, the message and the job share one schema.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from herald.messages.base import Message

DatasetFormat = Literal["auto", "chat", "instruction", "text"]


# datasets -----------------------------------------------------------------------------------
class DatasetRegister(Message, type="dataset.register"):
    """Register a data set version from a local path or an fsspec URL (JSONL, CSV, Parquet)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    source: str = Field(description="Local path or fsspec URL of a .jsonl/.csv/.parquet file.")
    format: DatasetFormat = "auto"
    validation_fraction: float = Field(0.0, ge=0.0, lt=1.0)
    seed: int = 42
    dedupe: bool = True
    redact_pii: bool = False
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    tokenizer: str | None = Field(
        None, description="model whose tokenizer counts tokens in the stats (default: whitespace)"
    )


class DatasetRegistered(Message, type="dataset.registered"):
    """A data set version exists (``created`` is false when identical content was registered before)."""

    name: str
    version: int
    uri: str = Field(description="datasets:/name/version")
    fingerprint: str = Field(description="sha256 of the normalised rows")
    format: str
    artifact_uri: str
    rows: int
    splits: dict[str, int] = Field(default_factory=dict)
    stats: dict[str, Any] = Field(default_factory=dict)
    pii: dict[str, int] = Field(default_factory=dict)
    created: bool = True


# training -----------------------------------------------------------------------------------
class TrainingProgressed(Message, type="training.progressed"):
    """One logging step of a running fine-tuning job."""

    job_id: str
    run_id: str
    model_name: str
    step: int
    max_steps: int
    epoch: float | None = None
    loss: float | None = None
    learning_rate: float | None = None
    grad_norm: float | None = None
    tokens_per_second: float | None = None
    eval_loss: float | None = None
    eta_s: float | None = None


class FinetuneCompleted(Message, type="finetune.completed"):
    """A fine-tuning job finished and saved its result (an adapter or a full model)."""

    job_id: str
    run_id: str
    model_name: str = Field(description="registry name to register the result under")
    base_model: dict[str, Any] = Field(
        description="what was trained: {'ref': as requested, 'uri': models:/… or hf id or path, "
        "'name': ..., 'version': ...}"
    )
    dataset: dict[str, Any] = Field(description="{'name', 'version', 'uri', 'fingerprint'}")
    config: dict[str, Any] = Field(description="the full, validated fine-tuning config")
    artifact_uri: str = Field(description="folder with safetensors weights and tokenizer")
    kind: Literal["lora", "qlora", "full"] = "lora"
    chat_template: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    duration_s: float | None = None
    merged_artifact_uri: str | None = Field(
        None, description="standalone model with the adapter merged in (merge_adapter: true)"
    )


# registry -----------------------------------------------------------------------------------
class ModelRegister(Message, type="model.register"):
    """Add a version to a registered model (created on first use)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    artifact_uri: str
    kind: Literal["base", "lora", "qlora", "full", "gguf"] = "full"
    base_model: str | None = Field(None, description="registry URI or hub id of the base model")
    dataset: str | None = Field(None, description="datasets:/name/version")
    run_id: str | None = None
    job_id: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    chat_template: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    description: str = ""
    aliases: list[str] = Field(default_factory=list)
    lineage: dict[str, Any] = Field(
        default_factory=dict,
        description="where the version came from (causing event ids, correlation id, job, run)",
    )


class ModelRegistered(Message, type="model.registered"):
    """A new model version is in the registry."""

    name: str
    version: int
    uri: str = Field(description="models:/name/version")
    artifact_uri: str
    kind: str
    aliases: list[str] = Field(default_factory=list)
    created: bool = Field(True, description="false when a retried request found the version")


class ModelPromote(Message, type="model.promote"):
    """Point an alias (``champion``, ``challenger``, any name) at a version."""

    name: str
    version: int = Field(ge=1)
    alias: str = Field("champion", pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
    reason: str = ""


class ModelPromoted(Message, type="model.promoted"):
    """An alias moved; ``previous_version`` is None when the alias is new."""

    name: str
    version: int
    alias: str
    previous_version: int | None = None
    uri: str


class ModelArchive(Message, type="model.archive"):
    """Archive a version: it stays resolvable by number but loses its aliases."""

    name: str
    version: int = Field(ge=1)
    reason: str = ""


class ModelArchived(Message, type="model.archived"):
    """A version was archived."""

    name: str
    version: int
    removed_aliases: list[str] = Field(default_factory=list)
