"""Distributed fine-tuning: the same training loop, data-parallel under Ray Train.

``finetune`` with ``distributed: {num_workers: N, backend: ray}`` calls
:func:`train_distributed` instead of :func:`herald.training.runner.train`. It joins the Ray
cluster (``distributed.address``, else ``jobs.ray.address`` — under the ``ray`` executor that
is the job's own cluster) and runs a Ray Train ``TorchTrainer`` with ``N`` workers. Ray Train
starts the torch process group (gloo on CPU, NCCL with ``use_gpu``); every worker loads the base
model and runs :func:`~herald.training.runner.train` — the HF ``Trainer`` sees the process group
and wraps the model in DDP, each rank training on its shard of the rows. Rank 0 reports
progress (``training.progressed`` and ``job.progressed`` reach the job through a Ray queue),
saves the adapter as safetensors and hands it back as a Ray Train checkpoint, which lands in the
run's ``output`` folder exactly where a single-process fine-tune puts it; the job then uploads
and registers it the same way.

Limits: checkpoints for resuming go to ``$HERALD_HOME/runs/<run>/checkpoints`` as seen by the
workers (resuming a failed attempt needs a home shared by the nodes); a cancelled job stops the
workers when the job process exits.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from herald.jobs.context import JobContext
from herald.services import Services
from herald.settings import RaySettings, Settings, load_settings
from herald.training.errors import TrainingError
from herald.training.runner import TrainResult

log = logging.getLogger("herald.training")


def _worker_loop(cfg: dict[str, Any]) -> None:
    """One Ray Train worker (rank): load the model, train its shard, rank 0 saves."""
    import ray
    import ray.train
    from ray.train import Checkpoint

    from herald.training.runner import load_model, train

    rank = ray.train.get_context().get_world_rank()
    events = cfg["events"]
    config = dict(cfg["config"])
    ctx: JobContext | None = None
    if rank == 0:
        ctx = JobContext(cfg["job_id"], "finetune", cfg["attempt"], {}, events.put)
    else:
        config["eval_suites"] = None  # in-training evaluations run on rank 0 only
    train_rows, validation_rows = ray.get(cfg["rows"])
    model, tokenizer = load_model(cfg["source"], config, trust_remote_code=cfg["trust_remote_code"])
    result = train(
        model,
        tokenizer,
        train_rows=train_rows,
        validation_rows=validation_rows,
        data_format=cfg["data_format"],
        config=config,
        work_dir=Path(cfg["work_dir"]),
        ctx=ctx,
        registry=None,  # the job logs run metrics from the progress rank 0 sends
        run_id=cfg["run_id"],
        job_id=cfg["job_id"],
        chat_template=cfg["chat_template"],
        save=rank == 0,
        services=Services(load_settings(home=Path(cfg["home"]))),  # the job's home on this node
    )
    report = {
        "rank": rank,
        "global_step": result.global_step,
        "metrics": result.metrics,
        "data_stats": result.data_stats,
        "chat_template": result.chat_template,
        "resumed_from_step": result.resumed_from_step,
        "world_size": ray.train.get_context().get_world_size(),
    }
    if rank == 0:
        ray.train.report(report, checkpoint=Checkpoint.from_directory(str(result.output_dir)))
    else:
        ray.train.report(report)


def _forward(
    events: Any,
    stop: threading.Event,
    ctx: JobContext | None,
    registry: Any,
    run_id: str,
) -> None:
    """Pass rank 0's progress, live messages and log lines on to the job (and the run)."""
    from ray.util.queue import Empty

    sink = getattr(ctx, "_sink", None)
    while True:
        try:
            item = events.get(timeout=0.5)
        except Empty:
            if stop.is_set():
                return
            continue
        except Exception as exc:  # the queue actor went away with the cluster
            log.warning("progress from the training workers stopped: %s", exc)
            return
        if item.get("kind") == "emit" and item.get("type") == "training.progressed":
            data = item.get("data") or {}
            metrics = {
                k: float(data[k])
                for k in ("loss", "learning_rate", "grad_norm", "eval_loss", "tokens_per_second")
                if isinstance(data.get(k), int | float)
            }
            if registry is not None and metrics and data.get("step") is not None:
                try:
                    registry.log_metrics(run_id, int(data["step"]), metrics)
                except Exception as exc:
                    log.warning("could not log run metrics: %s", exc)
        if sink is not None:
            sink(item)


