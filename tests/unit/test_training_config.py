"""Fine-tuning configs: the job signature is the schema of YAML files, messages and the CLI."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from herald.errors import MessageValidationError
from herald.messages.catalog import default_catalog
from herald.messages.envelope import Envelope
from herald.sensors.base import SensorContext
from herald.training import FinetuneConfigError, load_finetune_config, parse_overrides
from herald.training.config import nearest_key
from herald.training.job import FinetuneConfig, FinetuneRequested, finetune, on_finetune_requested

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples" / "finetune").glob("*.yaml"))
BASE = {"base_model": "m", "dataset": "d", "model_name": "out"}


def _has_gpu_stack() -> bool:
    if importlib.util.find_spec("bitsandbytes") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def test_examples_exist() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"smollm2-lora.yaml", "tiny-lora.yaml"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_shipped_yaml_validates_against_the_job_signature(path: Path) -> None:
    wants_gpu = "qlora" in path.read_text()
    if wants_gpu and not _has_gpu_stack():
        with pytest.raises(FinetuneConfigError, match=r"CUDA|bitsandbytes"):
            load_finetune_config(path)
        return
    cfg = load_finetune_config(path)
    assert set(cfg) == set(FinetuneConfig.model_fields)
    # the job itself accepts the same dict (registry validation from the signature)
    finetune.__herald_job__.validate(cfg)  # type: ignore[attr-defined]


def test_one_schema_for_job_message_and_config() -> None:
    job_fields = set(finetune.__herald_job__.schema()["properties"])  # type: ignore[attr-defined]
    assert job_fields == set(FinetuneConfig.model_fields)
    assert job_fields == set(FinetuneRequested.model_fields)
    for key in ("base_model", "dataset", "model_name", "lora_r", "target_modules", "packing"):
        assert key in job_fields
    assert FinetuneRequested.message_type == "finetune.requested"
    assert default_catalog.get("finetune.requested") is FinetuneRequested


def test_unknown_key_names_the_nearest_valid_key(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("base_model: m\ndataset: d\nmodel_name: x\nlearning_rat: 0.1\n")
    with pytest.raises(FinetuneConfigError) as err:
        load_finetune_config(f)
    assert "'learning_rat'" in err.value.message
    assert "did you mean 'learning_rate'" in err.value.message


def test_keys_from_other_tools_are_suggested_not_mapped() -> None:
    fields = list(FinetuneConfig.model_fields)
    assert nearest_key("lora_target_modules", fields) == "target_modules"
    assert nearest_key("num_train_epochs", fields) == "num_epochs"
    assert nearest_key("per_device_train_batch_size", fields) == "micro_batch_size"
    assert nearest_key("zzzz", fields) is None


def test_overrides_are_parsed_as_yaml(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("base_model: m\ndataset: d\nmodel_name: x\n")
    cfg = load_finetune_config(
        f, ["max_steps=7", "target_modules=[q_proj, v_proj]", "packing=true"]
    )
    assert cfg["max_steps"] == 7
    assert cfg["target_modules"] == ["q_proj", "v_proj"]
    assert cfg["packing"] is True
    assert parse_overrides(["lr_scheduler=linear"]) == {"lr_scheduler": "linear"}
    with pytest.raises(FinetuneConfigError, match="key=value"):
        parse_overrides(["max_steps"])


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"lora_r": 0}, "lora_r"),
        ({"sequence_len": 4}, "sequence_len"),
        ({"adapter": "dora"}, "adapter"),
        ({"model_name": "../evil"}, "model_name"),
        ({"load_in_4bit": True, "load_in_8bit": True}, "mutually exclusive"),
        ({"adapter": "full", "merge_adapter": True}, "merge_adapter"),
        ({"target_modules": []}, "target_modules is empty"),
        ({"num_epochs": 0}, "num_epochs > 0 or max_steps"),
        ({"report_to": ["none", "bogus"]}, "report_to"),
    ],
)
def test_bad_values_and_impossible_combinations(extra: dict, needle: str) -> None:
    from herald.training.config import validate_config

    with pytest.raises(FinetuneConfigError, match=needle):
        validate_config(FinetuneConfig, {**BASE, **extra})


def test_qlora_without_cuda_is_refused_before_training() -> None:
    if _has_gpu_stack():
        pytest.skip("this host can run QLoRA")
    from herald.training.config import validate_config

    with pytest.raises(FinetuneConfigError, match="adapter: lora"):
        validate_config(FinetuneConfig, {**BASE, "adapter": "qlora"})
    with pytest.raises(FinetuneConfigError, match=r"CUDA|bitsandbytes"):
        validate_config(FinetuneConfig, {**BASE, "load_in_8bit": True})


def test_finetune_requested_payload_is_validated_by_the_catalog() -> None:
    msg = default_catalog.validate("finetune.requested", {**BASE, "max_steps": 3})
    assert isinstance(msg, FinetuneRequested)
    with pytest.raises(MessageValidationError):
        default_catalog.validate("finetune.requested", {**BASE, "lora_alpha": "many"})
    with pytest.raises(MessageValidationError):
        default_catalog.validate("finetune.requested", {**BASE, "epochs": 3})
    with pytest.raises(MessageValidationError):
        default_catalog.validate("finetune.requested", {"dataset": "d", "model_name": "x"})


def test_relative_paths_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "data.jsonl").write_text('{"text": "hi"}\n')
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "c.yaml").write_text("base_model: org/model\ndataset: ../data.jsonl\nmodel_name: x\n")
    monkeypatch.chdir(conf)
    cfg = load_finetune_config(conf / "c.yaml")
    assert cfg["dataset"] == str((tmp_path / "data.jsonl").resolve())
    assert cfg["base_model"] == "org/model"  # not a local path: left for the resolver


def test_unreadable_or_non_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(FinetuneConfigError, match="cannot read"):
        load_finetune_config(tmp_path / "missing.yaml")
    bad = tmp_path / "list.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(FinetuneConfigError, match="mapping"):
        load_finetune_config(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [\n")
    with pytest.raises(FinetuneConfigError, match="not valid YAML"):
        load_finetune_config(broken)


def test_sensor_requests_the_finetune_job() -> None:
    msg = FinetuneRequested(**BASE, max_steps=5)
    env = Envelope(type="finetune.requested", source="test", data=msg.payload())
    ctx = SensorContext(event=env, sensor="training.finetune")
    on_finetune_requested(msg, ctx)
    [req] = ctx.jobs
    assert req.name == "finetune"
    assert req.params["max_steps"] == 5
    assert finetune.__herald_job__.validate(req.params)["model_name"] == "out"  # type: ignore[attr-defined]


@pytest.mark.parametrize("tracker", ["mlflow", "wandb", "tensorboard"])
def test_report_to_needs_the_tracker_installed(tracker: str) -> None:
    from herald.training.config import validate_config

    if importlib.util.find_spec(tracker) is not None:
        assert (
            validate_config(FinetuneConfig, {**BASE, "report_to": tracker})["report_to"] == tracker
        )
        return
    with pytest.raises(FinetuneConfigError, match=f"pip install {tracker}"):
        validate_config(FinetuneConfig, {**BASE, "report_to": [tracker]})
