"""Writes ``bench/data/pii_labelled.jsonl``: the labelled PII set of ``bench/pii_recall.py``.

Each line: ``{"id", "split", "text", "entities": [{"kind", "start", "end"}]}``. Kinds: email,
phone, credit_card, iban, ssn, ip (IPv4 and IPv6 together). Positives put real-world formats
(national and international phones, spaced/dashed/compact cards and IBANs of many countries,
formatted and keyword-introduced SSNs, IPv4/IPv6 with ports, zones, brackets) into varied
sentences; hard negatives are numbers that look like PII and are not (dates, times, order and
tracking numbers, versions, prices, ISBNs, UUIDs, hashes, timestamps, MAC addresses, invalid
checksums, invalid SSN areas). Values are synthetic: card numbers, IBANs and SSNs are generated
with valid checksums / rules, no real person's data.

About a third of the lines (chosen by a seeded draw) are ``split: holdout``; the detectors'
rules were written against the ``dev`` lines only and the report shows both splits.

    .venv/bin/python bench/data/make_pii_labelled.py   # rewrites the file (deterministic)
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("pii_labelled.jsonl")
R = random.Random(13)

# --- value generators ---------------------------------------------------------------------------
FIRST = ["jane", "john", "maria", "li", "ahmed", "olga", "pierre", "sofia", "kenji", "amara"]
LAST = ["doe", "smith", "garcia", "wang", "khan", "ivanova", "dupont", "rossi", "tanaka", "okafor"]
DOMAINS = ["example.com", "mail.example.org", "corp.example.co.uk", "uni-example.edu",
           "example.de", "post.example.fr", "example.io", "service.example.net"]  # fmt: skip


def email() -> str:
    f, last, d = R.choice(FIRST), R.choice(LAST), R.choice(DOMAINS)
    style = R.randrange(7)
    if style == 0:
        return f"{f}.{last}@{d}"
    if style == 1:
        return f"{f[0]}{last}{R.randrange(10, 99)}@{d}"
    if style == 2:
        return f"{f}_{last}+billing@{d}"
    if style == 3:
        return f"{f.capitalize()}.{last.capitalize()}@{d}"
    if style == 4:
        return f"{f}.{last}@{d}".upper()
    if style == 5:
        return f"{f}-{last}.{R.randrange(1990, 2010)}@{d}"
    return f"support-{R.choice(['eu', 'us', 'team'])}@{d}"


def digits(n: int) -> str:
    return "".join(str(R.randrange(10)) for _ in range(n))


def phone() -> str:
    """A phone number in one of many national and international formats."""
    area = f"{R.randrange(2, 10)}{R.randrange(10)}{R.randrange(10)}"
    exch = f"{R.randrange(2, 10)}{digits(2)}"
    line = digits(4)
    fmts = [
        lambda: f"({area}) {exch}-{line}",
        lambda: f"{area}-{exch}-{line}",
        lambda: f"{area}.{exch}.{line}",
        lambda: f"{area} {exch} {line}",
        lambda: f"1-800-{exch}-{line}",
        lambda: f"+1 {area} {exch} {line}",
        lambda: f"+1 ({area}) {exch}-{line}",
        lambda: f"{area}{exch}{line}",
        lambda: f"+1{area}{exch}{line}",
        lambda: f"+44 20 {digits(4)} {digits(4)}",
        lambda: f"+44 (0)20 {digits(4)} {digits(4)}",
        lambda: f"020 {digits(4)} {digits(4)}",
        lambda: f"07700 {digits(6)}",
        lambda: f"+44 7700 {digits(6)}",
        lambda: f"+33 {R.randrange(1, 8)} {digits(2)} {digits(2)} {digits(2)} {digits(2)}",
        lambda: f"0{R.randrange(1, 8)} {digits(2)} {digits(2)} {digits(2)} {digits(2)}",
        lambda: f"0{R.randrange(6, 8)}.{digits(2)}.{digits(2)}.{digits(2)}.{digits(2)}",
        lambda: f"+49 (0)30 {digits(7)}",
        lambda: f"+49 30 {digits(8)}",
        lambda: f"030 {digits(8)}",
        lambda: f"0049 89 {digits(7)}",
        lambda: f"+49 151 {digits(8)}",
        lambda: f"0151 {digits(8)}",
        lambda: f"+31 6 {digits(8)}",
        lambda: f"06-{digits(8)}",
        lambda: f"+61 2 {digits(4)} {digits(4)}",
        lambda: f"(02) {digits(4)} {digits(4)}",
        lambda: f"0412 {digits(3)} {digits(3)}",
        lambda: f"+91 9{digits(4)} {digits(5)}",
        lambda: f"+81-3-{digits(4)}-{digits(4)}",
        lambda: f"03-{digits(4)}-{digits(4)}",
        lambda: f"+55 11 9{digits(4)}-{digits(4)}",
        lambda: f"+34 6{digits(2)} {digits(2)} {digits(2)} {digits(2)}",
        lambda: f"+39 06 {digits(4)} {digits(4)}",
        lambda: f"+86 13{digits(1)} {digits(4)} {digits(4)}",
        lambda: f"+353 1 {digits(3)} {digits(4)}",
        lambda: f"+41 44 {digits(3)} {digits(2)} {digits(2)}",
        lambda: f"+4915{digits(9)}",
    ]
    return R.choice(fmts)()


def luhn_complete(prefix: str, length: int) -> str:
    body = prefix + digits(length - len(prefix) - 1)
    for check in "0123456789":
        n = body + check
        total = 0
        for i, ch in enumerate(reversed(n)):
            d = int(ch)
            if i % 2 == 1:
                d = d * 2 - 9 if d * 2 > 9 else d * 2
            total += d
        if total % 10 == 0:
            return n
    raise AssertionError


def card() -> str:
    kind = R.randrange(6)
    if kind == 0:
        n = luhn_complete("4", 16)
    elif kind == 1:
        n = luhn_complete(R.choice(["51", "53", "55", "2221", "2720"]), 16)
    elif kind == 2:
        n = luhn_complete(R.choice(["34", "37"]), 15)
        return R.choice([f"{n[:4]} {n[4:10]} {n[10:]}", f"{n[:4]}-{n[4:10]}-{n[10:]}", n])
    elif kind == 3:
        n = luhn_complete(R.choice(["6011", "65"]), 16)
    elif kind == 4:
        n = luhn_complete("35", 16)
    else:
        n = luhn_complete("4", 16)
    g = [n[i : i + 4] for i in range(0, 16, 4)]
    return R.choice([" ".join(g), "-".join(g), n, " ".join(g)])


IBAN_SPECS = {  # country: (length, BBAN alphabet per position: 'n' digit, 'a' letter, 'c' alnum)
    "DE": "n" * 18, "GB": "aaaa" + "n" * 14, "FR": "n" * 10 + "c" * 11 + "nn",
    "ES": "n" * 20, "IT": "a" + "n" * 10 + "c" * 12, "NL": "aaaa" + "n" * 10, "BE": "n" * 12,
    "CH": "n" * 5 + "c" * 12, "AT": "n" * 16, "PL": "n" * 24, "SE": "n" * 20, "NO": "n" * 11,
    "IE": "aaaa" + "n" * 14, "PT": "n" * 21, "DK": "n" * 14, "FI": "n" * 14, "LU": "nnn" + "c" * 13,
}  # fmt: skip


def iban() -> str:
    cc = R.choice(list(IBAN_SPECS))
    bban = "".join(
        str(R.randrange(10))
        if t == "n"
        else chr(65 + R.randrange(26))
        if t == "a"
        else R.choice("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ")
        for t in IBAN_SPECS[cc]
    )
    num = int("".join(str(int(c, 36)) for c in bban + cc + "00"))
    s = f"{cc}{98 - num % 97:02d}{bban}"
    style = R.randrange(3)
    if style == 0:
        return " ".join(s[i : i + 4] for i in range(0, len(s), 4))
    return s if style == 1 else " ".join(s[i : i + 4] for i in range(0, len(s), 4))


def ssn_parts() -> tuple[str, str, str]:
    area = R.choice([x for x in range(1, 900) if x != 666])
    return f"{area:03d}", f"{R.randrange(1, 100):02d}", f"{R.randrange(1, 10000):04d}"


def ipv4() -> str:
    a = R.choice([10, 172, 192, 8, 34, 52, 81, 203, 100, 185])
    return f"{a}.{R.randrange(256)}.{R.randrange(256)}.{R.randrange(1, 255)}"


def ipv6() -> str:
    h = [f"{R.randrange(65536):x}" for _ in range(8)]
    return R.choice(
        [
            ":".join(h),
            f"2001:db8::{h[0]}:{h[1]}",
            f"fe80::{h[2]}:{h[3]}:{h[4]}:{h[5]}",
            f"2a00:1450:4001:{h[0]}::{h[1]}",
            f"::ffff:{ipv4()}",
            "::1",
            f"2001:0db8:{h[0]}:0000:0000:{h[1]}:{h[2]}:{h[3]}",
        ]
    )


# --- sentences -----------------------------------------------------------------------------------
LINES: list[dict[str, Any]] = []


def add(template: str, **values: tuple[str, str]) -> None:
    """``template`` with ``{name}`` fields filled by (kind, value); kind "" = not PII."""
    text = ""
    entities: list[dict[str, Any]] = []
    rest = template
    while "{" in rest:
        pre, _, after = rest.partition("{")
        name, _, rest = after.partition("}")
        text += pre
        kind, value = values[name]
        if kind:
            entities.append({"kind": kind, "start": len(text), "end": len(text) + len(value)})
        text += value
    text += rest
    LINES.append({"text": text, "entities": entities})


EMAIL_T = [
    "Contact me at {x}.", "Email: {x}", "Send the signed contract to {x} by Friday.",
    "From: Jane Doe <{x}>", "cc {x}; {y}", "mailto:{x}", "my address is {x}, thanks!",
    "Reply-To: {x}", "Please update my e-mail to {x} (old one bounces).",
    "User {x} reset the password at 14:02.", "({x})", "Newsletter unsubscribe: {x}",
]  # fmt: skip
PHONE_T = [
    "Call me on {x}.", "Tel: {x}", "My number is {x}", "Reach our office at {x} between 9 and 5.",
    "Mobile {x}", "{x} (mobile)", "Text {x} when you arrive", "Phone: {x} / Fax: {y}",
    "You can ring the hotline, {x}, any time.", "WhatsApp {x}", "contact: {x}",
    "Customer called from {x} about the delay.", "Emergency contact {x}",
]  # fmt: skip
CARD_T = [
    "Card number {x}", "Visa {x} exp 09/27", "Please charge {x} for the order.",
    "my credit card is {x} and the CVV is 123", "Paid with Mastercard {x}.",
    "CC: {x}", "debit card {x}, expiry 11/26", "Amex {x}", "card on file: {x}",
    "Customer read out {x} over the phone.",
]  # fmt: skip
IBAN_T = [
    "IBAN: {x}", "Please transfer to {x} EUR 250", "Account {x} BIC DEUTDEFFXXX",
    "Bank details: {x}, SWIFT COBADEFF", "Refund to {x}.", "pay {x} EUR", "IBAN {x} (Sparkasse)",
    "Wire the deposit to IBAN {x} by Monday.", "New account: {x} USD",
]  # fmt: skip
SSN_T = [
    "SSN: {x}", "Social security number {x}", "my SSN is {x}", "SSN {x}; DOB 1980-04-12",
    "Employee social security no. {x} on file", "ss# {x}", "The applicant's SSN ({x}) was verified.",
]  # fmt: skip
IP_T = [
    "Login from {x} failed.", "Server IP: {x}", "connect to {x}:8080", "ping {x}",
    "Blocked {x} after 5 attempts", "client_ip={x}", "host {x} is down",
    "Forwarded-For: {x}, {y}", "Allow from {x}/24", "ssh admin@{x}",
]  # fmt: skip

for _ in range(70):
    t = R.choice(EMAIL_T)
    add(t, x=("email", email()), y=("email", email()))
for _ in range(95):
    t = R.choice(PHONE_T)
    add(t, x=("phone", phone()), y=("phone", phone()))
for _ in range(60):
    add(R.choice(CARD_T), x=("credit_card", card()))
for _ in range(60):
    add(R.choice(IBAN_T), x=("iban", iban()))
for _ in range(30):  # formatted SSNs, with or without a keyword
    a, g, s = ssn_parts()
    t = R.choice([*SSN_T, "Record: {x}", "{x} is on the W-2 form", "tax form lists {x}"])
    add(t, x=("ssn", f"{a}-{g}-{s}"))
for _ in range(22):  # spaced or bare, with a keyword
    a, g, s = ssn_parts()
    add(R.choice(SSN_T), x=("ssn", R.choice([f"{a}{g}{s}", f"{a} {g} {s}"])))
for _ in range(40):
    add(R.choice(IP_T), x=("ip", ipv4()), y=("ip", ipv4()))
for _ in range(25):
    t = R.choice(IP_T).replace("{x}:8080", "[{x}]:8080")
    add(t, x=("ip", ipv6()), y=("ip", ipv6()))
add("link-local {x} on the LAN", x=("ip", "fe80::1ff:fe23:4567:890a%eth0"))

# mixed lines: several kinds in one text
for _ in range(25):
    add(
        "Name: J. Doe, phone {p}, email {e}, card {c}, IBAN {i}, from {ip}.",
        p=("phone", phone()),
        e=("email", email()),
        c=("credit_card", card()),
        i=("iban", iban()),
        ip=("ip", ipv4()),
    )

# --- hard negatives ------------------------------------------------------------------------------
NEG: list[str] = [
    "Meeting on 2024-01-15 at 12:30:45.", "Due 15/01/2024, paid 01.02.2024.", "Deadline: 12-31-2025",
    "Logged at 2024-01-15T12:30:45Z", "timestamp 1700000000", "epoch 1712345678 ms 1712345678123",
    "build 20240115123045", "Released version 1.2.3 (2023).", "Upgrade to v2.10.4 or 10.0.19045.2364",
    "Python 3.11.7 and Node 20.11.1", "Price: $1,299.99 incl. VAT", "Total € 2.499,00",
    "1 299 000 EUR budget", "Order #123-456-7890 shipped", "Order no. 4001234567 is delayed",
    "Invoice INV-2024-000123", "ISBN 978-3-16-148410-0", "ISBN 0-306-40615-2",
    "ISBN-13: 9780306406157", "uuid 123e4567-e89b-12d3-a456-426614174000",
    "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "commit 5313f52a8d1c9e0b7f6a4c3d2e1f0a9b8c7d6e5f", "Tracking 1Z999AA10123456784",
    "USPS tracking 9400111899223197428490", "MAC 00:1A:2B:3C:4D:5E", "at 48.8566, 2.3522",
    "pi is 3.14159265358979", "Case #2024-0115-0042 closed", "Patent US 10,123,456 B2",
    "ZIP 94105-1234", "HTTP 404 after 3000 ms", "room 1205, floor 12", "Flight LH 400 at gate B22",
    "ref 5551234567", "Employee ID 555-123-4567", "Part number 4111-1111-1111",
    "card 4111 1111 1111 1112 was declined (test)", "IBAN GB82WEST12345698765433 (checksum wrong)",
    "SSN 000-12-3456 is invalid", "666-12-3456 is not issued", "ID 900-12-3456",
    "version 1.2.3.4", "300.1.1.1 is not an address", "1.2.3.4.5", "time 12:30:45:678",
    "std::vector<int> and a::b::c", "ratio 16:9 and 4:3", "Score 123 + 456 = 579",
    "3000 metres and 1 000 000 people", "Catalogue 1234567890", "id 1234567890",
    "SKU 20012345678", "lot 123456789", "serial 123456789", "batch 0123456789",
    "Account balance 123456789.00", "Population 8 336 817", "Coordinates 40.7128 -74.0060",
    "Temperature 21.5°C at 09:45", "Range 100-200-300-400", "Between 1990 and 2024",
    "chapter 3.2.1, page 104", "Q3 2024 revenue 12.4M", "12345 Main St, Springfield",
    "Year 2023/2024 budget", "EAN 4006381333931", "UPC 036000291452", "GTIN 00012345600012",
    "confirmation 8472-9183-7740", "booking ref ABC123DEF", "transaction 7712 8834 9921 0045 11",
    "Receipt 0042-2024-0915", "Model RX-7800-XT", "DOI 10.1000/182", "arXiv:2401.01234",
    "RFC 7231 section 6.5.4", "port 8080 and 443", "IPv4 has 4294967296 addresses",
    "1,234,567,890 requests", "20.0.0 release notes", "chmod 0755 file", "umask 022",
    "Date: Mon, 15 Jan 2024 12:30:45 +0000", "+0100 offset", "GMT+01:00",
    "The 2024-2025 season", "Call 911", "dial 112 in the EU", "extension 4021",
]  # fmt: skip
for text in NEG:
    LINES.append({"text": text, "entities": []})
for _ in range(40):  # generated look-alikes: dates, times, versions, amounts, order ids
    kind = R.randrange(8)
    y, m, d = R.randrange(1990, 2030), R.randrange(1, 13), R.randrange(1, 29)
    text = [
        f"on {y}-{m:02d}-{d:02d} at {R.randrange(24):02d}:{R.randrange(60):02d}",
        f"valid until {d:02d}/{m:02d}/{y}",
        f"release {R.randrange(1, 20)}.{R.randrange(30)}.{R.randrange(200)}",
        f"order #{digits(10)} shipped on {d:02d}.{m:02d}.{y}",
        f"total ${R.randrange(1, 99)},{digits(3)}.{digits(2)}",
        f"invoice {y}-{digits(6)}",
        f"tracking number {digits(12)}",
        f"ticket {digits(3)}-{digits(3)}-{digits(4)}",
    ][kind]
    LINES.append({"text": text, "entities": []})


# --- "wild": hand-written formats the generator does not produce (always holdout; written
# before they were ever run through the detectors) ------------------------------------------------
WILD: list[tuple[str, dict[str, tuple[str, str]]]] = [
    ("call {x}", {"x": ("phone", "+1.415.555.0132")}),
    ("UK office {x}", {"x": ("phone", "(+44) 20 7946 0958")}),
    ("phone {x}", {"x": ("phone", "+44-20-7946-0958")}),
    ("fax {x}", {"x": ("phone", "415/555-0132")}),
    ("link {x}", {"x": ("phone", "tel:+14155550132")}),
    ("Moscow desk {x}", {"x": ("phone", "+7 (495) 123-45-67")}),
    ("Moscow desk {x}", {"x": ("phone", "+7 495 123 45 67")}),
    ("free line {x}", {"x": ("phone", "8 (800) 555-35-35")}),
    ("HK {x}", {"x": ("phone", "+852 2345 6789")}),
    ("Singapore {x}", {"x": ("phone", "+65 6123 4567")}),
    ("Dubai {x}", {"x": ("phone", "+971 4 123 4567")}),
    ("London {x}", {"x": ("phone", "(0)20 7946 0958")}),
    ("call {x} ext. 12", {"x": ("phone", "(415) 555-0132")}),
    ("write {x}", {"x": ("email", "jane.doe@sub.example.museum")}),
    ("write {x}", {"x": ("email", "o'brien@example.ie")}),
    ("write {x}", {"x": ("email", "first.last@xn--mller-kva.de")}),
    ("card {x}", {"x": ("credit_card", "4111.1111.1111.1111")}),
    ("card {x}", {"x": ("credit_card", "4111  1111  1111  1111")}),
    ("iban {x}", {"x": ("iban", "de89 3704 0044 0532 0130 00")}),
    ("iban {x}", {"x": ("iban", "DE89-3704-0044-0532-0130-00")}),
    ("IBAN:{x}", {"x": ("iban", "GB29NWBK60161331926819")}),
    ("SSN#{x}", {"x": ("ssn", "123-45-6789")}),
    ("SSN:{x}", {"x": ("ssn", "123456789")}),
    ("social security: {x}", {"x": ("ssn", "078-05-1121")}),
    ("route {x}", {"x": ("ip", "10.0.0.1")}),
    ("net {x}/8 and {y}", {"x": ("ip", "10.0.0.0"), "y": ("ip", "2001:db8:85a3::8a2e:370:7334")}),
    ("peer {x}", {"x": ("ip", "192.168.001.010")}),
    ("Reach me: {x} or {y}", {"x": ("phone", "+49 171 2345678"), "y": ("email", "a@b.co")}),
]
for template, values in WILD:
    add(template, **values)
    LINES[-1]["wild"] = True
WILD_NEG = [
    "Version 4.18.2-1 of build 2024.01.15", "Meeting 10:00-11:30 in room 4.12",
    "ISBN 978 3 16 148410 0", "GTIN-14 10012345678902", "Invoice 2024/0001234",
    "SSN field left blank; 123 people applied", "order 4111 1111 1111 1111 (test card)",
]  # fmt: skip
for text in WILD_NEG:
    LINES.append({"text": text, "entities": [], "wild": True})


def main() -> None:
    rows = []
    for i, line in enumerate(LINES):
        split = "holdout" if line.pop("wild", False) or R.random() < 0.33 else "dev"
        rows.append({"id": i, "split": split, **line})
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    print(f"wrote {len(rows)} lines to {OUT}")


if __name__ == "__main__":
    main()
