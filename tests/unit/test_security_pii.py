"""The one PII detector set (issue 13): the defects of the old detectors as a data table, hard
negatives, IBAN boundaries per country, the kinds setting, streamed redaction of numbers split
across pieces, and prompt screening."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from herald.security.pii import (
    IBAN_LENGTHS,
    PIIInPrompt,
    PIIPolicy,
    detector,
    iban_valid,
    normalize_kinds,
    redact_text,
    scan_text,
    screen_prompt,
)
from herald.serving.guardrails.pipeline import GuardrailPipeline
from herald.serving.hooks import RequestContext
from herald.settings import Settings

# (text, kind, the exact text that must be found) — each row a defect of the old detectors or a
# format they never covered
FOUND = [
    ("pay DE89 3704 0044 0532 0130 00 EUR today", "iban", "DE89 3704 0044 0532 0130 00"),
    ("IBAN GB82 WEST 1234 5698 7654 32 GBP", "iban", "GB82 WEST 1234 5698 7654 32"),
    (
        "to FR14 2004 1010 0505 0001 3M02 606 BIC BNPAFRPP",
        "iban",
        "FR14 2004 1010 0505 0001 3M02 606",
    ),
    ("acct NO9386011117947 NOK", "iban", "NO9386011117947"),
    ("call +33 1 23 45 67 89 now", "phone", "+33 1 23 45 67 89"),
    ("call +49 (0)30 1234567 now", "phone", "+49 (0)30 1234567"),
    ("call 5551234567 now", "phone", "5551234567"),
    ("+44 (0)20 7946 0958", "phone", "+44 (0)20 7946 0958"),
    ("office 020 7946 0958", "phone", "020 7946 0958"),
    ("tel 0049 30 1234567", "phone", "0049 30 1234567"),
    ("(+44) 20 7946 0958", "phone", "(+44) 20 7946 0958"),
    ("+81-3-1234-5678", "phone", "+81-3-1234-5678"),
    ("1-800-555-0199", "phone", "1-800-555-0199"),
    ("SSN 123-45-6789", "ssn", "123-45-6789"),
    ("form lists 078-05-1121", "ssn", "078-05-1121"),
    ("my SSN is 123456789", "ssn", "123456789"),
    ("social security number: 078 05 1120", "ssn", "078 05 1120"),
    ("ss# 329 42 1964", "ssn", "329 42 1964"),
    ("card 4111-1111-1111-1111 exp 12/25", "credit_card", "4111-1111-1111-1111"),
    ("amex 3782 822463 10005", "credit_card", "3782 822463 10005"),
    ("peer 192.168.001.010", "ipv4", "192.168.001.010"),
    ("fe80::1ff:fe23:4567:890a%eth0 up", "ipv6", "fe80::1ff:fe23:4567:890a%eth0"),
    ("mail J.Doe+x@mail.example.co.uk", "email", "J.Doe+x@mail.example.co.uk"),
]


@pytest.mark.parametrize(("text", "kind", "value"), FOUND)
def test_each_format_is_found_with_exact_boundaries(text: str, kind: str, value: str) -> None:
    matches = detector().find(text)
    assert [(m.kind, text[m.start : m.end]) for m in matches] == [(kind, value)]


NOT_PII = [
    "on 2024-01-15 at 12:30:45",
    "due 15/01/2024, paid 01.02.2024 10:30",
    "released version 1.2.3.4 and v10.0.19045.2364",
    "price $1,299.99 or 1 299 000 EUR",
    "Order #123-456-7890 shipped",
    "order no. 4001234567",
    "ISBN 978-3-16-148410-0 and ISBN-13 9780306406157",
    "uuid 123e4567-e89b-12d3-a456-426614174000",
    "timestamp 1700000000 and build 20240115123045",
    "id 1234567890",
    "MAC 00:1A:2B:3C:4D:5E",
    "SSN 000-12-3456 and 666-12-3456 and 900-12-3456 and 123-00-4567 and 123-45-0000",
    "lot 123456789",  # bare 9 digits without an SSN keyword
    "card 4111 1111 1111 1112",  # fails Luhn
    "IBAN GB82WEST12345698765433",  # fails mod-97
    "std::vector and a::b::c, ratio 16:9",
    "ticket 008-540-5572",
    "tracking 1Z999AA10123456784",
]


@pytest.mark.parametrize("text", NOT_PII)
def test_look_alikes_are_not_pii(text: str) -> None:
    assert scan_text(text) == {}


@pytest.mark.parametrize("country", sorted(IBAN_LENGTHS))
def test_iban_stops_at_the_country_length(country: str) -> None:
    bban = ("1234567890" * 4)[: IBAN_LENGTHS[country] - 4]
    num = int("".join(str(int(c, 36)) for c in bban + country + "00"))
    iban = f"{country}{98 - num % 97:02d}{bban}"
    assert iban_valid(iban)
    grouped = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    out, counts = redact_text(f"send {grouped} EUR TODAY")
    assert (out, counts) == ("send [IBAN] EUR TODAY", {"iban": 1})


def test_kinds_aliases_and_unknown_kinds() -> None:
    assert normalize_kinds(["card", "ip"]) == ("credit_card", "ipv6", "ipv4")
    assert scan_text("card 4111111111111111 mail a@b.io", ["email"]) == {"email": 1}
    assert Settings(security={"pii": {"kinds": ["email", "ip"]}}).security.pii.kinds == [
        "email",
        "ipv6",
        "ipv4",
    ]
    with pytest.raises(ValidationError, match=r"unknown PII kind.*'names'"):
        Settings(security={"pii": {"kinds": ["email", "names"]}})


def test_a_phone_split_over_stream_pieces_is_redacted() -> None:
    p = GuardrailPipeline([{"name": "pii", "type": "pii", "action": "redact"}])
    ctx = RequestContext("r1", "chat", "m")
    ctx.extra["guardrails"] = p.policy("m")
    reply = "Sure! You can call me on +49 (0)30 1234567 or at +33 1 23 45 67 89, bye."
    pieces = [reply[i : i + 3] for i in range(0, len(reply), 3)]  # cut inside every number
    out = "".join(p.on_delta(ctx, 0, x) for x in pieces) + p.on_end(ctx, 0)
    assert out == "Sure! You can call me on [PHONE] or at [PHONE], bye."


def test_a_keyword_released_before_the_number_still_counts() -> None:
    p = GuardrailPipeline([{"name": "pii", "type": "pii", "action": "redact"}], holdback=8)
    ctx = RequestContext("r2", "chat", "m")
    ctx.extra["guardrails"] = p.policy("m")
    text = "The applicant's SSN we have on file is 123456789, thanks."
    out = "".join(p.on_delta(ctx, 0, w + " ") for w in text.split(" ")) + p.on_end(ctx, 0)
    assert "123456789" not in out and "[SSN]" in out


@pytest.mark.parametrize(
    ("mode", "template", "saved", "warned"),
    [
        (
            "warn",
            "Call {{ name }} at +33 1 23 45 67 89",
            "Call {{ name }} at +33 1 23 45 67 89",
            True,
        ),
        (
            "redact",
            "Mail jane@example.com about {{ topic }}",
            "Mail [EMAIL] about {{ topic }}",
            True,
        ),
        ("off", "Mail jane@example.com", "Mail jane@example.com", False),
        ("warn", "Answer {{ question }} politely.", "Answer {{ question }} politely.", False),
    ],
)
def test_prompt_screening(mode: str, template: str, saved: str, warned: bool) -> None:
    out, warnings = screen_prompt(template, PIIPolicy(prompts=mode))
    assert out == saved and bool(warnings) is warned


def test_prompt_screening_can_block() -> None:
    with pytest.raises(PIIInPrompt, match="1 ssn") as info:
        screen_prompt("SSN 123-45-6789", PIIPolicy(prompts="block"))
    assert info.value.status == 400 and "123-45" not in str(info.value)
