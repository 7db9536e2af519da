"""An ``evaluation.requested`` that cannot run is refused when it is published (issue 14:
``POST /v1/messages`` stored a request for an unknown suite and its job failed seconds later;
``POST /v1/evaluations`` answered 400/404 without naming the field)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from herald.api import create_app
from herald.bus import EventQuery

from .conftest import Env

KEY = "test-key-0123456789abcdefghij"


@pytest.fixture
async def api(sqlite_env: Env) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    h = await sqlite_env.start()
    app = create_app(h, KEY, manage_lifecycle=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://test",
        headers={"Authorization": f"Bearer {KEY}"},
    ) as c:
        yield h, c


def bad_requests(tmp_path: Path) -> list[tuple[dict[str, Any], str, str]]:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: broken\ndataset: missing.jsonl\nengines: [{engine: reference}]\n")
    return [
        ({"suite": "no-such-suite"}, "suite", "suite 'no-such-suite' not found"),
        ({"suite": str(broken)}, "suite", "dataset: file not found"),
        ({"target": "models:/ghost@champion"}, "target", "ghost"),
        ({"target": str(tmp_path / "no" / "checkpoint")}, "target", "checkpoint folder not found"),
        ({"target": "https://8.8.8.8/v1"}, "target", "needs a model"),
        ({"target": "https://8.8.8.8/v1#m", "api_key_secret": "nope"}, "target", "nope"),
    ]


@pytest.mark.parametrize("case", range(6))
async def test_an_evaluation_that_cannot_run_is_refused_at_publish(
    api: tuple[Any, httpx.AsyncClient], tmp_path: Path, case: int
) -> None:
    h, c = api
    change, field, says = bad_requests(tmp_path)[case]
    data = {"target": "fake-qa", "suite": "tiny", **change}
    r = await c.post("/v1/messages", json={"type": "evaluation.requested", "data": data})
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    assert message.startswith(f"{field}: ") and says in message, message
    assert not await h.log.query(EventQuery(types=["evaluation.requested"]))  # nothing stored
    # the evaluations resource answers the same, naming the field
    r = await c.post("/v1/evaluations", json=data)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["message"] == message


async def test_an_evaluation_that_can_run_is_accepted(api: tuple[Any, httpx.AsyncClient]) -> None:
    # a served name and a deployment are left to the job: only asking them says if they answer
    _, c = api
    for target in ("fake-qa", "deployment:somewhere", "https://8.8.8.8/v1#m"):
        body = {"type": "evaluation.requested", "data": {"target": target, "suite": "tiny"}}
        r = await c.post("/v1/messages", json=body)
        assert r.status_code == 202, r.text
