"""Deployment replicas: a pool :class:`~herald.serving.pool.Replica` whose backend is watched,
so a replica that crashes is taken out of rotation (failover) until a health check passes."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from herald.serving.backends.base import (
    Backend,
    ChatPrompt,
    Delta,
    Embeddings,
    GenerationRequest,
    Prompt,
    TokenLogprob,
)
from herald.serving.errors import ServingError
from herald.serving.pool import ModelSpec, Replica

log = logging.getLogger("herald.serving.deployments")


def is_replica_failure(exc: BaseException) -> bool:
    """Server-side failures count against a replica; client errors (400, 429) do not."""
    if isinstance(exc, ServingError):
        return exc.status >= 500
    return isinstance(exc, Exception)


class WatchedBackend(Backend):
    """Delegates to ``inner``; reports exceptions of generation and embedding calls."""

    name = "watched"

    def __init__(self, inner: Backend, on_failure: Callable[[BaseException], None]) -> None:
        self.inner = inner
        self.on_failure = on_failure
        self.model = inner.model
        self.options = inner.options
        self.context_length = inner.context_length
        self.max_concurrency = inner.max_concurrency
        setattr(self, "capabilities", inner.capabilities)  # noqa: B010 - a ClassVar upstream
        setattr(self, "name", inner.name)  # noqa: B010

    def __getattr__(self, item: str) -> Any:  # backend-specific attributes (tests, stats)
        return getattr(self.inner, item)

    async def load(self) -> None:
        await self.inner.load()
        self.context_length = self.inner.context_length

    async def close(self) -> None:
        await self.inner.close()

    async def health(self) -> bool:
        return await self.inner.health()

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    def tokenize(self, text: str) -> list[int]:
        return self.inner.tokenize(text)

    def detokenize(self, ids: list[int]) -> str:
        return self.inner.detokenize(ids)

    def chat_prompt(self, messages: list[dict[str, Any]]) -> ChatPrompt:
        return self.inner.chat_prompt(messages)

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        it = self.inner.generate(request)
        try:
            async for d in it:
                yield d
        except Exception as exc:
            if is_replica_failure(exc):
                self.on_failure(exc)
            raise
        finally:
            aclose = getattr(it, "aclose", None)
            if aclose is not None:
                await aclose()

    async def prompt_logprobs(self, prompt: Prompt, top: int) -> list[TokenLogprob]:
        try:
            return await self.inner.prompt_logprobs(prompt, top)
        except Exception as exc:
            if is_replica_failure(exc):
                self.on_failure(exc)
            raise

    async def embed(self, inputs: Sequence[str | list[int]]) -> Embeddings:
        try:
            return await self.inner.embed(inputs)
        except Exception as exc:
            if is_replica_failure(exc):
                self.on_failure(exc)
            raise


class DeploymentReplica:
    """One loaded copy of a target version, with its health."""

    def __init__(self, spec: ModelSpec, backend: Backend, max_queue: int, index: int) -> None:
        self.index = index
        self.watched = WatchedBackend(backend, self.mark_failed)
        self.replica = Replica(spec, self.watched, max_queue)
        self.healthy = True
        self.failures = 0
        self.unhealthy_since: float | None = None
        self.last_error: str | None = None
        self.on_failed: Callable[[DeploymentReplica], None] | None = None

    @property
    def spec(self) -> ModelSpec:
        return self.replica.spec

    @property
    def outstanding(self) -> int:
        return self.replica.outstanding

    def mark_failed(self, exc: BaseException | None = None) -> None:
        self.failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}" if exc is not None else "health check"
        if self.healthy:
            self.healthy = False
            self.unhealthy_since = time.monotonic()
            log.warning(
                "replica %d of %s (%s) taken out of rotation: %s",
                self.index,
                self.spec.name,
                self.spec.version,
                self.last_error,
            )
            if self.on_failed is not None:
                self.on_failed(self)

    async def check(self, cooldown_s: float) -> bool:
        """Run the backend's health check; a failed replica returns after ``cooldown_s``."""
        try:
            ok = await self.watched.health()
        except Exception as exc:
            ok = False
            self.last_error = f"health check: {type(exc).__name__}: {exc}"
        if not ok:
            if self.healthy:
                self.mark_failed(None)
            return False
        since = self.unhealthy_since
        if not self.healthy and since is not None and time.monotonic() - since >= cooldown_s:
            self.healthy = True
            self.unhealthy_since = None
            log.info("replica %d of %s is healthy again", self.index, self.spec.name)
        return self.healthy

    def describe(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "healthy": self.healthy,
            "outstanding": self.outstanding,
            "failures": self.failures,
            "last_error": self.last_error,
        }
