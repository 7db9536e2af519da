"""``rag``: context precision / recall, faithfulness and answer relevance.

Contexts are the sample's ``contexts`` or, with ``options.collection``, the top ``k`` chunks that
Herald's RAG retrieval returns for the question. Three scorers (``options.method``):

- ``lexical`` (default, no model): a context is relevant when it holds ≥ ``relevance`` of the
  reference's content words; recall is the share of reference content words found in the
  contexts; faithfulness the share of the answer's content words found in the contexts;
  relevance the share of the question's content words the answer addresses.
- ``embedding``: cosine similarities from ``/v1/embeddings`` of ``options.embedding_model``
  (served by the same gateway, e.g. the bundled ``all-minilm-l6-v2``).
- ``judge``: faithfulness and relevance asked of the judge (``Score: 1..5``); the context
  metrics stay lexical.
"""

from __future__ import annotations

import asyncio
import math
import re
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from herald.evaluation.base import Engine, ItemContext, RunContext
from herald.evaluation.engines.judge import parse_score
from herald.evaluation.errors import ItemError
from herald.evaluation.targets import OpenAIClient

STOP = {
    "a",
    "an",
    "the",
    "is",
    "are",
    "was",
    "were",
    "of",
    "to",
    "in",
    "on",
    "and",
    "or",
    "for",
    "with",
    "what",
    "which",
    "who",
    "how",
    "does",
    "do",
    "it",
    "its",
    "that",
    "this",
    "be",
    "by",
    "as",
    "at",
    "from",
    "i",
    "you",
    "your",
    "we",
    "our",
    "please",
    "can",
}


def content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[\w']+", text.lower()) if w not in STOP}


def _coverage(needle: set[str], hay: set[str]) -> float:
    return len(needle & hay) / len(needle) if needle else 0.0


def _cos(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


class RagOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: Literal["lexical", "embedding", "judge"] = "lexical"
    relevance: float = Field(0.5, gt=0.0, le=1.0, description="threshold of a relevant context")
    collection: str | None = Field(None, description="retrieve contexts from this collection")
    k: int = Field(4, ge=1, le=100)
    embedding_model: str = "all-minilm-l6-v2"
    judge: str | None = None
    judge_model: str | None = None


class RagEngine(Engine):
    name = "rag"
    known_metrics: ClassVar[tuple[str, ...]] = (
        "context_precision",
        "context_recall",
        "faithfulness",
        "answer_relevance",
    )
    default_metrics = known_metrics
    options_model = RagOptions

    def __init__(self, metrics: Any, options: dict[str, Any]) -> None:
        super().__init__(metrics, options)
        self._judge: OpenAIClient | None = None
        self._client: OpenAIClient | None = None

    async def setup(self, run: RunContext) -> None:
        self._client = run.client
        if self.options.method == "judge":
            o = self.options
            self._judge = await run.open_client(o.judge, o.judge_model) if o.judge else run.client

    async def _contexts(self, item: ItemContext, question: str) -> list[str]:
        if item.sample.contexts:
            return list(item.sample.contexts)
        if self.options.collection is None:
            raise ItemError("sample has no 'contexts' and options.collection is not set")
        from herald.rag.retrieval import retrieve  # the job process's settings' collections

        chunks = await asyncio.to_thread(
            retrieve, self.options.collection, question, k=self.options.k
        )
        return [c.text for c in chunks]

    async def _embed(self, texts: list[str]) -> list[list[float]]:
        assert self._client is not None
        data = await self._client._post(
            "/embeddings", {"model": self.options.embedding_model, "input": texts}
        )
        try:
            return [d["embedding"] for d in sorted(data["data"], key=lambda d: d["index"])]
        except (KeyError, TypeError) as exc:
            raise ItemError(f"malformed embeddings response: {exc!r}") from None

    async def score(self, item: ItemContext) -> dict[str, float]:
        s = item.sample
        question = " ".join(str(m.get("content")) for m in s.chat() if m.get("role") == "user")
        answer = item.text
        contexts = await self._contexts(item, question)
        if not contexts:
            raise ItemError("no contexts to score")
        refs = s.references()
        want = set(self.metrics)
        if {"context_precision", "context_recall"} & want and not refs:
            raise ItemError("context precision/recall need a reference answer")
        out: dict[str, float] = {}
        ctx_words = [content_words(c) for c in contexts]
        all_ctx = set().union(*ctx_words)
        if self.options.method == "embedding":
            vecs = await self._embed([question, answer, *(refs[:1]), *contexts])
            q, a = vecs[0], vecs[1]
            ref = vecs[2] if refs else None
            cvecs = vecs[3:] if refs else vecs[2:]
            if ref is not None:
                sims = [_cos(ref, c) for c in cvecs]
                out["context_precision"] = sum(x >= self.options.relevance for x in sims) / len(
                    sims
                )
                out["context_recall"] = max(sims)
            out["faithfulness"] = max(_cos(a, c) for c in cvecs)
            out["answer_relevance"] = _cos(q, a)
        else:
            if refs:
                ref_words = content_words(refs[0])
                out["context_precision"] = sum(
                    _coverage(ref_words, cw) >= self.options.relevance for cw in ctx_words
                ) / len(ctx_words)
                out["context_recall"] = _coverage(ref_words, all_ctx)
            out["faithfulness"] = _coverage(content_words(answer), all_ctx)
            out["answer_relevance"] = _coverage(content_words(question), content_words(answer))
            if self.options.method == "judge":
                out |= await self._judged(question, answer, contexts)
        return {k: v for k, v in out.items() if k in want}

    async def _judged(self, question: str, answer: str, contexts: list[str]) -> dict[str, float]:
        assert self._judge is not None
        ctx = "\n---\n".join(contexts)
        asks = {
            "faithfulness": "Is every claim of the answer supported by the context?",
            "answer_relevance": "Does the answer address the question directly?",
        }
        out = {}
        for metric, ask in asks.items():
            r = await self._judge.chat(
                [
                    {
                        "role": "user",
                        "content": f"Context:\n{ctx}\n\nQuestion: {question}\nAnswer: {answer}\n\n"
                        f"{ask} Reply with one line: Score: N (1 = not at all, 5 = fully).",
                    }
                ],
                stream=False,
                max_tokens=32,
                temperature=0,
            )
            try:
                out[metric] = (parse_score(r.text, 5) - 1) / 4
            except ItemError as exc:
                raise ItemError(exc.message, details={"judge_output": r.text}) from None
        return out
