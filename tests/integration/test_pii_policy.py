"""One PII policy over HTTP (issue 13): a chat request whose prompt and reply carry PII leaves
no raw PII in the request log at rest — the files of an embedded Herald and the herald_requests
table on PostgreSQL — unless ``security.pii.log_raw`` is set; the streamed reply is redacted
even where a number is split across deltas; feedback comments and prompt templates follow the
same policy."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from herald.api import create_app
from herald.bootstrap import Herald
from herald.settings import Settings

KEY = "k-pii-0123456789abcdef0123"
# the fake backend streams this word by word: every number below arrives split over deltas
REPLY = (
    "Sure. Call +33 1 23 45 67 89 or +49 (0)30 1234567 or 5551234567, pay to "
    "DE89 3704 0044 0532 0130 00 EUR, my SSN is 123456789 and mail jo.doe@example.com thanks"
)
PROMPT = "I am Ann, SSN 078-05-1120, card 4111 1111 1111 1111, phone +44 (0)20 7946 0958"
RAW = [
    "+33 1 23 45 67 89", "1234567", "5551234567", "3704 0044", "123456789", "jo.doe@example",
    "078-05-1120", "4111 1111", "7946 0958",
]  # fmt: skip


@pytest.fixture(params=["files", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "files":
        return f"sqlite:///{tmp_path / 'h.db'}"
    return str(request.getfixturevalue("fresh_postgres_url"))


@asynccontextmanager
async def started(
    tmp_path: Path, database_url: str, **pii: Any
) -> AsyncIterator[tuple[Herald, httpx.AsyncClient]]:
    settings = Settings(
        home=tmp_path,
        database_url=database_url,
        serving={
            "bundled": False,
            "registry": False,
            "models": {"fake": {"backend": "fake", "model": "f", "options": {"reply": REPLY}}},
            "guardrails": [
                {"name": "pii", "type": "pii", "action": "redact", "direction": "output"}
            ],
        },
        security={"pii": pii},
    )
    h = Herald(settings)
    app = create_app(h, KEY, manage_lifecycle=False)
    await h.start()
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {KEY}"}
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers=headers
        ) as c:
            yield h, c
    finally:
        await h.stop()


async def chat(c: httpx.AsyncClient, stream: bool) -> str:
    body = {"model": "fake", "messages": [{"role": "user", "content": PROMPT}], "stream": stream}
    r = await c.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    if not stream:
        return str(r.json()["choices"][0]["message"]["content"])
    text = ""
    for line in r.text.splitlines():
        if line.startswith("data: {"):
            chunk = json.loads(line[6:])
            if chunk["choices"]:
                text += chunk["choices"][0]["delta"].get("content") or ""
    return text


def stored_text(h: Herald) -> str:
    """Every stored request-log line as written (file bytes, or the table's line column)."""
    h.request_log.flush()
    folder = h.settings.home / "serving" / "requests"
    if folder.is_dir() and any(folder.iterdir()):
        return "".join(p.read_text("utf-8") for p in sorted(folder.iterdir()))
    return "\n".join(json.dumps(x) for x in h.services.request_log.read())


@pytest.mark.parametrize("stream", [False, True])
async def test_request_log_at_rest_has_no_raw_pii(
    tmp_path: Path, database_url: str, stream: bool
) -> None:
    async with started(tmp_path, database_url) as (h, c):
        answer = await chat(c, stream)
        assert answer == (
            "Sure. Call [PHONE] or [PHONE] or [PHONE], pay to [IBAN] EUR, my SSN is [SSN] and "
            "mail [EMAIL] thanks"
        )
        stored = stored_text(h)
        assert '"status": 200' in stored and "[SSN]" in stored and "[CREDIT_CARD]" in stored
        assert [x for x in RAW if x in stored] == []


async def test_log_raw_keeps_the_text_for_operators_who_opt_in(
    tmp_path: Path, database_url: str
) -> None:
    async with started(tmp_path, database_url, log_raw=True) as (h, c):
        await chat(c, stream=True)
        stored = stored_text(h)
        assert "078-05-1120" in stored and "4111 1111 1111 1111" in stored


async def test_feedback_comments_are_redacted_at_rest(tmp_path: Path) -> None:
    async with started(tmp_path, f"sqlite:///{tmp_path / 'h.db'}") as (h, c):
        r = await c.post(
            "/v1/feedback",
            json={"response_id": "r-1", "thumbs": "down", "comment": "call me: 415-555-0132"},
        )
        assert r.status_code == 201, r.text
        assert r.json()["comment"] == "call me: [PHONE]"
        assert [f["comment"] for f in h.services.monitoring.feedback()] == ["call me: [PHONE]"]


@pytest.mark.parametrize(
    ("mode", "status", "template"),
    [
        ("warn", 201, "Write to jane@example.com about {{ topic }}"),
        ("redact", 201, "Write to [EMAIL] about {{ topic }}"),
        ("block", 400, None),
    ],
)
async def test_prompt_templates_follow_the_policy(
    tmp_path: Path, mode: str, status: int, template: str | None
) -> None:
    async with started(tmp_path, f"sqlite:///{tmp_path / 'h.db'}", prompts=mode) as (_, c):
        body = {"name": "mail", "template": "Write to jane@example.com about {{ topic }}"}
        r = await c.post("/v1/prompts", json=body)
        assert r.status_code == status, r.text
        if template is None:
            err = r.json()["error"]
            assert err["code"] == "pii_in_prompt" and "jane@" not in err["message"]
        else:
            assert r.json()["template"] == template and "1 email" in r.json()["warnings"][0]
