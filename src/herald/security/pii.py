"""One PII policy: the detectors every edge uses (datasets, RAG ingestion, prompts, guardrails,
request logs, evaluation) and the kinds an operator turns on (``security.pii``).

Kinds, matched in this order (text claimed by one kind is not seen by the next):

============  ====================================================================================
email         ``local@domain.tld``
iban          ISO 13616: country code + check digits + BBAN, with or without spaces/dashes; cut at
              the country's registered length (so ``DE89 3704 0044 0532 0130 00 EUR`` stops before
              ``EUR``), confirmed by mod-97
credit_card   13-19 digits with optional space/dash groups; a known issuer prefix and Luhn
ssn           US ``AAA-GG-SSSS`` (area not 000/666/9xx, group not 00, serial not 0000); spaced or
              bare 9 digits only next to a keyword such as "SSN" or "social security"
ipv6 / ipv4   candidates confirmed by :mod:`ipaddress`
phone         international (``+`` or ``00``, 8-15 digits, spaces/dots/dashes, ``(0)`` trunk,
              parentheses), North American (``(415) 555-0132``, ``1-800-…``, bare 10 digits with a
              valid area code) and national trunk-``0`` numbers (``020 7946 0958``); dates,
              versions, prices and numbers inside longer numbers are not phones, and a nearby
              "order", "invoice", "ISBN", "id"… vetoes numbers that have no ``+`` prefix
============  ====================================================================================

Everything is a pure function of the text (no model): names of people are not detected; Herald
has no offline named-entity model to do that (docs/security.md).
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from herald.errors import HeraldError

__all__ = [
    "KIND_ALIASES",
    "PII_KINDS",
    "PLACEHOLDERS",
    "Detector",
    "PIIInPrompt",
    "PIIMatch",
    "PIIPolicy",
    "detector",
    "iban_valid",
    "luhn_valid",
    "normalize_kinds",
    "redact_text",
    "scan_text",
    "screen_prompt",
]

PII_KINDS = ("email", "iban", "credit_card", "ssn", "ipv6", "ipv4", "phone")
KIND_ALIASES: dict[str, tuple[str, ...]] = {
    "card": ("credit_card",),
    "ip": ("ipv6", "ipv4"),
    "ip_address": ("ipv6", "ipv4"),
    "phone_number": ("phone",),
}
PLACEHOLDERS = {
    "email": "[EMAIL]",
    "iban": "[IBAN]",
    "credit_card": "[CREDIT_CARD]",
    "ssn": "[SSN]",
    "ipv6": "[IP_ADDRESS]",
    "ipv4": "[IP_ADDRESS]",
    "phone": "[PHONE]",
}
# characters a streamed filter must hold back so that no PII string is released half-seen: the
# longest formats are an IBAN of 34 characters with separators (42), an IPv6 address with a zone
# (~50) and a formatted international phone (~30); e-mail addresses longer than this may escape
LONGEST_MATCH = 64
CONTEXT_CHARS = 48  # text before a number that the keyword rules read ("SSN", "order", ...)

# ISO 13616 registry: IBAN length per country
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23,
    "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip

Span = tuple[int, int]
Finder = Callable[[str], Iterator[Span]]


@dataclass(frozen=True, slots=True)
class PIIMatch:
    """One detected piece of personal data: ``text[start:end]`` of ``kind``."""

    start: int
    end: int
    kind: str


# checksums -----------------------------------------------------------------------------------
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
    """ISO 13616 check: move the first four characters to the end, letters → numbers, mod 97 == 1
    (and the country's registered length, when the country is known)."""
    s = re.sub(r"[ -]", "", iban).upper()
    if not 15 <= len(s) <= 34 or not s.isalnum() or not s.isascii():
        return False
    if not (s[:2].isalpha() and s[2:4].isdigit()):
        return False
    if IBAN_LENGTHS.get(s[:2], len(s)) != len(s):
        return False
    rearranged = s[4:] + s[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return int(number) % 97 == 1


# context -------------------------------------------------------------------------------------
_WORD = re.compile(r"[a-z#]+")
# words before a number that make it something else than personal data
_NOT_PII = frozenset(
    (
        "order", "orders", "invoice", "inv", "tracking", "track", "shipment", "isbn", "issn", "ean",
        "upc", "sku", "serial", "ref", "reference", "ticket", "case", "id", "uuid", "build",
        "version", "ver", "release", "rev", "revision", "v", "part", "model", "batch", "lot", "po",
        "transaction", "txn", "confirmation", "booking", "receipt", "item", "product", "patent",
        "timestamp", "epoch",
    )
)  # fmt: skip
_PHONE_WORDS = frozenset(
    (
        "call", "phone", "tel", "telephone", "mobile", "cell", "cellphone", "fax", "ring", "text",
        "sms", "whatsapp", "reach", "dial", "contact", "hotline", "number", "landline", "helpline",
    )
)  # fmt: skip
_CARD_WORDS = frozenset(
    (
        "card", "visa", "mastercard", "amex", "discover", "credit", "debit", "cc", "pan", "jcb",
        "maestro", "diners",
    )
)  # fmt: skip
_SSN = re.compile(
    r"\b(?:ssn|ss#|ssns|social\s+security(?:\s+(?:number|no|#))?|soc\.?\s*sec\.?|"
    r"tax\s*payer\s+id|taxpayer\s+identification|tin|itin)(?!\w)",
    re.IGNORECASE,
)


def _words_before(text: str, start: int, chars: int = 24) -> list[str]:
    return _WORD.findall(text[max(0, start - chars) : start].lower())


def _vetoed(text: str, start: int, positive: frozenset[str]) -> bool:
    """A "not personal data" word right before ``start`` (and no word that says it is)."""
    words = _words_before(text, start)[-3:]
    words = [w.lstrip("#") for w in words]
    return any(w in _NOT_PII for w in words) and not any(w in positive for w in words)


def _near(pattern: re.Pattern[str], text: str, start: int, end: int, chars: int = 40) -> bool:
    return pattern.search(text[max(0, start - chars) : end + 12]) is not None


# finders -------------------------------------------------------------------------------------
_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}\b"
)


