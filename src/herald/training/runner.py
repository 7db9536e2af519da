"""The fine-tuning run: resolve inputs, train with the HF Trainer + PEFT, save, upload.

``run_finetune(config, ctx)`` is what the ``finetune`` job calls. It

1. resolves the base model (:func:`herald.models.resolve_model`) and the data set
   (:func:`herald.datasets.open_training_data`), opens the run in the registry (run id = job id,
   so a retried attempt continues the same run);
2. tokenizes rows with the model's chat template (:mod:`herald.training.data`);
3. trains (:func:`train`), checkpointing every ``save_steps`` into
   ``$HERALD_HOME/runs/<run_id>/checkpoints`` and resuming from the newest complete checkpoint;
4. saves the adapter (or full model) as safetensors + tokenizer + chat template, optionally a
   merged model, puts them into the artifact store and returns ``finetune.completed``.
"""

from __future__ import annotations

import errno
import json
import logging
import pickle
import shutil
import signal
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from herald.jobs.context import JobContext
from herald.messages.lifecycle import FinetuneCompleted
from herald.models.lock import MODEL_BUILD_LOCK
from herald.security.files import check_job_paths
from herald.services import Services
from herald.settings import Settings
from herald.training.checkpoints import checkpoint_step, last_complete_checkpoint, run_dir
from herald.training.data import Collator, as_records, ensure_chat_template, prepare
from herald.training.errors import TrainingCancelled, TrainingError

log = logging.getLogger("herald.training")
OUTPUT_META = "herald_finetune.json"


@dataclass
class TrainResult:
    """What :func:`train` produced."""

    output_dir: Path
    merged_dir: Path | None
    chat_template: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    data_stats: dict[str, Any] = field(default_factory=dict)
    resumed_from_step: int | None = None
    global_step: int = 0


def _say(ctx: JobContext | None, line: str) -> None:
    log.info(line)
    if ctx is not None:
        ctx.log(line)


@contextmanager
def _sigterm_cancels(ctx: JobContext | None) -> Iterator[None]:
    """In a job subprocess, SIGTERM (cancel / worker shutdown) stops training at a step end."""
    if ctx is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda *_: ctx.cancel())
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _device_setup() -> tuple[bool, bool]:
    """(use CUDA, use bf16)."""
    import torch

    cuda = torch.cuda.is_available()
    return cuda, cuda and torch.cuda.is_bf16_supported()


def apply_adapter(model: Any, config: dict[str, Any]) -> Any:
    """Wrap ``model`` with a LoRA adapter, or make every weight trainable for ``full``."""
    if config["adapter"] == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if config["adapter"] == "qlora" or config["load_in_4bit"] or config["load_in_8bit"]:
        model = prepare_model_for_kbit_training(model)  # type: ignore[no-untyped-call]
    lora = LoraConfig(
        r=config["lora_r"],
        lora_alpha=config["lora_alpha"],
        lora_dropout=config["lora_dropout"],
        target_modules=config["target_modules"],
        bias="none",
        task_type="CAUSAL_LM",
    )
    try:
        with warnings.catch_warnings():
            # peft 0.21 probes a property transformers 5 deprecated; harmless, not ours to fix
            warnings.filterwarnings("ignore", ".*is_gradient_checkpointing.*", FutureWarning)
            with MODEL_BUILD_LOCK:  # new LoRA parameters: not while another thread builds a model
                return get_peft_model(model, lora)
    except ValueError as exc:  # e.g. target modules not found in the model
        raise TrainingError(f"cannot apply LoRA: {exc}") from None


def training_arguments(
    config: dict[str, Any], output_dir: Path, *, has_eval: bool, cuda: bool, bf16: bool
) -> Any:
    from transformers import TrainingArguments

    report_to = config["report_to"]
    if isinstance(report_to, list):
        report_to = [r for r in report_to if r != "none"] or "none"
    eval_every = config["eval_steps"] if has_eval else None
    return TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=config["micro_batch_size"],
        per_device_eval_batch_size=config["micro_batch_size"],
        gradient_accumulation_steps=config["gradient_accumulation_steps"],
        learning_rate=config["learning_rate"],
        lr_scheduler_type=config["lr_scheduler"],
        num_train_epochs=config["num_epochs"],
        max_steps=config["max_steps"] or -1,
        warmup_steps=config["warmup_steps"],
        weight_decay=config["weight_decay"],
        max_grad_norm=config["max_grad_norm"],
        logging_strategy="steps",
        logging_steps=config["logging_steps"],
        save_strategy="steps",
        save_steps=config["save_steps"],
        save_total_limit=config["save_total_limit"],
        eval_strategy="steps" if eval_every else "no",
        eval_steps=eval_every,
        report_to=report_to,
        seed=config["seed"],
        data_seed=config["seed"],
        use_cpu=not cuda,
        bf16=bf16,
        disable_tqdm=True,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        include_num_input_tokens_seen="non_padding",
        label_names=["labels"],
    )


