"""Running generations for the endpoints: priming (errors before headers), fan-in of ``n``
choices, metrics, hooks and the request log."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

from herald.serving.backends.base import Delta, GenerationRequest
from herald.serving.errors import ServingError
from herald.serving.hooks import RequestContext, RequestRecord
from herald.serving.pool import ModelPool, Replica

log = logging.getLogger("herald.serving")


class BackendFailed(ServingError):
    code = "backend_error"
    status = 500
    type = "server_error"


class GenerationTimeout(ServingError):
    code = "timeout"
    status = 504
    type = "server_error"


def as_serving_error(exc: BaseException) -> ServingError:
    if isinstance(exc, ServingError):
        return exc
    log.error("backend failed: %s: %s", type(exc).__name__, exc)
    return BackendFailed(f"the model backend failed: {type(exc).__name__}: {exc}")


class Generation:
    """One request's generations (``n`` choices) on one replica, with metrics and hooks."""

    def __init__(
        self, pool: ModelPool, replica: Replica, ctx: RequestContext, *, stream: bool
    ) -> None:
        self.pool = pool
        self.replica = replica
        self.ctx = ctx
        self.stream = stream
        self.started = time.perf_counter()
        self.first: float | None = None
        self.last: float | None = None
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.finish: str | None = None
        self.labels = (ctx.model, ctx.version)
        self._ttft = pool.metrics.ttft.labels(*self.labels)
        self._itl = pool.metrics.itl.labels(*self.labels)
        self._rewrite = bool(pool.hooks.on_stream_delta)
        self._stack = AsyncExitStack()
        self._iters: list[AsyncIterator[Delta]] = []
        self._primed: list[Delta | None] = []
        self._closed = False
        limit = pool.request_timeout_s
        self.deadline = None if limit is None else asyncio.get_running_loop().time() + limit

    @property
    def count(self) -> int:
        """Number of generations (prompts x n)."""
        return len(self._iters)

    async def start(self, requests: list[GenerationRequest]) -> None:
        """Take a slot and produce each choice's first delta, so that errors (context
        overflow, a backend that cannot start) surface as HTTP errors before headers."""
        self.replica.admit()
        m = self.pool.metrics
        m.waiting.labels(*self.labels).inc()
        try:
            await self._stack.enter_async_context(self.replica.slot())
        finally:
            m.waiting.labels(*self.labels).dec()
        m.running.labels(*self.labels).inc()
        self._stack.callback(m.running.labels(*self.labels).dec)
        self._iters = [self.replica.backend.generate(r) for r in requests]
        for it in self._iters:
            self._stack.push_async_callback(_aclose, it)
        try:
            async with self._timeout():
                firsts = await asyncio.gather(*(_first(it) for it in self._iters))
        except Exception as exc:
            await self.close(error=exc)
            raise as_serving_error(exc) from exc
        except BaseException as exc:
            await self.close(error=exc)
            raise
        self._primed = list(firsts)

    def _observe(self, index: int, d: Delta) -> Delta:
        now = time.perf_counter()
        if d.text or d.logprobs:
            if self.first is None:
                self.first = now
                self._ttft.observe(now - self.started)
            elif self.last is not None:
                self._itl.observe(now - self.last)
            self.last = now
            if d.text and self._rewrite:
                d.text = self.pool.hooks.run_delta(self.ctx, index, d.text)
        if d.finish_reason is not None and self.pool.hooks.on_stream_end:
            d.text += self.pool.hooks.run_end(self.ctx, index)  # held-back text
        if d.usage is not None:
            self.prompt_tokens = max(self.prompt_tokens, d.usage.prompt_tokens)
            self.completion_tokens += d.usage.completion_tokens
        if d.finish_reason is not None:
            self.finish = d.finish_reason
        return d

    @contextlib.asynccontextmanager
    async def _timeout(self) -> AsyncIterator[None]:
        """Bound one wait for the backend by the request's deadline (``request_timeout_s``)."""
        try:
            async with asyncio.timeout_at(self.deadline):
                yield
        except TimeoutError:
            raise GenerationTimeout(
                f"the generation took longer than the {self.pool.request_timeout_s:g} s "
                "request timeout (serving.request_timeout_s)"
            ) from None

    async def deltas(self) -> AsyncIterator[tuple[int, Delta]]:
        """All choices' deltas, interleaved as they arrive."""
        if len(self._iters) == 1:
            first = self._primed[0]
            if first is not None:
                yield 0, self._observe(0, first)
            it = self._iters[0]
            while True:
                try:
                    async with self._timeout():  # never around a yield
                        d = await anext(it)
                except StopAsyncIteration:
                    return
                yield 0, self._observe(0, d)
        queue: asyncio.Queue[tuple[int, Delta | None, BaseException | None]] = asyncio.Queue()

        async def pump(i: int, it: AsyncIterator[Delta], first: Delta | None) -> None:
            try:
                if first is not None:
                    await queue.put((i, first, None))
                async for d in it:
                    await queue.put((i, d, None))
                await queue.put((i, None, None))
            except Exception as exc:
                await queue.put((i, None, exc))

        tasks = [
            asyncio.create_task(pump(i, it, f))
            for i, (it, f) in enumerate(zip(self._iters, self._primed, strict=True))
        ]
        try:
            live = len(tasks)
            while live:
                async with self._timeout():
                    i, item, exc = await queue.get()
                if exc is not None:
                    raise exc
                if item is None:
                    live -= 1
                    continue
                yield i, self._observe(i, item)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self, *, error: BaseException | None = None) -> None:
        """Release the slot, record metrics and the request log (idempotent)."""
        if self._closed:
            return
        self._closed = True
        await self._stack.aclose()
        m = self.pool.metrics
        now = time.perf_counter()
        status = 200
        err: str | None = None
        if error is not None:
            if isinstance(error, asyncio.CancelledError | GeneratorExit):
                status, err = 499, "client disconnected"
            else:
                se = as_serving_error(error)
                status, err = se.status, se.message
            m.errors.labels(*self.labels, str(status)).inc()
        else:
            m.e2e.labels(*self.labels).observe(now - self.started)
            m.success.labels(*self.labels, self.finish or "stop").inc()
        m.prompt_tokens.labels(*self.labels).inc(self.prompt_tokens)
        m.generation_tokens.labels(*self.labels).inc(self.completion_tokens)
        self.pool.hooks.record(
            RequestRecord(
                request_id=self.ctx.request_id,
                endpoint=self.ctx.endpoint,
                model=self.ctx.model,
                version=self.ctx.version,
                backend=self.replica.spec.backend,
                status=status,
                latency_s=now - self.started,
                ttft_s=None if self.first is None else self.first - self.started,
                prompt_tokens=self.prompt_tokens,
                completion_tokens=self.completion_tokens,
                finish_reason=self.finish,
                stream=self.stream,
                error=err,
                user=self.ctx.user,
            )
        )


async def _first(it: AsyncIterator[Delta]) -> Delta | None:
    try:
        return await anext(it)
    except StopAsyncIteration:
        return None


async def _aclose(it: Any) -> None:
    with contextlib.suppress(Exception):
        await it.aclose()


def record_failure(pool: ModelPool, ctx: RequestContext, backend: str, exc: ServingError) -> None:
    """Count and log a request refused before generation (404, 400, 429)."""
    pool.metrics.errors.labels(ctx.model, ctx.version, str(exc.status)).inc()
    pool.hooks.record(
        RequestRecord(
            request_id=ctx.request_id,
            endpoint=ctx.endpoint,
            model=ctx.model,
            version=ctx.version,
            backend=backend,
            status=exc.status,
            latency_s=0.0,
            error=exc.message,
            user=ctx.user,
        )
    )
