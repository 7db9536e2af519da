"""GGUF models with llama-cpp-python: the fast CPU path (the bundled SmolLM2 runs here).

One generation at a time per model (llama.cpp contexts are single-sequence); its calls run on
a dedicated thread and stream tokens back to the event loop. Closing the stream stops the
generation at the next token. Prompt logprobs (``echo`` + ``logprobs``) and generated-token
logprobs need all logits, so a second context with ``logits_all`` is opened on first use
(memory: n_ctx x vocabulary floats, ~400 MB for SmolLM2 at n_ctx 2048).

Options: ``n_ctx`` (2048), ``threads`` (default: all cores), ``n_batch`` (512),
``chat_template`` (the model version's; default: the GGUF's ``tokenizer.chat_template``),
``n_gpu_layers`` (0).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
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
from herald.serving.templates import render_chat, same_template

log = logging.getLogger("herald.serving.llamacpp")


class LlamaCppBackend(Backend):
    name = "llamacpp"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({"chat", "completions"})
    max_concurrency = 1

    def __init__(self, model: str, **options: Any) -> None:
        super().__init__(model, **options)
        self.path = Path(model)
        self.n_ctx = int(options.get("n_ctx", options.get("context_length", 2048)))
        self.context_length = self.n_ctx
        self.threads = int(options.get("threads") or os.cpu_count() or 1)
        self.version_template: str | None = options.get("chat_template")
        self.template: str | None = None
        self.template_status = "tokenizer"
        self.llm: Any = None
        self._llm_all: Any = None  # logits_all context for logprobs
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"llamacpp-{self.path.stem}")

    def _open(self, logits_all: bool) -> Any:
        from llama_cpp import Llama

        return Llama(
            model_path=str(self.path),
            n_ctx=self.n_ctx,
            n_threads=self.threads,
            n_threads_batch=self.threads,
            n_batch=int(self.options.get("n_batch", 512)),
            n_gpu_layers=int(self.options.get("n_gpu_layers", 0)),
            logits_all=logits_all,
            verbose=False,
        )

    async def load(self) -> None:
        if not self.path.is_file():
            raise ModelUnavailable(f"GGUF file not found: {self.path}")
        loop = asyncio.get_running_loop()
        self.llm = await loop.run_in_executor(self._pool, self._open, False)
        meta = dict(self.llm.metadata or {})
        own = meta.get("tokenizer.chat_template")
        self.template = self.version_template or own
        if self.version_template:
            self.template_status = "version"
            if own and not same_template(own, self.version_template):
                self.template_status = "mismatch"
                log.warning(
                    "%s: the model version's chat template differs from the GGUF's; "
                    "using the version's",
                    self.path.name,
                )
        self.bos = self._special(self.llm.token_bos())
        self.eos = self._special(self.llm.token_eos())
        self.add_bos = meta.get("tokenizer.ggml.add_bos_token", "false") == "true"

    def _special(self, token: int) -> str:
        if token < 0:
            return ""
        try:
            return bytes(self.llm.detokenize([token], special=True)).decode("utf-8", "replace")
        except TypeError:  # older llama-cpp-python without special=
            return bytes(self.llm.detokenize([token])).decode("utf-8", "replace")

    async def close(self) -> None:
        self.llm = None
        self._llm_all = None
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def health(self) -> bool:
        return self.llm is not None

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "gguf": str(self.path), "threads": self.threads}

    # prompts ------------------------------------------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=self.add_bos, special=True))

    def detokenize(self, ids: list[int]) -> str:
        return bytes(self.llm.detokenize(ids)).decode("utf-8", "replace")

    def chat_prompt(self, messages: list[dict[str, Any]]) -> ChatPrompt:
        if not self.template:
            raise BadParameter(
                f"{self.path.name} has no chat template; use /v1/completions", param="messages"
            )
        text = render_chat(self.template, messages, bos_token=self.bos, eos_token=self.eos)
        add_bos = self.add_bos and not (self.bos and text.startswith(self.bos))
        ids = list(self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True))
        return ChatPrompt(ids, self.template_status)

    def _ids(self, prompt: Prompt) -> list[int]:
        if isinstance(prompt, str):
            return self.tokenize(prompt)
        vocab = int(self.llm.n_vocab())
        bad = [i for i in prompt if not 0 <= i < vocab]
        if bad:
            raise BadParameter(f"token id {bad[0]} is outside the vocabulary (0..{vocab - 1})")
        return list(prompt)

    # generation ---------------------------------------------------------------------------
    async def generate(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        if self.llm is None:
            raise ModelUnavailable(f"{self.path.name} is not loaded")
        p = request.params
        ids = await asyncio.to_thread(self._ids, request.prompt)  # tokenize off the event loop
        if not ids:
            raise BadParameter("the prompt is empty", param="prompt")
        limit = self.check_context(len(ids), p.max_tokens)
        if limit == 0:
            yield Delta(finish_reason="length", usage=Usage(len(ids), 0))
            return
        loop = asyncio.get_running_loop()
        out: asyncio.Queue[Delta | BaseException | None] = asyncio.Queue()
        cancel = threading.Event()

        def put(item: Delta | BaseException | None) -> None:
            loop.call_soon_threadsafe(out.put_nowait, item)

        def run() -> None:
            from llama_cpp import StoppingCriteriaList

            llm = self.llm if p.logprobs is None else self._all_logits()
            generated = [0]

            def counter(_ids: Any, _logits: Any) -> bool:
                generated[0] += 1
                return cancel.is_set()

            stream = llm.create_completion(
                ids,
                max_tokens=limit,
                temperature=p.temperature,
                top_p=p.top_p,
                top_k=0,
                min_p=0.0,
                repeat_penalty=1.0,
                presence_penalty=p.presence_penalty,
                frequency_penalty=p.frequency_penalty,
                stop=list(p.stop) or None,
                seed=p.seed,
                logprobs=p.logprobs,
                stream=True,
                stopping_criteria=StoppingCriteriaList([counter]),
            )
            finish = "stop"
            try:
                for chunk in stream:
                    if cancel.is_set():
                        break
                    c = chunk["choices"][0]
                    lps = _logprobs(c.get("logprobs"))
                    if c.get("text") or lps:
                        put(Delta(c.get("text") or "", lps))
                    if c.get("finish_reason"):
                        finish = "length" if c["finish_reason"] == "length" else "stop"
            finally:
                stream.close()
            put(Delta(finish_reason=finish, usage=Usage(len(ids), min(generated[0], limit))))

        def guarded() -> None:
            try:
                run()
            except BaseException as exc:
                put(exc)
            finally:
                put(None)

        fut = loop.run_in_executor(self._pool, guarded)
        try:
            while True:
                item = await out.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancel.set()  # the thread stops at the next token; the executor serialises runs
            del fut

    def _all_logits(self) -> Any:
        if self._llm_all is None:
            self._llm_all = self._open(True)
        return self._llm_all

    async def prompt_logprobs(self, prompt: Prompt, top: int) -> list[TokenLogprob]:
        ids = await asyncio.to_thread(self._ids, prompt)
        self.check_context(len(ids), 0)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._prompt_logprobs, ids, top)

    def _prompt_logprobs(self, ids: list[int], top: int) -> list[TokenLogprob]:
        import numpy as np

        llm = self._all_logits()
        llm.reset()
        llm.eval(ids)
        scores = np.asarray(llm.scores[: len(ids)], dtype=np.float64)
        shifted = scores - scores.max(axis=-1, keepdims=True)
        lps = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))

        def piece(t: int) -> str:
            return bytes(llm.detokenize([t])).decode("utf-8", "replace")

        out = [TokenLogprob(piece(ids[0]), None)]
        for i in range(1, len(ids)):
            row = lps[i - 1]
            tok = piece(ids[i])
            lp = float(row[ids[i]])
            alts: dict[str, float] = {}
            if top > 0:
                for t in np.argsort(-row)[:top]:
                    alts.setdefault(piece(int(t)), float(row[int(t)]))
            alts.setdefault(tok, lp)
            out.append(TokenLogprob(tok, lp, alts))
        return out


def _logprobs(raw: dict[str, Any] | None) -> list[TokenLogprob]:
    if not raw:
        return []
    tops = raw.get("top_logprobs") or []
    return [
        TokenLogprob(t, lp, dict(tops[i]) if i < len(tops) and tops[i] else {})
        for i, (t, lp) in enumerate(
            zip(raw.get("tokens") or [], raw.get("token_logprobs") or [], strict=False)
        )
    ]
