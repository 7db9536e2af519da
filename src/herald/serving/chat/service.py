"""Chat completions: render the chat with the model's template, generate, shape the wire."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from herald.serving.backends.base import Delta, GenerationRequest, TokenLogprob
from herald.serving.chat.protocol import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatTokenLogprob,
    ChoiceLogprobs,
    DeltaMessage,
    TopLogprob,
)
from herald.serving.common import SSE_DONE, UsageInfo, new_id, now, sse
from herald.serving.errors import CapabilityNotSupported, ServingError
from herald.serving.generation import Generation, as_serving_error, record_failure
from herald.serving.hooks import RequestContext
from herald.serving.limits import check_prompt_chars
from herald.serving.pool import ModelPool


def chat_logprobs(items: list[TokenLogprob]) -> ChoiceLogprobs:
    return ChoiceLogprobs(
        content=[
            ChatTokenLogprob(
                token=t.token,
                logprob=t.logprob if t.logprob is not None else 0.0,
                bytes=list(t.token.encode()),
                top_logprobs=[
                    TopLogprob(token=k, logprob=v, bytes=list(k.encode())) for k, v in t.top.items()
                ],
            )
            for t in items
        ]
    )


class ChatService:
    def __init__(self, pool: ModelPool) -> None:
        self.pool = pool

    async def create(
        self, req: ChatCompletionRequest
    ) -> tuple[ChatCompletionResponse | AsyncIterator[bytes], dict[str, str]]:
        """Return the response (or an SSE byte stream) and the extra response headers."""
        request_id = new_id("chatcmpl")
        ctx = RequestContext(request_id, "chat", req.model, req.user)
        backend_name = ""
        try:
            req.unsupported()
            check_prompt_chars(  # before anything renders or tokenizes it
                req.prompt_sizes(), self.pool.max_prompt_chars, self.pool.metrics.registry
            )
            replica = await self.pool.route(req.model, user=req.user)
            backend_name = replica.spec.backend
            ctx.version = replica.spec.version
            if "chat" not in replica.backend.capabilities:
                raise CapabilityNotSupported(
                    f"model {req.model!r} does not support chat completions", param="model"
                )
            await self.pool.hooks.run_before(ctx, {"request": req})
            # template rendering and tokenization are CPU work: off the event loop
            rendered = await asyncio.to_thread(replica.backend.chat_prompt, req.to_messages())
            ctx.headers["x-herald-chat-template"] = rendered.template_status
            gen = Generation(self.pool, replica, ctx, stream=req.stream)
            requests = [
                GenerationRequest(
                    rendered.prompt, req.to_sampling_params(i), request_id, rendered.messages
                )
                for i in range(req.n)
            ]
            await gen.start(requests)
        except ServingError as exc:
            record_failure(self.pool, ctx, backend_name, exc)
            exc.headers.update(ctx.headers)
            raise
        ctx.headers["x-request-id"] = request_id
        if req.stream:
            return self._stream(req, gen, request_id), ctx.headers
        return await self._collect(req, gen, request_id, ctx), ctx.headers

    async def _collect(
        self, req: ChatCompletionRequest, gen: Generation, request_id: str, ctx: RequestContext
    ) -> ChatCompletionResponse:
        texts = [""] * req.n
        lps: list[list[TokenLogprob]] = [[] for _ in range(req.n)]
        finish: list[str | None] = [None] * req.n
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
        resp = ChatCompletionResponse(
            id=request_id,
            created=now(),
            model=req.model,
            choices=[
                ChatChoice(
                    index=i,
                    message=AssistantMessage(content=texts[i]),
                    logprobs=chat_logprobs(lps[i]) if req.logprobs else None,
                    finish_reason=finish[i] or "stop",
                )
                for i in range(req.n)
            ],
            usage=UsageInfo(
                prompt_tokens=gen.prompt_tokens,
                completion_tokens=gen.completion_tokens,
                total_tokens=gen.prompt_tokens + gen.completion_tokens,
            ),
        )
        if self.pool.hooks.after_response:
            body: dict[str, Any] = {"response": resp}
            await self.pool.hooks.run_after(ctx, body)
            resp = body["response"]
        return resp

    async def _stream(
        self, req: ChatCompletionRequest, gen: Generation, request_id: str
    ) -> AsyncIterator[bytes]:
        created = now()
        usage = bool(req.stream_options and req.stream_options.include_usage)
        exclude = None if usage else {"usage"}

        def chunk(i: int, delta: DeltaMessage, d: Delta | None = None) -> bytes:
            c = ChatCompletionChunk(
                id=request_id,
                created=created,
                model=req.model,
                choices=[
                    ChatChunkChoice(
                        index=i,
                        delta=delta,
                        logprobs=chat_logprobs(d.logprobs) if d and req.logprobs else None,
                        finish_reason=d.finish_reason if d else None,
                    )
                ],
            )
            if d is not None and d.finish_reason and gen.ctx.extra.get("citations"):
                # RAG chains: structured citations ride on the finishing chunk of a stream
                body = c.model_dump(mode="json", exclude=exclude, exclude_none=False)
                body["citations"] = gen.ctx.extra["citations"]
                return b"data: " + json.dumps(body, ensure_ascii=False).encode() + b"\n\n"
            return (
                b"data: "
                + c.model_dump_json(exclude=exclude, exclude_none=False).encode()
                + b"\n\n"
            )

        # the hot path (a text piece without logprobs) is rendered from a template: the same
        # JSON as the pydantic models produce, without building models per token
        head = json.dumps(
            {
                "id": request_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": req.model,
            },
            separators=(",", ":"),
        )[:-1]
        tail = ',"system_fingerprint":null' + (',"usage":null' if usage else "") + "}\n\n"

        def text_chunk(i: int, text: str) -> bytes:
            return (
                f'data: {head},"choices":[{{"index":{i},"delta":{{"content":'
                f'{json.dumps(text, ensure_ascii=False)}}},"logprobs":null,'
                f'"finish_reason":null}}]{tail}'
            ).encode()

        error: BaseException | None = None
        try:
            for i in range(req.n):
                yield chunk(i, DeltaMessage(role="assistant", content=""))
            async for i, d in gen.deltas():
                if d.text and not d.logprobs and not d.finish_reason:
                    yield text_chunk(i, d.text)
                elif d.text or d.logprobs or d.finish_reason:
                    content = d.text if (d.text or not d.finish_reason) else None
                    yield chunk(i, DeltaMessage(content=content), d)
            if usage:
                yield sse(
                    ChatCompletionChunk(
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
        except BaseException as exc:  # client went away: cancel the generation
            error = exc
            raise
        finally:
            await gen.close(error=error)
        yield SSE_DONE