def train(
    model: Any,
    tokenizer: Any,
    *,
    train_rows: list[dict[str, Any]],
    validation_rows: list[dict[str, Any]],
    data_format: str,
    config: dict[str, Any],
    work_dir: Path,
    ctx: JobContext | None = None,
    registry: Any = None,
    run_id: str = "",
    job_id: str = "",
    chat_template: str | None = None,
    save: bool = True,
    services: Services | None = None,
) -> TrainResult:
    """Fine-tune ``model`` on the rows; checkpoints in ``work_dir/checkpoints``; saves outputs.

    Resumes from the newest complete checkpoint in ``work_dir/checkpoints`` if there is one.
    """
    import torch
    from transformers import Trainer, set_seed

    from herald.training.callback import HeraldCallback

    set_seed(config["seed"])
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    cuda, bf16 = _device_setup()
    if chat_template and not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = chat_template
    template = ensure_chat_template(tokenizer, data_format)
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token_id is None:
            raise TrainingError("the tokenizer has neither a pad nor an EOS token; cannot batch")
        tokenizer.pad_token = tokenizer.eos_token

    seq = config["sequence_len"]
    kw = {"sequence_len": seq, "train_on_inputs": config["train_on_inputs"]}
    train_ex, stats = prepare(train_rows, data_format, tokenizer, packing=config["packing"], **kw)
    val_ex, vstats = prepare(validation_rows, data_format, tokenizer, packing=False, **kw)
    data_stats = {"train": stats.as_dict(), "validation": vstats.as_dict()}
    _say(
        ctx,
        f"data: {stats.rows} train rows → {stats.examples} examples "
        f"({stats.trainable_tokens}/{stats.tokens} trainable tokens); "
        f"{stats.rows_truncated} rows over sequence_len={seq} truncated, "
        f"{stats.rows_dropped} dropped (nothing left to learn); "
        f"{vstats.rows} validation rows",
    )
    if not train_ex:
        raise TrainingError(
            f"no trainable examples: all {stats.rows} rows were dropped (rows with no assistant "
            f"turn, or whose prompt alone exceeds sequence_len={seq}; longest row "
            f"{stats.max_row_tokens} tokens). Raise sequence_len or check the data."
        )

    model.config.use_cache = False
    model = apply_adapter(model, config)
    ckpt_dir = work_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    resume = last_complete_checkpoint(ckpt_dir)
    if resume is not None:
        _say(ctx, f"resuming from {resume.name} (step {checkpoint_step(resume)})")
    args = training_arguments(config, ckpt_dir, has_eval=bool(val_ex), cuda=cuda, bf16=bf16)
    callback = HeraldCallback(
        ctx=ctx,
        registry=registry,
        run_id=run_id,
        job_id=job_id,
        model_name=config["model_name"],
        eval_suites=list(config.get("eval_suites") or []),
        eval_steps=config["eval_steps"],
        eval_limit=config.get("eval_limit"),
        tokenizer=tokenizer,
        services=services,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=as_records(train_ex),
        eval_dataset=as_records(val_ex) if val_ex else None,
        data_collator=Collator(int(tokenizer.pad_token_id)),
        processing_class=tokenizer,
        callbacks=[callback],
    )
    started = time.monotonic()
    try:
        with _sigterm_cancels(ctx):
            out = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    except pickle.UnpicklingError as exc:
        raise TrainingError(
            f"refused to resume from {resume}: its optimizer/scheduler/RNG state is not plain "
            f"tensor data (loaded with torch.load(weights_only=True): {exc}). Delete that "
            "checkpoint folder to resume from an earlier one, or the run folder to start over."
        ) from None
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise TrainingError(
                f"disk full while writing a checkpoint under {ckpt_dir}: free space or lower "
                "save_total_limit; the run resumes from its last complete checkpoint"
            ) from None
        raise
    if callback.cancelled:
        raise TrainingCancelled(
            f"cancelled at step {trainer.state.global_step}; checkpoint kept in {ckpt_dir}"
        )
    if callback.eval_error is not None:  # asked-for scores are missing: not a completed run
        raise callback.eval_error
    runtime = time.monotonic() - started
    metrics: dict[str, float] = {
        "train_loss": float(out.training_loss),
        "train_runtime_s": runtime,
        "global_step": float(trainer.state.global_step),
        "rows_truncated": float(stats.rows_truncated),
        "rows_dropped": float(stats.rows_dropped),
    }
    tps = callback.session_tokens_per_second()
    if tps is not None:
        metrics["tokens_per_second"] = tps
    if val_ex and callback.last_eval_step == trainer.state.global_step:
        metrics["eval_loss"] = float(callback.last_eval_loss or 0.0)
    elif val_ex:
        ev = trainer.evaluate()  # reported through the callback too
        if "eval_loss" in ev:
            metrics["eval_loss"] = float(ev["eval_loss"])
    if registry is not None and run_id:
        final = {k: v for k, v in metrics.items() if k in ("train_loss", "eval_loss")}
        if final:
            registry.log_metrics(run_id, trainer.state.global_step, final)

    output_dir, merged_dir = work_dir / "output", None
    if save:  # the other ranks of a distributed run leave the outputs to rank 0
        output_dir, merged_dir = save_outputs(trainer.model, tokenizer, work_dir, config, template)
        meta = {"config": config, "metrics": metrics, "data": data_stats}
        (output_dir / OUTPUT_META).write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return TrainResult(
        output_dir=output_dir,
        merged_dir=merged_dir,
        chat_template=template,
        metrics=metrics,
        data_stats=data_stats,
        resumed_from_step=callback.resumed_from_step,
        global_step=trainer.state.global_step,
    )


