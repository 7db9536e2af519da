"""vLLM on a GPU (optional extra ``herald[vllm]``): continuous batching, paged attention.

Uses vLLM's in-process async engine (``AsyncLLMEngine.from_engine_args``; vLLM ≥ 0.6, V0 and
V1 engines). vLLM is imported when a model of this backend loads, never at Herald import time.
It cannot run on a CPU-only machine; Herald's CI exercises the port through the other
backends, and this adapter is checked on a GPU machine (see docs/guides/serving.md).

Options: ``chat_template`` (the model version's), ``adapter`` (LoRA folder, served with
``enable_lora``), and any ``AsyncEngineArgs`` field under ``engine`` (e.g.
``{"gpu_memory_utilization": 0.85, "max_model_len": 4096, "dtype": "bfloat16"}``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from herald.serving.backends.base import (
    Backend,
    Capability,
    ChatPrompt,
    Delta,
    GenerationRequest,
    Prompt,
    TokenLogprob,
    Usage,
)
from herald.serving.errors import BadParameter, ModelUnavailable

log = logging.getLogger("herald.serving.vllm")
SAFE_LOAD_FORMATS = ("safetensors", "gguf")


class VLLMBackend(Backend):
    name = "vllm"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({"chat", "completions"})
    max_concurrency = 256  # vLLM schedules internally (continuous batching)

    def __init__(self, model: str, **options: Any) -> None:
        super().__init__(model, **options)
        self.engine: Any = None
        self.tok: Any = None
        self.lora: Any = None
        self.template: str | None = options.get("chat_template")
        self.template_status = "version" if self.template else "tokenizer"

    async def load(self) -> None:
        try:
            from vllm import AsyncEngineArgs, AsyncLLMEngine
        except ImportError as exc:
            raise ModelUnavailable(
                'the vllm backend needs vLLM and a GPU: pip install "herald[vllm]"'
            ) from exc
        engine_opts = dict(self.options.get("engine") or {})
        # model code and pickle weights: the operator's settings (security.*) decide, not options
        engine_opts["trust_remote_code"] = bool(self.options.get("trust_remote_code"))
        if not self.options.get("allow_unsafe_weights"):
            fmt = engine_opts.setdefault("load_format", "safetensors")
            if fmt not in SAFE_LOAD_FORMATS:
                raise ModelUnavailable(
                    f"vLLM load_format {fmt!r} may unpickle weights; use one of "
                    f"{', '.join(SAFE_LOAD_FORMATS)} or set security.allow_unsafe_weights"
                )
        if self.options.get("adapter"):
            from vllm.lora.request import LoRARequest

            engine_opts["enable_lora"] = True
            self.lora = LoRARequest("adapter", 1, str(self.options["adapter"]))
        args = AsyncEngineArgs(model=self.model, **engine_opts)
        self.engine = AsyncLLMEngine.from_engine_args(args)
        tok = self.engine.get_tokenizer()
        self.tok = await tok if inspect.isawaitable(tok) else tok
        cfg = self.engine.get_model_config()
        cfg = await cfg if inspect.isawaitable(cfg) else cfg
        self.context_length = int(getattr(cfg, "max_model_len", self.context_length))
        own = getattr(self.tok, "chat_template", None)
        if self.template and own and " ".join(own.split()) != " ".join(self.template.split()):
            self.template_status = "mismatch"
            log.warning("%s: version chat template differs from the tokenizer's", self.model)
        self.template = self.template or own

    async def health(self) -> bool:
        if self.engine is None:
            return False
        try:
            await self.engine.check_health()
        except Exception:
            return False
        return True

    async def close(self) -> None:
        if self.engine is not None:
            shutdown = getattr(self.engine, "shutdown", None)
            if shutdown is not None:
                shutdown()
            self.engine = None

    def tokenize(self, text: str) -> list[int]:
        return list(self.tok.encode(text))

    def detokenize(self, ids: list[int]) -> str:
        return str(self.tok.decode(ids))

    def chat_prompt(self, messages: list[dict[str, Any]]) -> ChatPrompt:
        if not self.template:
            raise BadParameter(f"model {self.model!r} has no chat template", param="messages")
        text = self.tok.apply_chat_template(
            messages, chat_template=self.template, tokenize=False, add_generation_prompt=True
        )
        return ChatPrompt(
            list(self.tok.encode(text, add_special_tokens=False)), self.template_status
        )

    @staticmethod
    def _prompt(prompt: Prompt) -> Any:
        return prompt if isinstance(prompt, str) else {"prompt_token_ids": list(prompt)}

    def _sampling(self, request: GenerationRequest, **extra: Any) -> Any:
        from vllm import SamplingParams

        p = request.params
        return SamplingParams(
            n=1,
            temperature=p.temperature,
            top_p=p.top_p,
            max_tokens=p.max_tokens,
            stop=list(p.stop) or None,
            seed=p.seed,
            logprobs=p.logprobs,
            presence_penalty=p.presence_penalty,
            frequency_penalty=p.frequency_penalty,
            **extra,
        )

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        if request.params.max_tokens == 0:
            n = len(await asyncio.to_thread(self._ids, request.prompt))
            yield Delta(finish_reason="length", usage=Usage(n, 0))
            return
        rid = f"{request.request_id or 'herald'}-{uuid.uuid4().hex[:8]}"
        sent_text = 0
        sent_tokens = 0
        finished = False
        try:
            async for out in self.engine.generate(
                self._prompt(request.prompt), self._sampling(request), rid, lora_request=self.lora
            ):
                c = out.outputs[0]
                text = c.text[sent_text:]
                sent_text = len(c.text)
                lps = self._logprobs(c.token_ids[sent_tokens:], (c.logprobs or [])[sent_tokens:])
                sent_tokens = len(c.token_ids)
                if text or lps:
                    yield Delta(text, lps)
                if out.finished:
                    finished = True
                    reason = "length" if c.finish_reason == "length" else "stop"
                    usage = Usage(len(out.prompt_token_ids or []), len(c.token_ids))
                    yield Delta(finish_reason=reason, usage=usage)
                    return
        finally:
            if not finished:
                await self.engine.abort(rid)

    def _ids(self, prompt: Prompt) -> list[int]:
        return self.tokenize(prompt) if isinstance(prompt, str) else list(prompt)

    def _logprobs(self, ids: list[int], entries: list[Any]) -> list[TokenLogprob]:
        out = []
        for tid, entry in zip(ids, entries, strict=False):
            top = {
                (lp.decoded_token or self.tok.decode([t])): float(lp.logprob)
                for t, lp in entry.items()
            }
            chosen = entry.get(tid)
            token = (chosen.decoded_token if chosen else None) or self.tok.decode([tid])
            out.append(TokenLogprob(token, float(chosen.logprob) if chosen else None, top))
        return out

    async def prompt_logprobs(self, prompt: Prompt, top: int) -> list[TokenLogprob]:
        req = GenerationRequest(prompt, self.params_for_echo())
        rid = f"echo-{uuid.uuid4().hex}"
        final = None
        async for out in self.engine.generate(
            self._prompt(prompt), self._sampling(req, prompt_logprobs=max(top, 1)), rid
        ):
            final = out
        if final is None:
            raise ModelUnavailable("vLLM returned no output")
        ids = list(final.prompt_token_ids)
        first = TokenLogprob(self.tok.decode([ids[0]]), None)
        return [first, *self._logprobs(ids[1:], list(final.prompt_logprobs or [])[1:])]

    @staticmethod
    def params_for_echo() -> Any:
        from herald.serving.backends.base import SamplingParams

        return SamplingParams(max_tokens=1, temperature=0.0)
