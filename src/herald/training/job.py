"""The ``finetune`` job, the ``finetune.requested`` message and the sensor joining them.

This module is a built-in plugin: importing it registers the job, the message type and the
sensor. It imports quickly — torch, transformers and peft are imported inside the job.

The job function's signature IS the config schema (YAML files, ``finetune.requested`` payloads
and ``herald finetune --set`` all validate against it). Key names follow axolotl,
LLaMA-Factory and torchtune.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from herald.jobs.context import JobContext
from herald.jobs.registry import job
from herald.messages.lifecycle import FinetuneCompleted
from herald.sensors.base import SensorContext, sensor
from herald.training.config import config_model, message_model, validate_config

Adapter = Literal["lora", "qlora", "full"]
Scheduler = Literal[
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
]
ReportTo = Literal["none", "mlflow", "wandb", "tensorboard"]
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


class DistributedTraining(BaseModel):
    """Run the training loop data-parallel across workers with Ray Train (``TorchTrainer``)."""

    model_config = ConfigDict(extra="forbid")

    num_workers: int = Field(2, ge=1, le=1024, description="Training processes (DDP ranks).")
    backend: Literal["ray"] = Field("ray", description="Only Ray Train for now.")
    address: str | None = Field(
        None, description="Ray cluster to use; default jobs.ray.address (the job's own cluster)."
    )
    use_gpu: bool = Field(False, description="One GPU per worker (NCCL); else CPU (gloo).")
    cpus_per_worker: float = Field(1.0, gt=0, description="CPUs each worker requests.")
    storage_path: str | None = Field(
        None,
        description="Ray Train storage for the result (a path every node sees, or s3://...); "
        "default $HERALD_HOME/ray-train.",
    )


@job(name="finetune", executor="local")
def finetune(
    base_model: Annotated[
        str,
        Field(
            min_length=1,
            description="Registry name or models:/ URI, Hugging Face id, local folder, or the "
            "bundled 'smollm2-135m-instruct'.",
        ),
    ],
    dataset: Annotated[
        str,
        Field(
            min_length=1,
            description="Registered data set name, datasets:/name/version, or a JSONL/CSV/"
            "Parquet path or fsspec URL.",
        ),
    ],
    model_name: Annotated[
        str,
        Field(pattern=NAME_PATTERN, description="Registry name to register the result under."),
    ],
    val_set_size: Annotated[
        float,
        Field(
            ge=0.0,
            lt=1.0,
            description="Validation fraction split off a data set FILE (registered versions "
            "keep their own split).",
        ),
    ] = 0.0,
    adapter: Annotated[Adapter, Field(description="lora, qlora (4-bit, CUDA) or full.")] = "lora",
    lora_r: Annotated[int, Field(ge=1, le=1024, description="LoRA rank.")] = 16,
    lora_alpha: Annotated[int, Field(ge=1, description="LoRA scaling alpha.")] = 32,
    lora_dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.05,
    target_modules: Annotated[
        list[str] | Literal["all-linear"],
        Field(description="Module names to adapt, or 'all-linear'."),
    ] = "all-linear",
    learning_rate: Annotated[float, Field(gt=0.0, le=1.0)] = 2e-4,
    lr_scheduler: Annotated[Scheduler, Field(description="Learning-rate schedule.")] = "cosine",
    num_epochs: Annotated[float, Field(ge=0.0, description="Epochs (ignored if max_steps)")] = 1.0,
    max_steps: Annotated[
        int | None, Field(ge=1, description="Optimizer steps; overrides num_epochs.")
    ] = None,
    micro_batch_size: Annotated[int, Field(ge=1, description="Sequences per forward pass.")] = 1,
    gradient_accumulation_steps: Annotated[int, Field(ge=1)] = 1,
    sequence_len: Annotated[
        int, Field(ge=8, le=131072, description="Max tokens per sequence; longer rows truncated.")
    ] = 1024,
    packing: Annotated[
        bool, Field(description="Concatenate examples into full sequence_len blocks.")
    ] = False,
    warmup_steps: Annotated[int, Field(ge=0)] = 0,
    weight_decay: Annotated[float, Field(ge=0.0)] = 0.0,
    max_grad_norm: Annotated[float, Field(ge=0.0)] = 1.0,
    seed: int = 42,
    load_in_4bit: Annotated[bool, Field(description="Quantize the base to 4-bit (CUDA)")] = False,
    load_in_8bit: Annotated[bool, Field(description="Quantize the base to 8-bit (CUDA)")] = False,
    eval_steps: Annotated[
        int | None, Field(ge=1, description="Evaluate every N steps (else only at the end).")
    ] = None,
    eval_suites: Annotated[
        list[str] | None,
        Field(
            description="Evaluation suites (YAML paths or shipped names) scored on the live "
            "model every eval_steps (else once at the end): evaluation.completed with the step; "
            "the registered version is evaluated on them too (the promotion policy's input)."
        ),
    ] = None,
    eval_limit: Annotated[
        int | None, Field(ge=1, description="Items per in-training evaluation (default: all).")
    ] = None,
    save_steps: Annotated[int, Field(ge=1, description="Checkpoint every N steps.")] = 50,
    save_total_limit: Annotated[int, Field(ge=1, description="Checkpoints kept.")] = 2,
    logging_steps: Annotated[int, Field(ge=1, description="Progress message every N steps")] = 1,
    train_on_inputs: Annotated[
        bool, Field(description="Also train on prompt tokens (default: completions only).")
    ] = False,
    report_to: Annotated[
        ReportTo | list[ReportTo], Field(description="HF Trainer integrations (default none).")
    ] = "none",
    merge_adapter: Annotated[
        bool, Field(description="Also export the adapter merged into a standalone model.")
    ] = False,
    distributed: Annotated[
        DistributedTraining | None,
        Field(
            description="Train across workers on a Ray cluster with Ray Train, e.g. "
            "{num_workers: 2, backend: ray}; rank 0 saves the adapter (default: one process)."
        ),
    ] = None,
    ctx: JobContext | None = None,
) -> FinetuneCompleted:
    """Fine-tune a causal LM with LoRA, QLoRA or fully; register-ready output in the store."""
    params = {k: v for k, v in locals().items() if k != "ctx"}
    config = validate_config(FinetuneConfig, params)
    from herald.training.runner import run_finetune

    return run_finetune(config, ctx)


FinetuneConfig = config_model(finetune)
FinetuneRequested = message_model(finetune)


@sensor(on="finetune.requested", name="training.finetune")
def on_finetune_requested(msg: Any, ctx: SensorContext) -> None:
    """Start the ``finetune`` job for a ``finetune.requested`` message."""
    ctx.run_job("finetune", msg.payload())


__all__ = [
    "DistributedTraining",
    "FinetuneConfig",
    "FinetuneRequested",
    "finetune",
    "on_finetune_requested",
]
