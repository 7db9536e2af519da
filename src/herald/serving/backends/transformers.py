"""Any Hugging Face causal LM (plus a PEFT adapter) with dynamic batching, on CPU or GPU.

Concurrent requests are grouped by a background batcher: it takes the first waiting request,
waits up to ``batch_window_ms`` for more (up to ``max_batch_size``) and decodes them together
in one left-padded batch with a shared KV cache. Each row keeps its own sampling settings
(temperature, top_p, seed via its own ``torch.Generator``), stop strings, token limit and
cancellation; rows that finish early stop emitting while the rest of the batch continues.

Options: ``adapter`` (PEFT adapter folder, safetensors), ``chat_template`` (the model version's
template; compared with the tokenizer's, a mismatch is logged and reported in the
``x-herald-chat-template`` header), ``dtype`` (default float32 on CPU), ``device``,
``threads``, ``batch_window_ms`` (5), ``max_batch_size`` (16), ``context_length``,
``trust_remote_code`` (False). Weights load with ``use_safetensors=True`` only.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from herald.models.lock import MODEL_BUILD_LOCK
from herald.serving.backends.base import (
    Backend,
    Capability,
    ChatPrompt,
    Delta,
    GenerationRequest,
    Prompt,
    SamplingParams,
    StopBuffer,
    TokenLogprob,
    Usage,
    top_logprobs,
)
from herald.serving.errors import BadParameter, ModelUnavailable


def refuse_pickle_only(model: str) -> None:
    """Refuse a local model folder whose weights are only pickle files (``.bin``/``.pt``:
    unpickling runs code) unless the operator set ``security.allow_unsafe_weights``."""
    folder = Path(model)
    if not folder.is_dir() or any(folder.glob("*.safetensors")):
        return
    pickled = [p.suffix for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".pkl")]
    if pickled:
        raise ModelUnavailable(
            f"model folder {folder} has only pickle weights ({pickled[0]}); Herald loads "
            "safetensors only: convert them (save_pretrained(safe_serialization=True)) or, "
            "where you trust the files, set security.allow_unsafe_weights "
            "(HERALD_SECURITY__ALLOW_UNSAFE_WEIGHTS=true)"
        )


log = logging.getLogger("herald.serving.transformers")


@dataclass
class _Row:
    ids: list[int]
    params: SamplingParams
    limit: int
    loop: asyncio.AbstractEventLoop
    out: asyncio.Queue[Delta | BaseException]
    cancelled: threading.Event = field(default_factory=threading.Event)

    def send(self, item: Delta | BaseException) -> None:
        self.loop.call_soon_threadsafe(self.out.put_nowait, item)


def _norm(template: str | None) -> str:
    return " ".join((template or "").split())


class TransformersBackend(Backend):
    name = "transformers"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({"chat", "completions"})

    def __init__(self, model: str, **options: Any) -> None:
        super().__init__(model, **options)
        self.batch_window_s = float(options.get("batch_window_ms", 5.0)) / 1000.0
        self.max_batch_size = int(options.get("max_batch_size", 16))
        self.max_concurrency = int(options.get("max_concurrency") or self.max_batch_size * 2)
        self.adapter: str | None = options.get("adapter")
        self.version_template: str | None = options.get("chat_template")
        self.template: str | None = None
        self.template_status = "tokenizer"
        self._queue: asyncio.Queue[_Row] | None = None
        self._batcher: asyncio.Task[None] | None = None
        self._compute = threading.Lock()
        self.batches: list[int] = []  # sizes of the batches run (tests, bench)
        self.tok: Any = None
        self.lm: Any = None
        self.eos: set[int] = set()

    # loading ------------------------------------------------------------------------------
    async def load(self) -> None:
        await asyncio.to_thread(self._load)
        self._queue = asyncio.Queue()
        self._batcher = asyncio.create_task(self._batch_loop(), name=f"batcher:{self.model}")

    @functools.cached_property
    def cache_kw(self) -> str:
        """The forward() keyword of the KV cache, read off the loaded model (every subclass
        that sets ``self.lm`` gets it; the in-training backend once did not)."""
        return _cache_keyword(self.lm)

    def _load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

        if self.options.get("threads"):
            torch.set_num_threads(int(self.options["threads"]))
        trust = bool(self.options.get("trust_remote_code", False))  # the operator's setting
        unsafe = bool(self.options.get("allow_unsafe_weights", False))  # ditto
        if not unsafe:
            refuse_pickle_only(self.model)
        device = self.options.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = self.options.get("dtype") or ("float32" if device == "cpu" else "auto")
        with MODEL_BUILD_LOCK:  # transformers patches torch globally while building
            self.tok = AutoTokenizer.from_pretrained(self.model, trust_remote_code=trust)
            lm: Any = AutoModelForCausalLM.from_pretrained(
                self.model,
                dtype=getattr(torch, dtype) if dtype != "auto" else "auto",
                use_safetensors=None if unsafe else True,
                trust_remote_code=trust,
            )
            if self.adapter:
                from peft import PeftModel

                folder = Path(self.adapter)
                if not (folder / "adapter_model.safetensors").is_file():
                    raise ModelUnavailable(
                        f"adapter folder {folder} has no adapter_model.safetensors "
                        "(only safetensors adapters are loaded)"
                    )
                with (
                    warnings.catch_warnings()
                ):  # peft 0.21 probes a property transformers 5 deprecated
                    warnings.filterwarnings(
                        "ignore", ".*is_gradient_checkpointing.*", FutureWarning
                    )
                    lm = PeftModel.from_pretrained(lm, str(folder))
        self.lm = lm.to(device).eval()
        self.device = device
        cfg = self.lm.config
        self.context_length = int(
            self.options.get("context_length")
            or getattr(cfg, "max_position_embeddings", None)
            or 2048
        )
        eos = self.lm.generation_config.eos_token_id if self.lm.generation_config else None
        ids = eos if isinstance(eos, list) else [eos]
        self.eos = {int(i) for i in [*ids, self.tok.eos_token_id] if i is not None}
        self.pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else min(self.eos)
        tokenizer_template = getattr(self.tok, "chat_template", None)
        if self.version_template:
            self.template = self.version_template
            self.template_status = "version"
            if tokenizer_template and _norm(tokenizer_template) != _norm(self.version_template):
                self.template_status = "mismatch"
                log.warning(
                    "%s: the model version's chat template differs from the tokenizer's; "
                    "using the version's (the one used in training)",
                    self.model,
                )
        else:
            self.template = tokenizer_template

    async def close(self) -> None:
        if self._batcher is not None:
            self._batcher.cancel()
            await asyncio.gather(self._batcher, return_exceptions=True)
            self._batcher = None
        self.lm = None

    async def health(self) -> bool:
        return self.lm is not None and self._batcher is not None and not self._batcher.done()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "adapter": self.adapter, "batch": self.max_batch_size}

    # prompts ------------------------------------------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        return list(self.tok(text, add_special_tokens=True)["input_ids"])

    def detokenize(self, ids: list[int]) -> str:
        return str(self.tok.decode(ids))

    def chat_prompt(self, messages: list[dict[str, Any]]) -> ChatPrompt:
        if not self.template:
            raise BadParameter(
                f"model {self.model!r} has no chat template; use /v1/completions or register "
                "the version with a chat_template",
                param="messages",
            )
        text = self.tok.apply_chat_template(
            messages, chat_template=self.template, tokenize=False, add_generation_prompt=True
        )
        ids = list(self.tok(text, add_special_tokens=False)["input_ids"])
        return ChatPrompt(ids, self.template_status)

    def _ids(self, prompt: Prompt) -> list[int]:
        if isinstance(prompt, str):
            return self.tokenize(prompt)
        vocab = len(self.tok)
        bad = [i for i in prompt if not 0 <= i < vocab]
        if bad:
            raise BadParameter(f"token id {bad[0]} is outside the vocabulary (0..{vocab - 1})")
        return list(prompt)

    # generation ---------------------------------------------------------------------------
    async def generate(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        if self._queue is None:
            raise ModelUnavailable(f"model {self.model!r} is not loaded")
        ids = await asyncio.to_thread(self._ids, request.prompt)  # tokenize off the event loop
        if not ids:
            raise BadParameter("the prompt is empty", param="prompt")
        limit = self.check_context(len(ids), request.params.max_tokens)
        if limit == 0:
            yield Delta(finish_reason="length", usage=Usage(len(ids), 0))
            return
        loop = asyncio.get_running_loop()
        row = _Row(ids, request.params, limit, loop, asyncio.Queue())
        # the pool bounds what reaches here (Replica.admit: max_concurrency + max_queue)
        self._queue.put_nowait(row)
        try:
            while True:
                item = await row.out.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if item.finish_reason is not None:
                    return
        finally:
            row.cancelled.set()

    async def _batch_loop(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.batch_window_s
            while len(batch) < self.max_batch_size:
                if not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except TimeoutError:
                    break
            batch = [r for r in batch if not r.cancelled.is_set()]
            if not batch:
                continue
            self.batches.append(len(batch))
            try:
                await asyncio.to_thread(self._run_batch, batch)
            except Exception as exc:  # the whole batch failed: tell every row
                log.exception("batch of %d failed", len(batch))
                for r in batch:
                    r.send(exc)

    def _run_batch(self, rows: list[_Row]) -> None:
        import torch

        with self._compute, torch.inference_mode():
            n = len(rows)
            width = max(len(r.ids) for r in rows)
            ids = torch.full((n, width), self.pad, dtype=torch.long)
            mask = torch.zeros((n, width), dtype=torch.long)
            for i, r in enumerate(rows):
                ids[i, width - len(r.ids) :] = torch.tensor(r.ids)
                mask[i, width - len(r.ids) :] = 1
            ids, mask = ids.to(self.device), mask.to(self.device)
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            gens = []
            for r in rows:
                g = torch.Generator(device=self.device)
                if r.params.seed is not None:
                    g.manual_seed(r.params.seed)
                else:
                    g.seed()
                gens.append(g)
            out = self.lm(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True)
            past = _cache_of(out)
            logits = out.logits[:, -1, :]
            state = [_RowState(r, self.tok) for r in rows]
            last_pos = pos[:, -1]
            while True:
                next_ids = []
                for i, st in enumerate(state):
                    if st.done:
                        next_ids.append(self.pad)
                        continue
                    tok, lp = _pick(logits[i], st.row.params, gens[i])
                    next_ids.append(tok)
                    st.step(tok, lp, self.eos)
                if all(st.done for st in state):
                    return
                step = torch.tensor(next_ids, device=self.device).unsqueeze(-1)
                mask = torch.cat(
                    [mask, torch.ones((n, 1), dtype=mask.dtype, device=mask.device)], 1
                )
                last_pos = last_pos + 1
                out = self.lm(
                    input_ids=step,
                    attention_mask=mask,
                    position_ids=last_pos.unsqueeze(-1),
                    use_cache=True,
                    **{self.cache_kw: past},
                )
                past = _cache_of(out)
                logits = out.logits[:, -1, :]

    async def prompt_logprobs(self, prompt: Prompt, top: int) -> list[TokenLogprob]:
        ids = await asyncio.to_thread(self._ids, prompt)
        self.check_context(len(ids), 0)
        return await asyncio.to_thread(self._prompt_logprobs, ids, top)

    def _prompt_logprobs(self, ids: list[int], top: int) -> list[TokenLogprob]:
        import torch

        with self._compute, torch.inference_mode():
            x = torch.tensor([ids], device=self.device)
            logits = self.lm(input_ids=x).logits[0].float()
            lps = torch.log_softmax(logits, -1)
        out = [TokenLogprob(self.tok.decode([ids[0]]), None)]
        for i in range(1, len(ids)):
            row = lps[i - 1]
            tok = self.tok.decode([ids[i]])
            lp = float(row[ids[i]])
            alts = top_logprobs(row, top, lambda t: self.tok.decode([t]))
            alts.setdefault(tok, lp)
            out.append(TokenLogprob(tok, lp, alts))
        return out


class _RowState:
    """Per-row decoding state inside a batch: incremental detokenisation, stop strings."""

    def __init__(self, row: _Row, tok: Any) -> None:
        self.row = row
        self.tok = tok
        self.generated: list[int] = []
        self.text = ""
        self.stop = StopBuffer(row.params.stop)
        self.done = False

    def step(self, token: int, lps: Any, eos: set[int]) -> None:
        r = self.row
        if r.cancelled.is_set():
            self.done = True
            return

        def usage() -> Usage:
            return Usage(len(r.ids), len(self.generated))

        if token in eos:
            self.done = True
            r.send(Delta(self.stop.flush(), finish_reason="stop", usage=usage()))
            return
        self.generated.append(token)
        logprobs: list[TokenLogprob] = []
        if r.params.logprobs is not None:
            piece = self.tok.decode([token])
            alts = top_logprobs(lps, r.params.logprobs, lambda t: self.tok.decode([t]))
            alts.setdefault(piece, float(lps[token]))
            logprobs = [TokenLogprob(piece, float(lps[token]), alts)]
        full = self.tok.decode(self.generated, skip_special_tokens=True)
        new = ""
        if not full.endswith("\ufffd"):  # wait for the rest of a multi-byte character
            new, self.text = full[len(self.text) :], full
        emit, hit = self.stop.feed(new)
        if hit:
            self.done = True
            r.send(Delta(emit, logprobs, finish_reason="stop", usage=usage()))
            return
        if len(self.generated) >= r.limit:
            self.done = True
            r.send(Delta(emit + self.stop.flush(), logprobs, "length", usage()))
            return
        if emit or logprobs:
            r.send(Delta(emit, logprobs))


def _pick(logits: Any, p: SamplingParams, gen: Any) -> tuple[int, Any]:
    import torch

    logits = logits.float()
    lps = torch.log_softmax(logits, -1)
    if p.greedy:
        return int(lps.argmax()), lps
    probs = torch.softmax(logits / p.temperature, -1)
    if p.top_p < 1.0:
        sorted_probs, order = probs.sort(descending=True)
        drop = sorted_probs.cumsum(-1) - sorted_probs > p.top_p
        sorted_probs[drop] = 0.0
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    return int(torch.multinomial(probs, 1, generator=gen)), lps


def _cache_keyword(lm: Any) -> str:
    """The forward() argument that takes the KV cache: ``cache`` since transformers 5.x renamed
    it (``past_key_values`` then warns with a FutureWarning), ``past_key_values`` before."""
    import inspect

    base = lm.get_base_model() if hasattr(lm, "get_base_model") else lm  # under a PEFT wrapper
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def _cache_of(out: Any) -> Any:
    """The KV cache a forward() returned (``cache``, formerly ``past_key_values``)."""
    fields = getattr(out, "__dataclass_fields__", {})
    return out.cache if "cache" in fields else out.past_key_values
