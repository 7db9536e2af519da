"""Evaluation sharded across Ray tasks: ``options: {shards: N}`` on an evaluation run.

The samples still to score are split into ``N`` contiguous shards; each shard is one Ray task
that opens the target itself (an in-process gateway for registry, checkpoint and served
targets: each shard loads its own copy of the model), sets up the per-item engines and scores
its samples exactly as :func:`herald.evaluation.runner.run_evaluation` does. The tasks return
their rows; the run stores them, so the store is written by one process and the aggregates,
thresholds and the result are computed from the same rows as an unsharded run. Batch engines
(lm-eval and the like) still run once, in the run itself.

The cluster is ``options.ray_address``, else ``jobs.ray.address`` (under the ``ray`` executor
that is the job's own cluster). Per-shard resources: ``options.shard_cpus`` (default 1) and
``options.shard_gpus`` (default 0).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from herald.errors import ConfigurationError

if TYPE_CHECKING:
    from herald.evaluation.runner import EvaluationPlan
    from herald.evaluation.suites import Sample
    from herald.settings import Settings

Row = tuple[dict[str, float], dict[str, Any], str | None, float | None]


def shard_count(options: dict[str, Any]) -> int:
    """``options.shards`` as a positive int (1: not sharded)."""
    raw = options.get("shards")
    if raw is None:
        return 1
    try:
        n = int(raw)
    except (TypeError, ValueError):
        raise ConfigurationError(f"options.shards must be a whole number, got {raw!r}") from None
    if n < 1 or n > 1024:
        raise ConfigurationError(f"options.shards must be within 1..1024, got {n}")
    return n


def split(items: list[Any], shards: int) -> list[list[Any]]:
    """Contiguous, nearly equal, non-empty parts (fewer when there are fewer items)."""
    n = max(1, min(shards, len(items)))
    size, extra = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append(items[start:end])
        start = end
    return [part for part in out if part]


async def _score_shard_async(
    plan: EvaluationPlan,
    samples: list[Sample],
    part: list[tuple[int, Sample]],
    settings: Settings | None,
    timeout: float,
) -> list[tuple[int, Row]]:
    from herald.evaluation.base import RunContext, create_engine
    from herald.evaluation.runner import _clients, _score_item
    from herald.evaluation.targets import open_target

    registry = None
    if plan.target.kind == "registry" and settings is not None:
        from herald.registry import Registry

        registry = Registry.from_settings(settings)
    suite = plan.suite
    engines = [create_engine(e.engine, e.metrics, e.options) for e in suite.engines]
    item_engines = [e for e in engines if not e.batch]
    async with (
        open_target(plan.target, settings=settings, registry=registry, timeout=timeout) as client,
        _clients(settings, registry, timeout) as open_client,
    ):
        run = RunContext(
            suite, client[0], client[1], plan.target.ref, open_client, samples, plan.concurrency
        )
        for e in item_engines:
            await e.setup(run)
        sem = asyncio.Semaphore(plan.concurrency)

        async def one(idx: int, sample: Sample) -> tuple[int, Row]:
            async with sem:
                return idx, await _score_item(idx, sample, item_engines, run)

        return list(await asyncio.gather(*(one(i, s) for i, s in part)))


def score_shard(
    plan: EvaluationPlan,
    samples: list[Sample],
    part: list[tuple[int, Sample]],
    settings: Settings | None,
    timeout: float,
) -> list[tuple[int, Row]]:
    """The body of one shard's Ray task."""
    return asyncio.run(_score_shard_async(plan, samples, part, settings, timeout))


async def score_sharded(
    plan: EvaluationPlan,
    samples: list[Sample],
    todo: list[tuple[int, Sample]],
    *,
    settings: Settings | None,
    timeout: float,
) -> AsyncIterator[list[tuple[int, Row]]]:
    """Score ``todo`` in ``options.shards`` Ray tasks; yield each shard's rows as it ends."""
    import ray

    from herald.raycluster import connect
    from herald.settings import RaySettings, load_settings

    opts = plan.options
    js = (settings or load_settings()).jobs.ray
    address = str(opts.get("ray_address") or js.address)
    await asyncio.to_thread(
        connect,
        RaySettings(
            address=address,
            namespace=js.namespace,
            runtime_env=js.runtime_env,
            connect_timeout_s=js.connect_timeout_s,
        ),
    )
    task = ray.remote(max_retries=1)(score_shard).options(
        num_cpus=float(opts.get("shard_cpus", 1)), num_gpus=float(opts.get("shard_gpus", 0))
    )
    samples_ref = ray.put(samples)
    refs = [
        task.remote(plan, samples_ref, part, settings, timeout)
        for part in split(todo, shard_count(opts))
    ]
    try:
        for fut in asyncio.as_completed([asyncio.wrap_future(r.future()) for r in refs]):
            yield await fut
    finally:
        for r in refs:  # a cancelled or failed run stops the other shards
            try:
                ray.cancel(r, force=True)
            except Exception:  # noqa: S112 (already finished)
                continue