def _emails(text: str) -> Iterator[Span]:
    for m in _EMAIL.finditer(text):
        yield m.span()


# the start of an IBAN, then alphanumerics in groups separated by one space or dash
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:[ -]?[A-Za-z0-9]){11,32}")


def _ibans(text: str) -> Iterator[Span]:
    for m in _IBAN.finditer(text):
        start = m.start()
        ends: list[int] = []  # end offset after each alphanumeric character
        for i, ch in enumerate(m.group(0)):
            if ch.isalnum():
                ends.append(start + i + 1)
        known = IBAN_LENGTHS.get(m.group(0)[:2].upper())
        lengths = [known] if known else range(min(34, len(ends)), 14, -1)
        for n in lengths:
            if n > len(ends):
                continue
            end = ends[n - 1]
            if end < len(text) and text[end].isalnum():
                continue  # the cut would split a word
            if iban_valid(text[start:end]):
                yield start, end
                break


_CARD = re.compile(r"(?<![\w.,+-])\d{1,19}+(?:(?:[ -]| {2}|\.)\d{1,19}+){0,7}(?![\w]|[.,-]\d)")


_DOTTED = re.compile(r"\d{4}(?:\.\d{4}){2,3}(?:\.\d{1,3})?|\d{4}\.\d{6}\.\d{5}")


def _issuer_ok(d: str) -> bool:
    n = len(d)
    if d[0] == "4":
        return n in (13, 16, 19)
    if d[:2] in ("34", "37"):
        return n == 15
    if d[0] == "5":
        return 16 <= n <= 19 if d[1] in "12345" else 12 <= n <= 19  # Mastercard / Maestro
    if d[0] == "2":
        return n == 16 and 2221 <= int(d[:4]) <= 2720
    if d[0] in "36":
        return 14 <= n <= 19
    return False


def _cards(text: str) -> Iterator[Span]:
    for m in _CARD.finditer(text):
        groups = [(g.start() + m.start(), g.end() + m.start()) for g in re.finditer(r"\d+", m[0])]
        best: Span | None = None
        for i in range(len(groups)):  # the longest run of whole groups that is a card number
            for j in range(len(groups), i, -1):
                digits = "".join(text[s:e] for s, e in groups[i:j])
                if not 13 <= len(digits) <= 19 or len(set(digits)) == 1:
                    continue
                span = (groups[i][0], groups[j - 1][1])
                if "." in text[span[0] : span[1]] and not _DOTTED.fullmatch(
                    text[span[0] : span[1]]
                ):
                    continue  # dots only in card groups (4111.1111.1111.1111), not IPs/versions
                if _issuer_ok(digits) and luhn_valid(digits):
                    if best is None or span[1] - span[0] > best[1] - best[0]:
                        best = span
                    break
        if best is not None and not _vetoed(text, best[0], _CARD_WORDS):
            yield best


