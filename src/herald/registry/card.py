"""Hugging Face model cards for registry versions (YAML front matter + markdown)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from herald.registry.models import DatasetVersion, ModelVersion

_LIBRARY = {"lora": "peft", "qlora": "peft", "full": "transformers", "base": "transformers"}


def _hub_id(ref: str | None) -> str | None:
    """A hub id (``org/name``) is what HF's ``base_model`` field expects; registry URIs and
    paths are described in the body instead."""
    if not ref or ref.startswith(("models:/", "/", ".", "~", "file:", "s3:")):
        return None
    return ref


def render_model_card(mv: ModelVersion, dataset: DatasetVersion | None = None) -> str:
    meta: dict[str, Any] = {}
    base_hub = _hub_id(mv.base_model) or _hub_id(
        str(mv.lineage.get("base_model", {}).get("uri") or "")
        if isinstance(mv.lineage.get("base_model"), dict)
        else None
    )
    if base_hub:
        meta["base_model"] = base_hub
    if mv.dataset:
        meta["datasets"] = [mv.dataset]
    meta["library_name"] = _LIBRARY.get(mv.kind, "gguf" if mv.kind == "gguf" else "transformers")
    tags = ["herald", mv.kind, *(f"{k}:{v}" if v else k for k, v in sorted(mv.tags.items()))]
    if mv.kind in ("lora", "qlora"):
        tags.append("lora")
    meta["tags"] = list(dict.fromkeys(tags))
    if mv.metrics:
        meta["model-index"] = [
            {
                "name": f"{mv.name}-v{mv.version}",
                "results": [
                    {
                        "task": {"type": "text-generation"},
                        "dataset": {
                            "name": mv.dataset or "evaluation",
                            "type": dataset.name if dataset else (mv.dataset or "custom"),
                        },
                        "metrics": [
                            {"type": k, "value": v, "name": k}
                            for k, v in sorted(mv.metrics.items())
                        ],
                    }
                ],
            }
        ]
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).strip()
    lines = [
        "---",
        front,
        "---",
        "",
        f"# {mv.name} (version {mv.version})",
        "",
        mv.description or f"A {mv.kind} model registered in Herald as `{mv.uri}`.",
        "",
        "## Model details",
        "",
        "| field | value |",
        "| --- | --- |",
        f"| registry URI | `{mv.uri}` |",
        f"| kind | {mv.kind} |",
        f"| status | {mv.status} |",
        f"| aliases | {', '.join(mv.aliases) or '—'} |",
        f"| base model | {_code(mv.base_model)} |",
        f"| data set | {_code(mv.dataset)} |",
        f"| run | {_code(mv.run_id)} |",
        f"| job | {_code(mv.job_id)} |",
        f"| artifact | {_code(mv.artifact_uri)} |",
        f"| registered | {mv.created_at.isoformat()} |",
    ]
    if dataset is not None:
        splits = ", ".join(f"{k}: {v}" for k, v in dataset.splits.items()) or "—"
        lines += [
            "",
            "## Training data",
            "",
            f"`{dataset.uri}` — {dataset.rows} rows ({splits}), format {dataset.format}, "
            f"fingerprint `{dataset.fingerprint[:16]}`, source `{dataset.source}`.",
        ]
    if mv.metrics:
        lines += ["", "## Evaluation", "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {v:.4g} |" for k, v in sorted(mv.metrics.items())]
    if mv.config:
        lines += [
            "",
            "## Training configuration",
            "",
            "```json",
            json.dumps(mv.config, indent=2, sort_keys=True),
            "```",
        ]
    if mv.chat_template:
        lines += ["", "## Chat template", "", "```jinja", mv.chat_template, "```"]
    causes = {k: v for k, v in mv.lineage.items() if k.endswith(("event_id", "correlationid"))}
    if causes:
        lines += ["", "## Lineage", ""]
        lines += [f"- {k}: `{v}`" for k, v in sorted(causes.items())]
    lines += [
        "",
        "## Usage",
        "",
        "```bash",
        f"herald models show {mv.name}/{mv.version}",
        "```",
        "",
    ]
    return "\n".join(lines)


def _code(value: str | None) -> str:
    return f"`{value}`" if value else "—"
