"""PII scan and redaction: e-mail addresses, phone numbers, card numbers, IBANs, IP addresses.

Pure functions over strings. Candidates found by regular expressions are confirmed by checks
where the kind has one (Luhn for card numbers, ISO 13616 mod-97 for IBANs, :mod:`ipaddress` for
IPs), so "4111 1111 1111 1112" or "2024-01-15" are not reported. Kinds are matched in a fixed
order (e-mail, IBAN, card, IPv6, IPv4, phone) and each match is replaced before the next kind
runs, so one piece of text is counted once.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable

__all__ = ["PII_KINDS", "iban_valid", "luhn_valid", "redact_text", "scan_text"]

PII_KINDS = ("email", "iban", "credit_card", "ipv6", "ipv4", "phone")
PLACEHOLDERS = {
    "email": "[EMAIL]",
    "iban": "[IBAN]",
    "credit_card": "[CREDIT_CARD]",
    "ipv6": "[IP_ADDRESS]",
    "ipv4": "[IP_ADDRESS]",
    "phone": "[PHONE]",
}

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}\b"
)
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_IPV6 = re.compile(r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
_IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w]|\.\d)")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,4}(?![\w])"
    r"|(?<![\w+])\+\d{8,15}(?![\w])"
)


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a card number (digits only)."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """ISO 13616 check: move the first four characters to the end, letters → numbers, mod 97 == 1."""
    s = iban.replace(" ", "").upper()
    if not 15 <= len(s) <= 34 or not s.isalnum():
        return False
    rearranged = s[4:] + s[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return int(number) % 97 == 1


def _card(m: str) -> bool:
    digits = re.sub(r"[ -]", "", m)
    return 13 <= len(digits) <= 19 and len(set(digits)) > 1 and luhn_valid(digits)


def _ipv6(m: str) -> bool:
    if m.count(":") < 2 or sum(1 for g in m.split(":") if g) < 2:
        return False
    try:
        ipaddress.IPv6Address(m)
    except ValueError:
        return False
    return True


def _ipv4(m: str) -> bool:
    try:
        ipaddress.IPv4Address(m)
    except ValueError:
        return False
    return True


def _phone(m: str) -> bool:
    digits = re.sub(r"\D", "", m)
    if m.startswith("+"):
        return 8 <= len(digits) <= 15
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", m) or re.fullmatch(r"\d{2}[./-]\d{2}[./-]\d{4}", m):
        return False  # dates
    return 9 <= len(digits) <= 15 and bool(re.search(r"[ .()-]", m))


_RULES: tuple[tuple[str, re.Pattern[str], Callable[[str], bool] | None], ...] = (
    ("email", _EMAIL, None),
    ("iban", _IBAN, iban_valid),
    ("credit_card", _CARD, _card),
    ("ipv6", _IPV6, _ipv6),
    ("ipv4", _IPV4, _ipv4),
    ("phone", _PHONE, _phone),
)


def redact_text(text: str) -> tuple[str, Counter[str]]:
    """``text`` with every PII match replaced by its placeholder, and the counts per kind."""
    counts: Counter[str] = Counter()
    for kind, pattern, check in _RULES:

        def replace(
            m: re.Match[str], kind: str = kind, check: Callable[[str], bool] | None = check
        ) -> str:
            if check is not None and not check(m.group(0)):
                return m.group(0)
            counts[kind] += 1
            return PLACEHOLDERS[kind]

        text = pattern.sub(replace, text)
    return text, counts


def scan_text(text: str) -> Counter[str]:
    """PII counts per kind in ``text`` (kinds with no match are absent)."""
    return redact_text(text)[1]
