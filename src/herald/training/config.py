"""Fine-tuning configs: one schema, derived from the ``finetune`` job's signature.

The job function (:func:`herald.training.job.finetune`) is the single source of truth. From its
signature this module derives

* :func:`config_model` — a strict pydantic model (unknown keys refused, value ranges from the
  ``Annotated[..., Field(...)]`` hints, impossible combinations refused);
* :func:`message_model` — the ``finetune.requested`` message type with the same fields, so
  ``POST /v1/messages`` answers a bad config with 422;
* :func:`load_finetune_config` — YAML file + ``--set key=value`` overrides → validated dict.
"""

from __future__ import annotations

import difflib
import importlib.util
import inspect
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model, model_validator

from herald.messages.base import Message
from herald.security.privilege import refuse_operator_fields
from herald.training.errors import FinetuneConfigError

# Names other fine-tuning tools use for our keys: suggested, never silently mapped.
KNOWN_ALIASES: dict[str, str] = {
    "lora_target_modules": "target_modules",
    "lora_rank": "lora_r",
    "num_train_epochs": "num_epochs",
    "epochs": "num_epochs",
    "per_device_train_batch_size": "micro_batch_size",
    "batch_size": "micro_batch_size",
    "lr": "learning_rate",
    "lr_scheduler_type": "lr_scheduler",
    "max_seq_length": "sequence_len",
    "max_seq_len": "sequence_len",
    "cutoff_len": "sequence_len",
    "model_name_or_path": "base_model",
    "base_model_name_or_path": "base_model",
    "output_model": "model_name",
    "sample_packing": "packing",
    "warmup_ratio": "warmup_steps",
    "finetuning_type": "adapter",
    "quantization_bit": "load_in_4bit",
}
PATH_KEYS = ("dataset", "base_model")
REPORT_TO_MODULES = {"mlflow": "mlflow", "wandb": "wandb", "tensorboard": "tensorboard"}


def signature_fields(fn: Callable[..., Any]) -> dict[str, Any]:
    """``{name: (annotated type, default)}`` for every parameter except the job context."""
    hints = get_type_hints(fn, include_extras=True)
    fields: dict[str, Any] = {}
    for p in inspect.signature(fn).parameters.values():
        if p.name in ("ctx", "context"):
            continue
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[p.name] = (hints[p.name], default)
    return fields


def check_combination(cfg: Mapping[str, Any]) -> None:
    """Refuse settings that cannot work together (raises ``ValueError`` with the fix)."""
    adapter = cfg.get("adapter", "lora")
    four, eight = bool(cfg.get("load_in_4bit")), bool(cfg.get("load_in_8bit"))
    if four and eight:
        raise ValueError("load_in_4bit and load_in_8bit are mutually exclusive; choose one")
    if adapter == "full" and (four or eight):
        raise ValueError(
            "full fine-tuning cannot train quantized weights; use adapter: qlora (4-bit) "
            "or set load_in_4bit/load_in_8bit to false"
        )
    if adapter == "qlora" and eight:
        raise ValueError("adapter qlora is 4-bit; drop load_in_8bit (or use adapter: lora)")
    if adapter == "full" and cfg.get("merge_adapter"):
        raise ValueError("merge_adapter applies to lora/qlora; a full fine-tune is already merged")
    if cfg.get("max_steps") is None and not cfg.get("num_epochs"):
        raise ValueError("set num_epochs > 0 or max_steps")
    targets = cfg.get("target_modules")
    if adapter != "full" and isinstance(targets, list) and not targets:
        raise ValueError("target_modules is empty; list module names or use 'all-linear'")
    report_to = cfg.get("report_to", "none")
    for name in [report_to] if isinstance(report_to, str) else list(report_to):
        module = REPORT_TO_MODULES.get(name)
        if module and importlib.util.find_spec(module) is None:
            raise ValueError(
                f"report_to {name!r} needs the {module} package: pip install {module} "
                "(or set report_to: none)"
            )
    if adapter == "qlora" or four or eight:
        _require_cuda("QLoRA" if adapter == "qlora" else "load_in_4bit/load_in_8bit")


def _require_cuda(what: str) -> None:
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ValueError(
            f"{what} needs bitsandbytes and a CUDA GPU; this machine has no bitsandbytes "
            "(pip install bitsandbytes on a GPU host), or use adapter: lora without quantization"
        )
    import torch

    if not torch.cuda.is_available():
        raise ValueError(
            f"{what} needs a CUDA GPU and none is available here; use adapter: lora "
            "(LoRA without quantization runs on CPU)"
        )


