"""Text completions, including ``echo`` with prompt logprobs (lm-evaluation-harness)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from herald.serving.backends.base import GenerationRequest, Prompt, TokenLogprob
from herald.serving.common import SSE_DONE, UsageInfo, new_id, now, sse
from herald.serving.completions.protocol import (
    CompletionChoice,
    CompletionLogprobs,
    CompletionRequest,
    CompletionResponse,
)
from herald.serving.errors import CapabilityNotSupported, ServingError
from herald.serving.generation import Generation, as_serving_error, record_failure
from herald.serving.hooks import RequestContext
from herald.serving.limits import check_prompt_chars
from herald.serving.pool import ModelPool, Replica


def completion_logprobs(items: list[TokenLogprob], start: int = 0) -> CompletionLogprobs:
    out = CompletionLogprobs()
    offset = start
    for t in items:
        out.tokens.append(t.token)
        out.token_logprobs.append(t.logprob)
        out.top_logprobs.append(t.top if t.logprob is not None else None)
        out.text_offset.append(offset)
        offset += len(t.token)
    return out


class CompletionService:
    def __init__(self, pool: ModelPool) -> None:
        self.pool = pool

    async def create(
        self, req: CompletionRequest
    ) -> tuple[CompletionResponse | AsyncIterator[bytes], dict[str, str]]:
        request_id = new_id("cmpl")
        ctx = RequestContext(request_id, "completions", req.model, req.user)
        backend_name = ""
        try:
            req.unsupported()
            prompts = req.prompts()
            check_prompt_chars(  # before anything tokenizes it
                req.prompt_sizes(), self.pool.max_prompt_chars, self.pool.metrics.registry
            )
            replica = await self.pool.route(req.model, user=req.user)
            backend_name = replica.spec.backend
            ctx.version = replica.spec.version
            if "completions" not in replica.backend.capabilities:
                raise CapabilityNotSupported(
                    f"model {req.model!r} does not support text completions", param="model"
                )
            await self.pool.hooks.run_before(ctx, {"request": req})
            echoes = [await self._echo(replica, req, p) for p in prompts] if req.echo else []
            gen = Generation(self.pool, replica, ctx, stream=req.stream)
            await gen.start(
                [
                    GenerationRequest(p, req.to_sampling_params(j), request_id)
                    for p in prompts
                    for j in range(req.n)
                ]
            )
        except ServingError as exc:
            record_failure(self.pool, ctx, backend_name, exc)
            raise
        ctx.headers["x-request-id"] = request_id
        if req.stream:
            return self._stream(req, gen, request_id, echoes), ctx.headers
        return await self._collect(req, gen, request_id, echoes, ctx), ctx.headers

    async def _echo(
        self, replica: Replica, req: CompletionRequest, prompt: Prompt
    ) -> tuple[str, list[TokenLogprob]]:
        backend = replica.backend
        text = (
            prompt
            if isinstance(prompt, str)
            else await asyncio.to_thread(backend.detokenize, prompt)
        )
        if req.logprobs is None:
            return text, []
        return text, await backend.prompt_logprobs(prompt, req.logprobs)

    async def _collect(
        self,
        req: CompletionRequest,
        gen: Generation,
        request_id: str,
        echoes: list[tuple[str, list[TokenLogprob]]],
        ctx: RequestContext,
    ) -> CompletionResponse:
        total = gen.count
        texts = [""] * total
        lps: list[list[TokenLogprob]] = [[] for _ in range(total)]
        finish: list[str | None] = [None] * total
        try:
            async for i, d in gen.deltas():
                texts[i] += d.text
                lps[i] += d.logprobs
                finish[i] = d.finish_reason or finish[i]
        except Exception as exc:
            await gen.close(error=exc)
            raise as_serving_error(exc) from exc
        except BaseException as exc:
            await gen.close(error=exc)
            raise
        await gen.close()
        choices = []
        for i in range(total):
            head, head_lps = echoes[i // req.n] if echoes else ("", [])
            logprobs = None
            if req.logprobs is not None:
                logprobs = completion_logprobs(head_lps + lps[i])
            choices.append(
                CompletionChoice(
                    index=i,
                    text=head + texts[i],
                    logprobs=logprobs,
                    finish_reason=finish[i] or "stop",
                )
            )
        prompt_tokens = max(gen.prompt_tokens, max((len(e[1]) for e in echoes), default=0))
        resp = CompletionResponse(
            id=request_id,
            created=now(),
            model=req.model,
            choices=choices,
            usage=UsageInfo(
                prompt_tokens=prompt_tokens,
                completion_tokens=gen.completion_tokens,
                total_tokens=prompt_tokens + gen.completion_tokens,
            ),
        )
        if self.pool.hooks.after_response:
            body: dict[str, Any] = {"response": resp}
            await self.pool.hooks.run_after(ctx, body)
            resp = body["response"]
        return resp

    async def _stream(
        self,
        req: CompletionRequest,
        gen: Generation,
        request_id: str,
        echoes: list[tuple[str, list[TokenLogprob]]],
    ) -> AsyncIterator[bytes]:
        created = now()
        usage = bool(req.stream_options and req.stream_options.include_usage)
        exclude = None if usage else {"usage"}
        offsets = [0] * gen.count

        def chunk(i: int, text: str, lps: list[TokenLogprob], finish: str | None) -> bytes:
            logprobs = None
            if req.logprobs is not None:
                logprobs = completion_logprobs(lps, offsets[i])
                offsets[i] += sum(len(t.token) for t in lps)
            c = CompletionResponse(
                id=request_id,
                created=created,
                model=req.model,
                choices=[
                    CompletionChoice(index=i, text=text, logprobs=logprobs, finish_reason=finish)
                ],
            )
            return b"data: " + c.model_dump_json(exclude=exclude).encode() + b"\n\n"

        head = json.dumps(
            {"id": request_id, "object": "text_completion", "created": created, "model": req.model},
            separators=(",", ":"),
        )[:-1]
        tail = ',"system_fingerprint":null' + (',"usage":null' if usage else "") + "}\n\n"

        def text_chunk(i: int, text: str) -> bytes:  # the hot path, same JSON as `chunk`
            return (
                f'data: {head},"choices":[{{"index":{i},"text":'
                f'{json.dumps(text, ensure_ascii=False)},"logprobs":null,'
                f'"finish_reason":null}}]{tail}'
            ).encode()

        error: BaseException | None = None
        try:
            for i in range(gen.count):
                if echoes:
                    head, head_lps = echoes[i // req.n]
                    yield chunk(i, head, head_lps, None)
            async for i, d in gen.deltas():
                if d.text and req.logprobs is None and not d.finish_reason:
                    yield text_chunk(i, d.text)
                elif d.text or d.logprobs or d.finish_reason:
                    yield chunk(i, d.text, d.logprobs, d.finish_reason)
            if usage:
                yield sse(
                    CompletionResponse(
                        id=request_id,
                        created=created,
                        model=req.model,
                        choices=[],
                        usage=UsageInfo(
                            prompt_tokens=gen.prompt_tokens,
                            completion_tokens=gen.completion_tokens,
                            total_tokens=gen.prompt_tokens + gen.completion_tokens,
                        ),
                    )
                )
        except Exception as exc:
            error = exc
            yield sse(as_serving_error(exc).body())
        except BaseException as exc:
            error = exc
            raise
        finally:
            await gen.close(error=error)
        yield SSE_DONE