_SSN_DASHED = re.compile(r"(?<![\w.,/-])(\d{3})-(\d{2})-(\d{4})(?![\w]|[.,/-]\d)")
_SSN_CONTEXT = re.compile(r"(?<![\w.,/-])(\d{3})[ .]?(\d{2})[ .]?(\d{4})(?![\w]|[.,/-]\d)")


def _ssn_parts_ok(area: str, group: str, serial: str) -> bool:
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _ssns(text: str) -> Iterator[Span]:
    seen: set[int] = set()
    for m in _SSN_DASHED.finditer(text):
        if _ssn_parts_ok(*m.groups()) and not _vetoed(text, m.start(), frozenset()):
            seen.add(m.start())
            yield m.span()
    if _SSN.search(text) is None:
        return
    for m in _SSN_CONTEXT.finditer(text):
        if m.start() in seen or not _ssn_parts_ok(*m.groups()):
            continue
        if _near(_SSN, text, m.start(), m.end()):
            yield m.span()


_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?"
    r"(?:%[A-Za-z0-9]+)?(?![\w:])"
)


def _ipv6s(text: str) -> Iterator[Span]:
    for m in _IPV6.finditer(text):
        s = m.group(0)
        groups = sum(1 for g in s.split("%")[0].split(":") if g)
        if s.count(":") < 2 or (groups < 2 and s != "::1"):
            continue
        try:
            ipaddress.IPv6Address(s.split("%")[0])
        except ValueError:
            continue
        yield m.span()


_IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w]|\.\d)")
_IP_VETO = frozenset({"version", "ver", "v", "release", "build", "rev", "revision", "firmware"})


def _ipv4s(text: str) -> Iterator[Span]:
    for m in _IPV4.finditer(text):
        try:  # 192.168.001.010 is written that way too: leading zeros are not a reason to miss
            ipaddress.IPv4Address(".".join(str(int(x)) for x in m.group(0).split(".")))
        except ValueError:
            continue
        before = _words_before(text, m.start(), 12)
        if before and before[-1] in _IP_VETO and text[m.start() - 1 : m.start()] != "@":
            continue
        yield m.span()


_SEP = r"[ .\-]"
# digit runs are possessive (``\d{1,15}+``): a run never splits, so no input can make the
# patterns backtrack exponentially
_RUN = r"(?:\(\d{1,5}+\)|\d{1,15}+)"
# + or 00, a country code, then digit groups (parentheses and the (0) trunk allowed)
_PHONE_INTL = re.compile(
    rf"(?<![\w+])(?:\(\+\d{{1,4}}+\)|(?:\+|\b00)[ ]?\d{{1,15}}+)(?:{_SEP}?{_RUN}){{0,8}}"
    rf"(?![\w]|[.,\-/]\d)"
)
# North American: optional 1, area code (parentheses allowed), exchange, line
_PHONE_NANP = re.compile(
    rf"(?<![\w+.,/\-])(?:1{_SEP}?)?(?:\(\d{{3}}\)[ ]?|\d{{3}}(?:{_SEP}|/)?)\d{{3}}{_SEP}?\d{{4}}"
    rf"(?![\w]|[.,\-/]\d)"
)
# national numbers with a trunk 0: 020 7946 0958, 01 23 45 67 89, (02) 9876 5432, 030 1234567
_PHONE_NATIONAL = re.compile(
    rf"(?<![\w+.,/\-])(?:\(0\d{{1,4}}+\)|\(0\)[ ]?\d{{1,4}}+|0\d{{1,11}}+)(?:{_SEP}?\d{{2,8}}+){{0,5}}"
    rf"(?![\w]|[.,\-/]\d)"
)
_DATE = re.compile(r"\d{1,2}([./-])\d{1,2}\1(?:(?:19|20)\d\d|\d{2})")
_YEAR_MONTH = re.compile(r"(?:19[89]\d|20\d\d)(?:0[1-9]|1[0-2])")