def save_outputs(
    model: Any, tokenizer: Any, work_dir: Path, config: dict[str, Any], template: str | None
) -> tuple[Path, Path | None]:
    """Adapter (or full model) + tokenizer + chat template as safetensors; optional merge."""
    output_dir = work_dir / "output"
    shutil.rmtree(output_dir, ignore_errors=True)
    output_dir.mkdir(parents=True)
    model.config.use_cache = True
    model.save_pretrained(str(output_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(output_dir))
    if template:
        (output_dir / "chat_template.jinja").write_text(template, encoding="utf-8")
    merged_dir = None
    if config["merge_adapter"] and config["adapter"] != "full":
        merged_dir = work_dir / "merged"
        shutil.rmtree(merged_dir, ignore_errors=True)
        merged = model.merge_and_unload()
        merged.save_pretrained(str(merged_dir), safe_serialization=True)
        tokenizer.save_pretrained(str(merged_dir))
        if template:
            (merged_dir / "chat_template.jinja").write_text(template, encoding="utf-8")
    for folder in filter(None, (output_dir, merged_dir)):
        unsafe = [p.name for p in folder.rglob("*") if p.suffix in (".bin", ".pt", ".pkl", ".pth")]
        if unsafe:
            raise TrainingError(f"refusing to publish pickle files {unsafe} (safetensors only)")
    return output_dir, merged_dir


# the job ----------------------------------------------------------------------------------------
def load_model(source: Any, config: dict[str, Any], *, trust_remote_code: bool) -> tuple[Any, Any]:
    """Load the base model for training (fp32 on CPU; quantized via bitsandbytes on CUDA).
    Model code runs only when the operator allows it (``security.trust_remote_code`` of the
    job's settings); no fine-tuning config or message can ask for it."""
    if config["adapter"] == "qlora" or config["load_in_4bit"] or config["load_in_8bit"]:
        import torch
        from transformers import AutoModelForCausalLM, BitsAndBytesConfig

        from herald.models import load_tokenizer

        four = config["adapter"] == "qlora" or config["load_in_4bit"]
        quant = BitsAndBytesConfig(  # type: ignore[no-untyped-call]
            load_in_4bit=four,
            load_in_8bit=not four,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=torch.bfloat16,
            bnb_4bit_use_double_quant=True,
        )
        where = str(source.local_dir) if source.local_dir else source.hf_id
        with MODEL_BUILD_LOCK:
            quantized: Any = AutoModelForCausalLM.from_pretrained(
                where,
                quantization_config=quant,
                use_safetensors=True,
                trust_remote_code=trust_remote_code,
                device_map={"": 0},
            )
        return quantized, load_tokenizer(source)
    from herald.models import load_causal_lm

    cuda, bf16 = _device_setup()
    loaded: tuple[Any, Any] = load_causal_lm(
        source,
        dtype="bfloat16" if bf16 else "float32",
        device="cuda" if cuda else "cpu",
        trust_remote_code=trust_remote_code,
    )
    model, tokenizer = loaded
    if hasattr(model, "merge_and_unload"):  # a registered adapter: train on base + adapter
        model = model.merge_and_unload()
    return model, tokenizer


def _registered_dataset(config: dict[str, Any], ctx: JobContext | None, services: Services) -> str:
    """A data set given as a file is registered first (content-addressed: the same rows and
    split are the same version), so the model's lineage points at ``datasets:/name/v``."""
    import re

    from herald.datasets.jobs import register_dataset_version
    from herald.datasets.training import looks_like_file

    ref = str(config["dataset"])
    if not looks_like_file(ref):
        return ref
    stem = Path(ref.split("?", 1)[0].rstrip("/")).name.split(".", 1)[0]
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._")[:128] or "dataset"
    _say(ctx, f"registering data set file {ref!r} as {name!r}")
    registered = register_dataset_version(
        services,
        name,
        ref,
        validation_fraction=config["val_set_size"],
        seed=config["seed"],
        description=f"registered by fine-tuning {config['model_name']}",
    )
    if ctx is not None:
        ctx.emit(registered)
    return str(registered.uri)


def run_finetune(
    config: dict[str, Any], ctx: JobContext | None, settings: Settings | None = None
) -> FinetuneCompleted:
    """Run a validated fine-tuning config end to end; see the module docstring. The registry,
    artifact store and settings are the job's services (``settings``, when given, replace
    them)."""
    from herald.datasets import open_training_data
    from herald.models import resolve_model

    started = time.time()
    services = Services(settings) if settings is not None else Services.of_job(ctx)
    settings = services.settings
    # data set, base model folder, suites and Ray storage named by the caller: the server's
    # file access policy (the publish edge gave the same answer)
    check_job_paths("finetune", config, settings)
    job_id = ctx.job_id if ctx is not None else uuid.uuid4().hex
    run_id = job_id
    work_dir = run_dir(settings, run_id)
    work_dir.mkdir(parents=True, exist_ok=True)
    registry = services.registry
    # idempotent: a retried attempt (same job id) gets the same run back and continues it
    registry.create_run(
        run_id,
        name=f"finetune {config['model_name']}",
        job_id=job_id,
        params=config,
        tags={"job": "finetune", "model_name": config["model_name"]},
    )
    status, error = "failed", None
    try:
        _say(ctx, f"run {run_id}: resolving base model {config['base_model']!r}")
        source = resolve_model(config["base_model"], registry, artifacts=services.artifacts)
        dataset_ref = _registered_dataset(config, ctx, services)
        _say(ctx, f"opening data set {dataset_ref!r}")
        data = open_training_data(
            dataset_ref,
            registry,
            artifacts=services.artifacts,
            egress=settings,  # the job's security.egress for a data set URL
            validation_fraction=config["val_set_size"],
            seed=config["seed"],
        )
        if config.get("distributed"):  # data-parallel across Ray Train workers
            from herald.training.distributed import train_distributed

            result = train_distributed(
                source,
                data,
                config,
                work_dir,
                ctx=ctx,
                registry=registry,
                run_id=run_id,
                job_id=job_id,
                settings=settings,
            )
        else:
            model, tokenizer = load_model(
                source, config, trust_remote_code=settings.security.trust_remote_code
            )
            result = train(
                model,
                tokenizer,
                train_rows=list(data.train),
                validation_rows=list(data.validation),
                data_format=data.format,
                config=config,
                work_dir=work_dir,
                ctx=ctx,
                registry=registry,
                run_id=run_id,
                job_id=job_id,
                chat_template=getattr(source, "chat_template", None),
                services=services,
            )
        store = services.artifacts
        key = f"models/{config['model_name']}/{run_id}"
        ref = store.put_dir(key, result.output_dir)
        registry.log_artifact(run_id, "model", ref.uri)
        merged_uri = None
        if result.merged_dir is not None:
            merged_uri = store.put_dir(f"{key}-merged", result.merged_dir).uri
            registry.log_artifact(run_id, "merged_model", merged_uri)
        status = "finished"
    except TrainingCancelled:
        status = "killed"
        raise
    except Exception as exc:  # the run record says why, like the job
        error = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        raise
    finally:
        try:
            registry.finish_run(run_id, status, error=error)
        except Exception as exc:  # never mask the training outcome with a bookkeeping error
            _say(ctx, f"could not mark run {run_id} {status}: {exc}")
    _say(ctx, f"saved {ref.uri} after {result.global_step} steps")
    metrics = dict(result.metrics)
    if result.resumed_from_step is not None:
        metrics["resumed_from_step"] = float(result.resumed_from_step)
    return FinetuneCompleted(
        job_id=job_id,
        run_id=run_id,
        model_name=config["model_name"],
        base_model={
            "ref": config["base_model"],
            "uri": source.uri
            or source.hf_id
            or (str(source.local_dir) if source.local_dir else None),
            "name": source.name,
            "version": source.version,
            "kind": source.kind,
        },
        dataset={
            "name": data.name,
            "version": data.version,
            "uri": data.uri,
            "fingerprint": data.fingerprint,
        },
        config=config,
        artifact_uri=ref.uri,
        kind=config["adapter"],
        chat_template=result.chat_template,
        metrics=metrics,
        duration_s=time.time() - started,
        **({"merged_artifact_uri": merged_uri} if merged_uri else {}),
    )
