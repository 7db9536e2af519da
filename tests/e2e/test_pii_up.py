"""The headline PII attack against a real `herald up` (issue 13): a user sends a prompt full of
personal data, the model answers with more (an IBAN followed by a currency, international
phones, a bare SSN after its keyword); the reply comes back redacted even though it is streamed
word by word, and the request log written on disk holds placeholders, never the raw values."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

pytestmark = pytest.mark.slow

KEY = "e2e-pii-key-0123456789abcdef0123"
REPLY = (
    "Noted: +33 1 23 45 67 89, +49 (0)30 1234567, 5551234567, IBAN "
    "DE89 3704 0044 0532 0130 00 EUR and SSN 123456789."
)
MODELS = {"pii": {"backend": "fake", "model": "p", "options": {"reply": REPLY}}}
RULES = [{"name": "pii", "type": "pii", "action": "redact"}]
PROMPT = "Save my SSN 078-05-1120, card 4111 1111 1111 1111 and phone (415) 555-0132"
RAW = ["23 45 67 89", "1234567", "5551234567", "3704 0044", "123456789", "078-05-1120",
       "4111 1111", "555-0132"]  # fmt: skip


def test_request_log_on_disk_holds_no_raw_pii(server_factory: Any) -> None:
    srv = server_factory(
        [],
        HERALD_SERVING__MODELS=json.dumps(MODELS),
        HERALD_SERVING__GUARDRAILS=json.dumps(RULES),
        HERALD_SERVING__BUNDLED="false",
        HERALD_API_KEY=KEY,
    )
    srv.start()
    client = openai.OpenAI(api_key=KEY, base_url=f"{srv.url}/v1", max_retries=0)
    stream = client.chat.completions.create(
        model="pii", messages=[{"role": "user", "content": PROMPT}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Noted: [PHONE], [PHONE], [PHONE], IBAN [IBAN] EUR and SSN [SSN]."
    srv.stop()
    folder = srv.home / "serving" / "requests"
    stored = "".join(p.read_text("utf-8") for p in sorted(folder.glob("requests*.jsonl")))
    assert "[SSN]" in stored and "[CREDIT_CARD]" in stored and "[IBAN]" in stored
    assert [x for x in RAW if x in stored] == []