def _phone_intl(text: str, m: re.Match[str]) -> Span | None:
    s = m.group(0)
    digits = re.sub(r"\D", "", s.replace("(0)", ""))
    if s.startswith("(+") and not re.match(r"\(\+\d+\)[ .-]?\d", s):
        return None
    if s.startswith("00"):
        digits = digits[2:]
        if _vetoed(text, m.start(), _PHONE_WORDS) or not re.match(r"00 ?[1-9]\d{0,3}[ (]", s):
            return None  # 00 + country code, then a space: 0049 30 1234567
    if not 8 <= len(digits) <= 15:
        return None
    return m.span()


def _phone_nanp(text: str, m: re.Match[str]) -> Span | None:
    s = m.group(0)
    digits = re.sub(r"\D", "", s)
    if len(digits) == 11 and digits[0] != "1":
        return None
    area = digits[-10:-7]
    if area[0] in "01" or len(set(digits[-10:])) == 1:
        return None
    said = any(w in _PHONE_WORDS for w in _words_before(text, m.start(), 30))
    if s.isdigit() and _YEAR_MONTH.match(s) and not said:
        return None  # a compact timestamp (yyyymm…) more likely than a phone
    if _vetoed(text, m.start(), _PHONE_WORDS):
        return None
    return m.span()


def _phone_national(text: str, m: re.Match[str]) -> Span | None:
    s = m.group(0)
    if s.startswith("00"):
        return None  # international prefix: _PHONE_INTL's
    digits = re.sub(r"\D", "", s)
    if not 9 <= len(digits) <= 12:
        return None
    date = _DATE.match(s)
    if date is not None and (date.end() == len(s) or len(date.group(0)) == 10):
        return None  # 01.02.2024 (10:30), 15-01-24
    seps = {c for c in s if c in " .-"}
    said = any(w in _PHONE_WORDS for w in _words_before(text, m.start(), 30))
    if not seps and "(" not in s and not said:  # a bare 0-number: only if called a phone
        return None
    if _vetoed(text, m.start(), _PHONE_WORDS):
        return None
    return m.span()


def _phones(text: str) -> Iterator[Span]:
    claimed: list[Span] = []
    for pattern, check in (
        (_PHONE_INTL, _phone_intl),
        (_PHONE_NANP, _phone_nanp),
        (_PHONE_NATIONAL, _phone_national),
    ):
        for m in pattern.finditer(text):
            if any(s < m.end() and m.start() < e for s, e in claimed):
                continue
            span = check(text, m)
            if span is not None:
                claimed.append(span)
                yield span


_FINDERS: dict[str, Finder] = {
    "email": _emails,
    "iban": _ibans,
    "credit_card": _cards,
    "ssn": _ssns,
    "ipv6": _ipv6s,
    "ipv4": _ipv4s,
    "phone": _phones,
}
# the character a kind cannot match without (None: a digit): most text is skipped cheaply
_TRIGGERS: dict[str, str | None] = {
    "email": "@",
    "ipv6": ":",
    "iban": None,
    "credit_card": None,
    "ssn": None,
    "ipv4": None,
    "phone": None,
}
_DIGIT = re.compile(r"\d")
_MASK = "\x00"


# the detector --------------------------------------------------------------------------------
def normalize_kinds(kinds: Iterable[str] | None) -> tuple[str, ...]:
    """``kinds`` in detection order with aliases expanded (``card``, ``ip``); None: every kind.

    Raises ValueError naming the unknown kinds."""
    if kinds is None:
        return PII_KINDS
    wanted: set[str] = set()
    unknown: list[str] = []
    for k in kinds:
        key = k.strip().lower()
        if key in PII_KINDS:
            wanted.add(key)
        elif key in KIND_ALIASES:
            wanted.update(KIND_ALIASES[key])
        else:
            unknown.append(k)
    if unknown:
        raise ValueError(
            f"unknown PII kind(s) {unknown}; known: {', '.join(PII_KINDS)} "
            f"(aliases: {', '.join(KIND_ALIASES)})"
        )
    return tuple(k for k in PII_KINDS if k in wanted)


