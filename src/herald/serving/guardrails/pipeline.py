"""The guardrail pipeline on the data plane's hooks (``ModelPool.hooks``).

* input (``before_request``): size and max-token limits, then PII / blocked-term / regex rules
  on every message, prompt or embedding input — redacted in place, blocked (400
  ``content_policy_violation``) or flagged;
* output (``on_stream_delta`` + ``on_stream_end``): the same text rules on generated text, also
  when streamed. Text is held back by up to ``holdback_chars`` (and never cut inside a match)
  and released in steps of at least ``RELEASE_STEP`` characters
  so a PII string split over two deltas is still caught; the rest is flushed on finish;
* every hit is counted (``herald_guardrail_triggers_total``) and reported as aggregated
  ``guardrail.triggered`` messages (one per model/rule/action/direction per window).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter

from herald.messages.base import Message
from herald.security.pii import CONTEXT_CHARS, LONGEST_MATCH, normalize_kinds
from herald.serving.errors import BadParameter
from herald.serving.guardrails.messages import GuardrailTriggered
from herald.serving.guardrails.rules import CompiledRule, GuardrailViolation, Rule, parse_rules
from herald.serving.hooks import RequestContext
from herald.serving.pool import ModelPool

if TYPE_CHECKING:
    from herald.settings import ServingSettings

log = logging.getLogger("herald.serving.guardrails")
Emit = Callable[[Message], Awaitable[Any]]
RulesFor = Callable[[str], list[dict[str, Any]] | None]
HOLDBACK = LONGEST_MATCH  # longest PII string in one piece (IBAN with spaces 42, IPv6 ~50)
MAX_KEYS = 100  # distinct (model, rule, ...) keys per window
RELEASE_STEP = 16  # held-back text is released once it exceeds the holdback by this much


class Policy:
    """Compiled rules of one configuration."""

    def __init__(self, rules: list[Rule], pii_kinds: tuple[str, ...] | None = None) -> None:
        """``pii_kinds``: kinds of the ``pii`` rules that name none (``security.pii.kinds``)."""
        self.rules = rules
        self.text_in = [
            CompiledRule(r, pii_kinds)
            for r in rules
            if r.on_input and r.type in ("pii", "terms", "regex")
        ]
        self.text_out = [CompiledRule(r, pii_kinds) for r in rules if r.on_output]
        self.limits = [
            r for r in rules if r.type in ("max_input_chars", "max_tokens") and r.on_input
        ]

    def spans(self, text: str, context: str = "") -> list[tuple[int, int]]:
        n = len(context)
        found = (c.find(context + text) if context else c.find(text) for c in self.text_out)
        return [(s - n, e - n) for spans in found for s, e, _ in spans if e > n]


@dataclass
class _Agg:
    count: int = 0
    requests: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    rule_type: str = ""


class Reporter:
    """Counts hits and batches them into ``guardrail.triggered`` messages."""

    def __init__(self, emit: Emit | None, interval_s: float, registry: CollectorRegistry) -> None:
        self.emit = emit
        self.interval_s = interval_s
        self.counter = PromCounter(
            "herald_guardrail_triggers",
            "Guardrail rule matches",
            ["model_name", "rule", "action", "direction"],
            registry=registry,
        )
        self.window: dict[tuple[str, str, str, str, str], _Agg] = {}
        self.dropped = 0
        self.started = time.time()
        self._task: asyncio.Task[None] | None = None

    def hit(self, ctx: RequestContext, rule: Rule, direction: str, kinds: Counter[str]) -> None:
        n = sum(kinds.values())
        self.counter.labels(ctx.model, rule.name, rule.action, direction).inc(n)
        key = (ctx.model, ctx.version, rule.name, rule.action, direction)
        agg = self.window.get(key)
        if agg is None:
            if len(self.window) >= MAX_KEYS:
                self.dropped += 1
                return
            agg = self.window[key] = _Agg(rule_type=rule.type)
        agg.count += n
        agg.kinds.update(kinds)
        if ctx.request_id not in agg.samples:
            agg.requests += 1
            if len(agg.samples) < 10:
                agg.samples.append(ctx.request_id)

    def ensure_started(self) -> None:
        if self._task is None and self.emit is not None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="guardrails")

    def drain(self) -> list[GuardrailTriggered]:
        now = time.time()
        out = [
            GuardrailTriggered(
                model=k[0],
                version=k[1],
                rule=k[2],
                rule_type=a.rule_type,
                action=k[3],
                direction=k[4],
                count=a.count,
                requests=a.requests,
                kinds=dict(a.kinds),
                sample_request_ids=a.samples,
                window_start=self.started,
                window_end=now,
                dropped_keys=self.dropped,
            )
            for k, a in self.window.items()
        ]
        self.window = {}
        self.dropped = 0
        self.started = now
        return out

    async def flush(self) -> int:
        msgs = self.drain()
        if self.emit is not None:
            for m in msgs:
                try:
                    await self.emit(m)
                except Exception:
                    log.exception("could not emit guardrail.triggered")
        return len(msgs)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.flush()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self.flush()


class StreamFilter:
    """Output rules over streamed text, holding back a tail that may hide a split match."""

    def __init__(self, pipeline: GuardrailPipeline, policy: Policy, ctx: RequestContext) -> None:
        self.pipeline = pipeline
        self.policy = policy
        self.ctx = ctx
        self.buf = ""
        self.released = ""  # the end of the text already sent: context for keyword rules
        self.scan_at = pipeline.holdback + RELEASE_STEP

    def feed(self, text: str) -> str:
        self.buf += text
        if len(self.buf) < self.scan_at:
            return ""  # release in steps: one scan per few words, not per token
        cut = len(self.buf) - self.pipeline.holdback
        ws = max(self.buf.rfind(" ", 0, cut + 1), self.buf.rfind("\n", 0, cut + 1))
        if ws > 0:
            cut = ws
        for s, e in self.policy.spans(self.buf, self.released):
            if s < cut < e:
                cut = max(s, 0)
        out, self.buf = self.buf[:cut], self.buf[cut:]
        # a match kept whole leaves a long buffer: scan again after the next step, not per delta
        self.scan_at = max(self.pipeline.holdback, len(self.buf)) + RELEASE_STEP
        return self._release(out)

    def flush(self) -> str:
        out, self.buf = self.buf, ""
        return self._release(out)

    def _release(self, out: str) -> str:
        if not out:
            return ""
        context = self.released
        self.released = (self.released + out)[-CONTEXT_CHARS:]
        return self.pipeline.check_output(self.ctx, self.policy, out, context)


class GuardrailPipeline:
    """Guardrails of every data-plane request: rules per model (deployment) or the defaults."""

    def __init__(
        self,
        default_rules: list[dict[str, Any]] | None = None,
        *,
        rules_for: RulesFor | None = None,
        emit: Emit | None = None,
        interval_s: float = 2.0,
        registry: CollectorRegistry | None = None,
        holdback: int = HOLDBACK,
        pii_kinds: list[str] | tuple[str, ...] | None = None,
    ) -> None:
        """``pii_kinds``: the kinds of ``pii`` rules that name none (``security.pii.kinds``)."""
        self.pii_kinds = None if pii_kinds is None else normalize_kinds(pii_kinds)
        self.default = Policy(parse_rules(default_rules), self.pii_kinds)
        self.rules_for = rules_for
        self.holdback = holdback
        self.reporter = Reporter(emit, interval_s, registry or CollectorRegistry())
        self._cache: dict[str, Policy] = {}

    @classmethod
    def install(cls, pool: ModelPool, h: Any, settings: ServingSettings) -> GuardrailPipeline:
        """Build from settings and hook into ``pool`` (deployments' own rules win)."""
        deployments = getattr(h, "deployments", None)

        def rules_for(model: str) -> list[dict[str, Any]] | None:
            active = deployments.active.get(model) if deployments is not None else None
            return active.deployment.guardrails if active is not None else None

        p = cls(
            settings.guardrails,
            rules_for=rules_for,
            emit=h.emit,
            interval_s=settings.guardrail_events_interval_s,
            registry=h.metrics.registry,
            pii_kinds=h.settings.security.pii.kinds,
        )
        p.attach(pool)
        return p

    def attach(self, pool: ModelPool) -> None:
        pool.hooks.before_request.append(self.before_request)
        pool.hooks.on_stream_delta.append(self.on_delta)
        pool.hooks.on_stream_end.append(self.on_end)

    def policy(self, model: str) -> Policy:
        items = self.rules_for(model) if self.rules_for is not None else None
        if items is None:
            return self.default
        key = json.dumps(items, sort_keys=True, default=str)
        pol = self._cache.get(key)
        if pol is None:
            if len(self._cache) > 256:
                self._cache.clear()
            pol = self._cache[key] = Policy(parse_rules(items), self.pii_kinds)
        return pol

    # input -----------------------------------------------------------------------------------
    async def before_request(self, ctx: RequestContext, body: dict[str, Any]) -> None:
        policy = self.policy(ctx.model)
        ctx.extra["guardrails"] = policy
        if not policy.rules:
            return
        self.reporter.ensure_started()
        req = body["request"]
        texts = _texts(req)
        for rule in policy.limits:
            self._limit(ctx, rule, req, texts)
        for c in policy.text_in:
            for get, put in texts:
                text = get()
                new, counts = c.apply(text)
                if not counts:
                    continue
                self.reporter.hit(ctx, c.rule, "input", counts)
                if c.rule.action == "block":
                    raise GuardrailViolation(
                        f"the request was blocked by guardrail {c.rule.name!r} "
                        f"({_what(c.rule, counts)} in the input)",
                        param=_param(req),
                    )
                if c.rule.action == "redact":
                    put(new)
                else:
                    ctx.headers["x-herald-guardrails-flagged"] = c.rule.name

    def _limit(self, ctx: RequestContext, rule: Rule, req: Any, texts: list[Any]) -> None:
        assert rule.limit is not None
        if rule.type == "max_input_chars":
            size = sum(len(get()) for get, _ in texts)
            if size <= rule.limit:
                return
            self.reporter.hit(ctx, rule, "input", Counter({"chars": 1}))
            if rule.action == "block":
                raise BadParameter(
                    f"the input has {size} characters; guardrail {rule.name!r} allows at most "
                    f"{rule.limit}",
                    param=_param(req),
                    code="input_too_large",
                )
            ctx.headers["x-herald-guardrails-flagged"] = rule.name
            return
        fields = [f for f in ("max_completion_tokens", "max_tokens") if hasattr(req, f)]
        if not fields:
            return  # embeddings have no max_tokens
        asked = [(f, getattr(req, f)) for f in fields]
        over = [(f, v) for f, v in asked if v is not None and v > rule.limit]
        unset = all(v is None for _, v in asked)
        if not over and not unset:
            return
        if over:
            self.reporter.hit(ctx, rule, "input", Counter({"max_tokens": 1}))
        if rule.action == "block" and over:
            f, v = over[0]
            raise BadParameter(
                f"{f}={v} exceeds the limit of {rule.limit} tokens set by guardrail {rule.name!r}",
                param=f,
                code="max_tokens_exceeded",
            )
        if rule.action == "redact":  # clamp (and cap requests that asked for no limit)
            for f, v in asked:
                if v is None or v > rule.limit:
                    setattr(req, f, rule.limit if f == fields[-1] or v is not None else None)

    # output ----------------------------------------------------------------------------------
    def _filter(self, ctx: RequestContext, index: int) -> StreamFilter | None:
        policy = ctx.extra.get("guardrails")
        if not isinstance(policy, Policy) or not policy.text_out:
            return None
        filters: dict[int, StreamFilter] = ctx.extra.setdefault("guardrail_filters", {})
        f = filters.get(index)
        if f is None:
            f = filters[index] = StreamFilter(self, policy, ctx)
        return f

    def on_delta(self, ctx: RequestContext, index: int, text: str) -> str:
        f = self._filter(ctx, index)
        return text if f is None else f.feed(text)

    def on_end(self, ctx: RequestContext, index: int) -> str:
        f = self._filter(ctx, index)
        return "" if f is None else f.flush()

    def check_output(
        self, ctx: RequestContext, policy: Policy, text: str, context: str = ""
    ) -> str:
        """``text`` after the output rules (``context``: the text sent just before it)."""
        for c in policy.text_out:
            new, counts = c.apply(text, context)
            if not counts:
                continue
            self.reporter.hit(ctx, c.rule, "output", counts)
            if c.rule.action == "block":
                raise GuardrailViolation(
                    f"the response was stopped by guardrail {c.rule.name!r} "
                    f"({_what(c.rule, counts)} in the output)"
                )
            if c.rule.action == "redact":
                text = new
        return text

    async def close(self) -> None:
        await self.reporter.close()


def _what(rule: Rule, counts: Counter[str]) -> str:
    if rule.type == "pii":
        return ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    return "a blocked term" if rule.type == "terms" else "a forbidden pattern"


def _param(req: Any) -> str:
    for f in ("messages", "prompt", "input"):
        if hasattr(req, f):
            return f
    return "body"


def _texts(req: Any) -> list[tuple[Callable[[], str], Callable[[str], None]]]:
    """(get, put) pairs over every user-supplied text of a chat/completions/embeddings request."""
    out: list[tuple[Callable[[], str], Callable[[str], None]]] = []

    def attr(obj: Any, name: str) -> None:
        out.append((lambda: getattr(obj, name), lambda v: setattr(obj, name, v)))

    def item(seq: list[Any], i: int, key: str | None = None) -> None:
        if key is None:
            out.append((lambda: seq[i], lambda v: seq.__setitem__(i, v)))
        else:
            out.append((lambda: seq[i][key], lambda v: seq[i].__setitem__(key, v)))

    for m in getattr(req, "messages", None) or []:
        if isinstance(m.content, str):
            attr(m, "content")
        elif isinstance(m.content, list):
            for j, part in enumerate(m.content):
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    item(m.content, j, "text")
    for name in ("prompt", "input"):
        value = getattr(req, name, None)
        if isinstance(value, str):
            attr(req, name)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                if isinstance(v, str):
                    item(value, i)
    return out
