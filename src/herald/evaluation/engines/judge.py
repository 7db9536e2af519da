"""``judge``: LLM-as-judge with a rubric, or pairwise against the reference answer.

The judge is any model reachable as a target (``options.judge``: ``models:/…``, a served name,
an endpoint URL with ``judge_model``); by default the evaluated target judges itself.

- ``rubric`` mode asks for ``Score: N`` on a 1..``scale`` rubric; ``score`` is N scaled to [0, 1].
- ``pairwise`` mode asks which of two answers is better, twice with the order swapped
  (position-bias control): ``win_rate`` is 1 / 0.5 / 0 per item averaged over both orders,
  ``position_consistency`` is 1 when both orders agree.

A verdict that does not parse raises an item error: the item is recorded with the judge's raw
output and counted in ``errors`` — never dropped from the denominator silently.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from herald.evaluation.base import Engine, ItemContext, RunContext
from herald.evaluation.errors import ItemError
from herald.evaluation.targets import OpenAIClient

DEFAULT_RUBRIC = (
    "Rate how correct, relevant and helpful the answer is for the question"
    " (use the reference answer when one is given)."
)
_SCORE = re.compile(r"score\s*[:=]?\s*\**\s*(\d+(?:\.\d+)?)", re.I)
_VERDICT = re.compile(
    r"\[\[(A|B|tie)\]\]|\b(?:verdict|winner|better)\s*[:=]?\s*\**\s*(A|B|tie)\b", re.I
)


class JudgeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["rubric", "pairwise"] = "rubric"
    judge: str | None = Field(None, description="target of the judge (default: the target)")
    judge_model: str | None = Field(None, description="model name for an endpoint judge")
    rubric: str = DEFAULT_RUBRIC
    scale: int = Field(5, ge=2, le=100)
    max_tokens: int = Field(48, ge=1, le=2048)


def parse_score(text: str, scale: int) -> float:
    """The 1..scale score in a judge's answer (``Score: 4``, ``{"score": 4}`` or ``4``)."""
    value: float | None = None
    stripped = text.strip()
    try:
        data = json.loads(stripped)
        if isinstance(data, dict) and isinstance(data.get("score"), int | float):
            value = float(data["score"])
        elif isinstance(data, int | float):
            value = float(data)
    except (json.JSONDecodeError, ValueError):
        match = _SCORE.search(text)
        if match:
            value = float(match.group(1))
    if value is None or not 1 <= value <= scale:
        raise ItemError(f"judge output did not parse as a 1..{scale} score: {text[:200]!r}")
    return value


def parse_verdict(text: str) -> str:
    """``A``, ``B`` or ``tie`` from a pairwise judge's answer."""
    stripped = text.strip().strip(".*[]").lower()
    if stripped in ("a", "b", "tie"):
        return stripped.upper() if stripped != "tie" else "tie"
    match = _VERDICT.search(text)
    if not match:
        raise ItemError(f"judge output did not parse as a verdict (A, B or tie): {text[:200]!r}")
    v = (match.group(1) or match.group(2)).lower()
    return "tie" if v == "tie" else v.upper()


def _question(item: ItemContext) -> str:
    parts = []
    for msg in item.sample.chat():
        content = msg.get("content")
        if isinstance(content, list):
            content = " ".join(p.get("text", "[image]") for p in content)
        parts.append(f"{msg['role']}: {content}")
    return "\n".join(parts)


class JudgeEngine(Engine):
    name = "judge"
    known_metrics: ClassVar[tuple[str, ...]] = ("score", "win_rate", "position_consistency")
    default_metrics: ClassVar[tuple[str, ...]] = ("score",)
    options_model = JudgeOptions

    def __init__(self, metrics: Any, options: dict[str, Any]) -> None:
        super().__init__(metrics, options)
        if self.options.mode == "pairwise" and self.metrics == ("score",):
            self.metrics = ("win_rate", "position_consistency")
        self._judge: OpenAIClient | None = None

    async def setup(self, run: RunContext) -> None:
        o = self.options
        self._judge = await run.open_client(o.judge, o.judge_model) if o.judge else run.client

    async def _ask(self, prompt: str) -> str:
        assert self._judge is not None
        r = await self._judge.chat(
            [{"role": "user", "content": prompt}],
            stream=False,
            max_tokens=self.options.max_tokens,
            temperature=0,
        )
        return r.text

    async def score(self, item: ItemContext) -> dict[str, float]:
        if self.options.mode == "rubric":
            return await self._rubric(item)
        return await self._pairwise(item)

    async def _rubric(self, item: ItemContext) -> dict[str, float]:
        o = self.options
        refs = item.sample.references()
        prompt = (
            f"You are a strict grader. {o.rubric}\n\nQuestion:\n{_question(item)}\n\n"
            + (f"Reference answer:\n{refs[0]}\n\n" if refs else "")
            + f"Answer to grade:\n{item.text}\n\n"
            f"Reply with exactly one line: Score: N (N from 1 to {o.scale})."
        )
        raw = await self._ask(prompt)
        try:
            value = parse_score(raw, o.scale)
        except ItemError as exc:
            raise ItemError(exc.message, details={"judge_output": raw}) from None
        return {"score": (value - 1) / (o.scale - 1), "_raw_score": value}

    async def _pairwise(self, item: ItemContext) -> dict[str, float]:
        refs = item.sample.references()
        if not refs:
            raise ItemError("pairwise judging needs a reference answer to compare with")
        q = _question(item)
        verdicts = []
        for first, second in ((item.text, refs[0]), (refs[0], item.text)):
            prompt = (
                "Compare two answers to the question. Which is better: A or B?\n\n"
                f"Question:\n{q}\n\nAnswer A:\n{first}\n\nAnswer B:\n{second}\n\n"
                "Reply with exactly one of: [[A]], [[B]] or [[tie]]."
            )
            raw = await self._ask(prompt)
            try:
                verdicts.append(parse_verdict(raw))
            except ItemError as exc:
                raise ItemError(exc.message, details={"judge_output": raw}) from None
        win1 = {"A": 1.0, "B": 0.0, "tie": 0.5}[verdicts[0]]
        win2 = {"B": 1.0, "A": 0.0, "tie": 0.5}[verdicts[1]]
        out: dict[str, float] = {}
        if "win_rate" in self.metrics:
            out["win_rate"] = (win1 + win2) / 2
        if "position_consistency" in self.metrics:
            out["position_consistency"] = float(win1 == win2)
        return out