def train_distributed(
    source: Any,
    data: Any,
    config: dict[str, Any],
    work_dir: Path,
    *,
    ctx: JobContext | None,
    registry: Any,
    run_id: str,
    job_id: str,
    settings: Settings,
) -> TrainResult:
    """Fine-tune across ``config['distributed']['num_workers']`` Ray Train workers."""
    import ray
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer
    from ray.util.queue import Queue

    from herald.raycluster import connect

    dist = dict(config["distributed"])
    if config.get("merge_adapter"):
        raise TrainingError(
            "merge_adapter is not supported with distributed training yet; merge the "
            "registered adapter afterwards or train without distributed"
        )
    address = dist.get("address") or settings.jobs.ray.address
    ray_settings = RaySettings(
        address=address,
        namespace=settings.jobs.ray.namespace,
        runtime_env=settings.jobs.ray.runtime_env,
        connect_timeout_s=settings.jobs.ray.connect_timeout_s,
    )
    gcs = connect(ray_settings)
    workers = int(dist["num_workers"])
    use_gpu = bool(dist.get("use_gpu"))
    say = ctx.log if ctx is not None else log.info
    say(
        f"distributed fine-tune: {workers} Ray Train worker(s) on {gcs} "
        f"({'NCCL, 1 GPU' if use_gpu else 'gloo, CPU'} and {dist['cpus_per_worker']:g} CPU each)"
    )
    storage = str(dist.get("storage_path") or (settings.home / "ray-train"))
    attempt = ctx.attempt if ctx is not None else 1
    name = f"{run_id}-a{attempt}-{int(time.time())}"
    events = Queue(actor_options={"num_cpus": 0})
    rows = ray.put((list(data.train), list(data.validation)))
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config={
            "config": config,
            "source": source,
            "rows": rows,
            "data_format": data.format,
            "work_dir": str(work_dir),
            "run_id": run_id,
            "job_id": job_id,
            "attempt": attempt,
            "chat_template": getattr(source, "chat_template", None),
            "home": str(settings.home),
            "trust_remote_code": settings.security.trust_remote_code,  # the job's, not the node's
            "events": events,
        },
        scaling_config=ScalingConfig(
            num_workers=workers,
            use_gpu=use_gpu,
            resources_per_worker={"CPU": float(dist["cpus_per_worker"])}
            | ({"GPU": 1.0} if use_gpu else {}),
        ),
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        run_config=RunConfig(
            name=name,
            storage_path=storage,
            failure_config=FailureConfig(max_failures=0),  # Herald retries attempts itself
        ),
    )
    stop = threading.Event()
    forwarder = threading.Thread(
        target=_forward, args=(events, stop, ctx, registry, run_id), daemon=True
    )
    forwarder.start()
    try:
        result = trainer.fit()
    except Exception as exc:
        raise TrainingError(f"distributed training on Ray failed: {_reason(exc)}") from None
    finally:
        stop.set()
        forwarder.join(timeout=10)
        try:
            actor: Any = events.actor
            ray.kill(actor)
        except Exception as exc:
            log.debug("queue actor already gone: %s", exc)
    if result.error is not None:
        raise TrainingError(f"distributed training on Ray failed: {_reason(result.error)}")
    if result.checkpoint is None:
        raise TrainingError("distributed training ended without rank 0's adapter checkpoint")
    report = dict(result.metrics or {})
    output_dir = work_dir / "output"
    shutil.rmtree(output_dir, ignore_errors=True)
    result.checkpoint.to_directory(str(output_dir))
    if "://" not in storage:  # the copy is in the run folder now; drop Ray's
        shutil.rmtree(Path(storage) / name, ignore_errors=True)
    metrics = {k: float(v) for k, v in (report.get("metrics") or {}).items()}
    metrics["num_workers"] = float(report.get("world_size") or workers)
    say(f"distributed fine-tune done: step {report.get('global_step')} on {workers} workers")
    return TrainResult(
        output_dir=output_dir,
        merged_dir=None,
        chat_template=report.get("chat_template"),
        metrics=metrics,
        data_stats=dict(report.get("data_stats") or {}),
        resumed_from_step=report.get("resumed_from_step"),
        global_step=int(report.get("global_step") or 0),
    )


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__
