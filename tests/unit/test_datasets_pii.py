"""PII scan: each kind is found, checksums reject look-alikes, redaction uses placeholders."""

from __future__ import annotations

import pytest

from herald.datasets.pii import iban_valid, luhn_valid, redact_text, scan_text


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("write to jane.doe+news@example.co.uk today", "email"),
        ("call +44 20 7946 0958", "phone"),
        ("call (415) 555-0132", "phone"),
        ("call 415-555-0132", "phone"),
        ("card 4111 1111 1111 1111", "credit_card"),
        ("card 5500-0000-0000-0004", "credit_card"),
        ("IBAN GB82 WEST 1234 5698 7654 32", "iban"),
        ("IBAN DE89370400440532013000", "iban"),
        ("host 192.168.1.10", "ipv4"),
        ("host 2001:db8::8a2e:370:7334", "ipv6"),
    ],
)
def test_each_kind_is_found(text: str, kind: str) -> None:
    assert scan_text(text) == {kind: 1}


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112",  # fails Luhn
        "IBAN GB82WEST12345698765433",  # fails mod-97
        "on 2024-01-15 at 12:30:45",  # date and time
        "123 + 456 = 579; 3000 metres; 1 000 000",
        "std::vector and version 1.2.3 and 300.1.1.1",
        "id 1234567890",  # digits without separators are not a phone number
    ],
)
def test_look_alikes_are_not_pii(text: str) -> None:
    assert scan_text(text) == {}


def test_redaction_replaces_and_counts_once() -> None:
    text = "mail a@b.io, card 4111111111111111, ip 10.0.0.1, phone +1 415 555 0132"
    out, counts = redact_text(text)
    assert out == "mail [EMAIL], card [CREDIT_CARD], ip [IP_ADDRESS], phone [PHONE]"
    assert counts == {"email": 1, "credit_card": 1, "ipv4": 1, "phone": 1}


def test_checksums() -> None:
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")
    assert iban_valid("GB82 WEST 1234 5698 7654 32") and not iban_valid("GB00WEST12345698765432")