def _after(self: Any) -> Any:
    check_combination({name: getattr(self, name) for name in type(self).model_fields})
    return self


def _validators() -> dict[str, Any]:
    return {"_combination": model_validator(mode="after")(_after)}


def config_model(fn: Callable[..., Any]) -> type[BaseModel]:
    """A strict pydantic model of ``fn``'s parameters plus the combination checks."""
    return create_model(
        "FinetuneConfig",
        __config__=ConfigDict(extra="forbid", protected_namespaces=()),
        __doc__="A validated fine-tuning config (the finetune job's parameters).",
        __validators__=_validators(),
        **signature_fields(fn),
    )


def message_model(fn: Callable[..., Any]) -> type[Message]:
    """The ``finetune.requested`` message type: the job's parameters as the payload."""
    model: type[Message] = create_model(
        "FinetuneRequested",
        __base__=Message,
        __cls_kwargs__={"type": "finetune.requested"},
        __doc__="Fine-tune a model: the payload is the finetune job's config (see the job).",
        __validators__=_validators(),
        **signature_fields(fn),
    )
    return model


def nearest_key(key: str, valid: Sequence[str]) -> str | None:
    """The valid key a misspelt or foreign key most likely means."""
    if key in KNOWN_ALIASES and KNOWN_ALIASES[key] in valid:
        return KNOWN_ALIASES[key]
    found = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
    return found[0] if found else None


def validate_config(model: type[BaseModel], data: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a config mapping; errors name the key (and the nearest valid key if unknown)."""
    refuse_operator_fields(data, "fine-tuning config")  # trust_remote_code: operator only
    valid = list(model.model_fields)
    unknown = [k for k in data if k not in model.model_fields]
    if unknown:
        parts = []
        for k in unknown:
            near = nearest_key(str(k), valid)
            parts.append(f"unknown key {k!r}" + (f" (did you mean {near!r}?)" if near else ""))
        raise FinetuneConfigError(
            "; ".join(parts) + f". Valid keys: {', '.join(valid)}",
            details=[
                {"loc": [k], "msg": "unknown key", "nearest": nearest_key(str(k), valid)}
                for k in unknown
            ],
        )
    try:
        cfg = model.model_validate(dict(data))
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        lines = [f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in errors]
        raise FinetuneConfigError(
            "invalid fine-tuning config: " + "; ".join(lines),
            details=[{"loc": list(e["loc"]), "msg": e["msg"]} for e in errors],
        ) from None
    return cfg.model_dump(mode="json")


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["max_steps=5", "target_modules=[q_proj, v_proj]"]`` → values parsed as YAML."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise FinetuneConfigError(f"--set expects key=value, got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise FinetuneConfigError(f"--set {key}: value is not valid YAML: {exc}") from None
    return out


def _absolutise(value: Any, base: Path) -> Any:
    """A relative local path that exists (from the cwd, else the YAML's folder) → absolute."""
    if (
        not isinstance(value, str)
        or not value
        or "://" in value
        or value.startswith(("models:/", "datasets:/"))
    ):
        return value
    p = Path(value).expanduser()
    if p.is_absolute():
        return value
    for root in (Path.cwd(), base):
        if (root / p).exists():
            return str((root / p).resolve())
    return value


def load_finetune_config(
    path: str | Path, overrides: Mapping[str, Any] | Sequence[str] | None = None
) -> dict[str, Any]:
    """Read a YAML config, apply overrides, validate it against the ``finetune`` job.

    Relative ``dataset``/``base_model`` paths that exist are made absolute (looked up from the
    current directory, then from the YAML file's folder) because the job runs elsewhere.
    """
    import yaml

    from herald.training.job import FinetuneConfig

    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise FinetuneConfigError(f"cannot read config {p}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FinetuneConfigError(f"{p} is not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FinetuneConfigError(f"{p} must hold a mapping of keys, got {type(data).__name__}")
    if overrides:
        extra = dict(overrides) if isinstance(overrides, Mapping) else parse_overrides(overrides)
        data.update(extra)
    for key in PATH_KEYS:
        if key in data:
            data[key] = _absolutise(data[key], p.parent.resolve())
    return validate_config(FinetuneConfig, data)
