"""Guardrails around every data-plane request and response: PII redaction (also in streamed
output), blocked terms, regexes, size and token limits; redact, block or flag. See
docs/guides/guardrails.md."""

from herald.serving.guardrails.messages import GuardrailTriggered
from herald.serving.guardrails.pipeline import GuardrailPipeline, Policy
from herald.serving.guardrails.rules import GuardrailViolation, Rule, parse_rules

__all__ = [
    "GuardrailPipeline",
    "GuardrailTriggered",
    "GuardrailViolation",
    "Policy",
    "Rule",
    "parse_rules",
]
