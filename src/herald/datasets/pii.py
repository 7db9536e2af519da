"""PII scan and redaction of data sets: the one detector set of :mod:`herald.security.pii`
(re-exported here so existing imports keep working)."""

from __future__ import annotations

from herald.security.pii import (
    PII_KINDS,
    PLACEHOLDERS,
    iban_valid,
    luhn_valid,
    redact_text,
    scan_text,
)

__all__ = ["PII_KINDS", "PLACEHOLDERS", "iban_valid", "luhn_valid", "redact_text", "scan_text"]