class Detector:
    """The detectors of ``kinds`` (default: all), applied in :data:`PII_KINDS` order."""

    def __init__(self, kinds: Iterable[str] | None = None) -> None:
        self.kinds = normalize_kinds(kinds)

    def find(self, text: str) -> list[PIIMatch]:
        """Non-overlapping matches, ordered by position."""
        if not text:
            return []
        digit = _DIGIT.search(text) is not None
        if not digit and "@" not in text and ":" not in text:
            return []
        found: list[PIIMatch] = []
        work = text
        for kind in self.kinds:
            trigger = _TRIGGERS[kind]
            if (trigger is None and not digit) or (trigger is not None and trigger not in text):
                continue
            spans = list(_FINDERS[kind](work))
            for s, e in spans:
                found.append(PIIMatch(s, e, kind))
            if spans:  # later kinds do not see text already claimed
                parts: list[str] = []
                pos = 0
                for s, e in sorted(spans):
                    parts.append(work[pos:s])
                    parts.append(_MASK * (e - s))
                    pos = e
                parts.append(work[pos:])
                work = "".join(parts)
        return sorted(found, key=lambda x: x.start)

    def redact(
        self, text: str, placeholders: dict[str, str] | None = None
    ) -> tuple[str, Counter[str]]:
        """``text`` with each match replaced by its placeholder, and the counts per kind."""
        matches = self.find(text)
        counts: Counter[str] = Counter(m.kind for m in matches)
        if not matches:
            return text, counts
        names = PLACEHOLDERS if placeholders is None else placeholders
        out: list[str] = []
        pos = 0
        for m in matches:
            out.append(text[pos : m.start])
            out.append(names.get(m.kind, "[REDACTED]"))
            pos = m.end
        out.append(text[pos:])
        return "".join(out), counts

    def scan(self, text: str) -> Counter[str]:
        """Counts per kind (kinds with no match are absent)."""
        return Counter(m.kind for m in self.find(text))


@lru_cache(maxsize=64)
def _cached(kinds: tuple[str, ...] | None) -> Detector:
    return Detector(kinds)


def detector(kinds: Iterable[str] | None = None) -> Detector:
    """A shared :class:`Detector` of ``kinds`` (None: all)."""
    return _cached(None if kinds is None else normalize_kinds(kinds))


def redact_text(text: str, kinds: Iterable[str] | None = None) -> tuple[str, Counter[str]]:
    """``text`` with every PII match replaced by its placeholder, and the counts per kind."""
    return detector(kinds).redact(text)


def scan_text(text: str, kinds: Iterable[str] | None = None) -> Counter[str]:
    """PII counts per kind in ``text`` (kinds with no match are absent)."""
    return detector(kinds).scan(text)


# the operator's policy (``security.pii``) ---------------------------------------------------
@dataclass(frozen=True)
class PIIPolicy:
    """``security.pii`` as the edges use it: the detector of the configured kinds and where
    redaction is forced."""

    kinds: tuple[str, ...] = PII_KINDS
    log_raw: bool = False
    redact_ingest: bool = False
    prompts: str = "warn"

    @classmethod
    def from_settings(cls, settings: Any) -> PIIPolicy:
        """From a :class:`~herald.settings.Settings` (its ``security.pii`` section)."""
        s = settings.security.pii
        return cls(normalize_kinds(s.kinds), s.log_raw, s.redact_ingest, s.prompts)

    @property
    def detector(self) -> Detector:
        return detector(self.kinds)

    def redact(self, text: str) -> tuple[str, Counter[str]]:
        return self.detector.redact(text)

    def scan(self, text: str) -> Counter[str]:
        return self.detector.scan(text)


class PIIInPrompt(HeraldError):
    """A prompt template contains personal data and ``security.pii.prompts`` is block (400)."""

    code = "pii_in_prompt"
    status = 400


def screen_prompt(template: str, policy: PIIPolicy) -> tuple[str, list[str]]:
    """``template`` as it may be saved under ``policy.prompts``, and warnings for the caller.

    warn: unchanged, one warning naming the kinds found; redact: PII replaced by placeholders;
    block: raises :class:`PIIInPrompt`; off: unchanged, no scan."""
    if policy.prompts == "off":
        return template, []
    redacted, counts = policy.redact(template)
    if not counts:
        return template, []
    found = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    if policy.prompts == "block":
        raise PIIInPrompt(
            f"the template contains personal data ({found}); remove it or use a variable "
            "(the server's security.pii.prompts policy is block)"
        )
    if policy.prompts == "redact":
        return redacted, [f"personal data replaced by placeholders: {found}"]
    return template, [
        f"the template contains personal data ({found}); it is stored as given — use a "
        "variable instead"
    ]
