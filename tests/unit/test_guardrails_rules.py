"""Guardrail rules and the streaming filter: redaction across chunk boundaries (a match split
over two and over three deltas, random splits equal whole-text redaction), blocked terms, regex
policies, flag, limits, rule validation and aggregated reporting."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

import pytest

from herald.errors import ConfigurationError
from herald.serving.errors import BadParameter
from herald.serving.guardrails.pipeline import GuardrailPipeline
from herald.serving.guardrails.rules import CompiledRule, GuardrailViolation, Rule, parse_rules
from herald.serving.hooks import RequestContext

PII = {"name": "pii", "type": "pii", "action": "redact", "direction": "output"}
TEXT = (
    "Mail john.doe@example.com or call +1 415 555 2671, card 4111 1111 1111 1111, "
    "IBAN DE89 3704 0044 0532 0130 00, host 10.0.0.12 ok. " * 3
)
SECRETS = ("john.doe", "example.com", "2671", "1111 1111", "DE89", "0130", "10.0.0.12")


def ctx(model: str = "m") -> RequestContext:
    return RequestContext(request_id="r1", endpoint="chat", model=model)


async def start(p: GuardrailPipeline, c: RequestContext, **req: Any) -> Any:
    body = SimpleNamespace(
        **{"messages": [], "max_tokens": None, "max_completion_tokens": None, **req}
    )
    await p.before_request(c, {"request": body})
    return body


def stream(p: GuardrailPipeline, c: RequestContext, deltas: list[str]) -> tuple[str, list[str]]:
    """The text a client receives and what each delta released."""
    released = [p.on_delta(c, 0, d) for d in deltas]
    tail = p.on_end(c, 0)
    return "".join(released) + tail, released


def whole(rule: dict[str, Any], text: str) -> str:
    return CompiledRule(Rule.model_validate(rule)).apply(text)[0]


async def test_email_split_over_two_deltas_is_redacted() -> None:
    p = GuardrailPipeline([PII])
    c = ctx()
    await start(p, c)
    out, released = stream(p, c, ["Write to john.doe@exa", "mple.com today."])
    assert out == "Write to [EMAIL] today."
    assert released[0] == ""  # held back: it may be the start of a match
    assert sum(p.reporter.window[("m", "", "pii", "redact", "output")].kinds.values()) == 1


async def test_match_straddling_three_deltas_is_redacted() -> None:
    p = GuardrailPipeline([PII])
    c = ctx()
    await start(p, c)
    filler = "All good here, nothing to hide in this first long sentence of the answer. "
    deltas = [filler + "Card 4111 11", "11 1111 ", "1111 thanks", " and bye."]
    out, released = stream(p, c, deltas)
    assert out == filler + "Card [CREDIT_CARD] thanks and bye."
    assert released[0].startswith("All good")  # text far from the match is not held back
    assert "4111" not in "".join(released)


@pytest.mark.parametrize("seed", range(25))
async def test_random_splits_equal_whole_text_redaction(seed: int) -> None:
    rnd = random.Random(seed)
    cuts = sorted(rnd.sample(range(1, len(TEXT)), rnd.randint(1, 60)))
    deltas = [TEXT[a:b] for a, b in zip([0, *cuts], [*cuts, len(TEXT)], strict=True)]
    p = GuardrailPipeline([PII])
    c = ctx()
    await start(p, c)
    out, _ = stream(p, c, deltas)
    assert out == whole(PII, TEXT)
    assert not any(s in out for s in SECRETS)


async def test_one_character_deltas_and_a_short_holdback() -> None:
    p = GuardrailPipeline([PII], holdback=48)
    c = ctx()
    await start(p, c)
    out, released = stream(p, c, list(TEXT))
    assert out == whole(PII, TEXT)
    assert sum(1 for r in released if r) > 3  # released progressively, not only at the end


async def test_no_output_rules_passes_deltas_through() -> None:
    p = GuardrailPipeline([{**PII, "direction": "input"}])
    c = ctx()
    await start(p, c)
    assert stream(p, c, ["john.doe@", "example.com"]) == (
        "john.doe@example.com",
        ["john.doe@", "example.com"],
    )


async def test_blocked_terms_are_whole_words_case_insensitive() -> None:
    rule = {"name": "words", "type": "terms", "terms": ["project x", "badword"], "action": "block"}
    p = GuardrailPipeline([rule])
    c = ctx()
    msgs = [SimpleNamespace(content="tell me about PROJECT X please")]
    with pytest.raises(GuardrailViolation, match=r"'words' .*a blocked term in the input") as exc:
        await start(p, c, messages=msgs)
    assert exc.value.status == 400 and exc.value.code == "content_policy_violation"
    ok = [SimpleNamespace(content="badwordy projects are fine")]
    await start(p, ctx(), messages=ok)  # no whole-word match
    # on output: a term split over deltas stops the stream
    c = ctx()
    await start(p, c)
    with pytest.raises(GuardrailViolation, match="in the output"):
        stream(p, c, ["it is a bad", "word indeed"])


async def test_regex_redact_and_flag_policies() -> None:
    rules = [
        {"name": "ticket", "type": "regex", "pattern": r"TCK-\d{4}", "action": "redact",
         "replacement": "[TICKET]"},
        {"name": "mention", "type": "regex", "pattern": r"@internal", "action": "flag",
         "direction": "input"},
    ]  # fmt: skip
    p = GuardrailPipeline(rules)
    c = ctx()
    msgs = [SimpleNamespace(content="see TCK-1234 @internal"), SimpleNamespace(content=[])]
    await start(p, c, messages=msgs)
    assert msgs[0].content == "see [TICKET] @internal"  # redacted in place, flag leaves text
    assert c.headers["x-herald-guardrails-flagged"] == "mention"
    out, _ = stream(p, c, ["ref TCK-", "98", "76 done"])
    assert out == "ref [TICKET] done"
    keys = {k[2:] for k in p.reporter.window}
    assert keys == {("ticket", "redact", "input"), ("mention", "flag", "input"),
                    ("ticket", "redact", "output")}  # fmt: skip
    [msg] = [m for m in p.reporter.drain() if m.direction == "output"]
    assert msg.count == 1 and msg.requests == 1 and msg.sample_request_ids == ["r1"]
    assert p.reporter.window == {}


async def test_pii_on_input_in_prompts_and_content_parts() -> None:
    p = GuardrailPipeline([{"name": "pii", "type": "pii", "kinds": ["email"], "action": "redact"}])
    parts = [{"type": "text", "text": "me: a@b.io"}, {"type": "image_url", "image_url": {}}]
    msgs = [SimpleNamespace(content=parts)]
    await start(p, ctx(), messages=msgs, prompt=["x@y.org", 3])
    assert parts[0]["text"] == "me: [EMAIL]"
    body = await start(p, ctx(), prompt="write to x@y.org")
    assert body.prompt == "write to [EMAIL]"


async def test_size_and_max_token_limits() -> None:
    p = GuardrailPipeline(
        [
            {"name": "size", "type": "max_input_chars", "limit": 10},
            {"name": "tokens", "type": "max_tokens", "limit": 64},
        ]
    )
    with pytest.raises(BadParameter, match="11 characters; guardrail 'size' allows at most 10"):
        await start(p, ctx(), messages=[SimpleNamespace(content="x" * 11)])
    with pytest.raises(BadParameter, match="max_tokens=65 exceeds the limit of 64") as exc:
        await start(p, ctx(), prompt="hi", max_tokens=65)
    assert exc.value.status == 400
    await start(p, ctx(), prompt="hi", max_tokens=64)
    clamp = GuardrailPipeline(
        [{"name": "t", "type": "max_tokens", "limit": 64, "action": "redact"}]
    )
    body = await start(clamp, ctx(), prompt="hi")
    assert body.max_tokens == 64  # an unlimited request is capped


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"name": "a", "type": "terms"}, "non-empty terms"),
        ({"name": "a", "type": "regex", "pattern": "("}, "invalid regex"),
        ({"name": "a", "type": "regex"}, "needs a pattern"),
        ({"name": "a", "type": "pii", "kinds": ["dna"]}, "unknown PII kind"),
        ({"name": "a", "type": "max_tokens"}, "needs a limit"),
        ({"name": "a", "type": "max_input_chars", "limit": 5, "action": "redact"}, "block or flag"),
        ({"name": "bad name", "type": "pii"}, "name"),
    ],
)
def test_invalid_rules_are_named(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_rules([rule])


def test_rule_names_must_be_unique() -> None:
    with pytest.raises(ConfigurationError, match="unique"):
        parse_rules([PII, PII])


def test_deployment_rules_override_the_defaults() -> None:
    own = [{"name": "t", "type": "terms", "terms": ["x"]}]
    p = GuardrailPipeline([PII], rules_for=lambda m: own if m == "dep" else None)
    assert [r.name for r in p.policy("dep").rules] == ["t"]
    assert [r.name for r in p.policy("other").rules] == ["pii"]
    assert p.policy("dep") is p.policy("dep")  # compiled once
