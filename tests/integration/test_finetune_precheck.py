"""A ``finetune.requested`` that cannot run is refused when it is published (issue 14:
``herald finetune --no-wait`` with a missing data set or an unknown base model exited 0 and
the job failed seconds later). Driven through ``POST /v1/messages``, as the CLI publishes it."""

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
ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "data" / "facts-instruction.csv"


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


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from herald.models.testing import tiny_llama

    return tiny_llama(tmp_path_factory.mktemp("tiny") / "m")


def request(tiny: Path, **kw: Any) -> dict[str, Any]:
    return {"base_model": str(tiny), "dataset": str(DATA), "model_name": "tiny", **kw}


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"base_model": "no-such-model"}, "base_model", "no model 'no-such-model'"),
        ({"base_model": "models:/ghost@champion"}, "base_model", "ghost"),
        ({"dataset": "no-such-dataset"}, "dataset", "no data set 'no-such-dataset'"),
        ({"dataset": "datasets:/ghost/3"}, "dataset", "ghost"),
        ({"dataset": str(DATA.with_name("missing.csv"))}, "dataset", "no readable file"),
        ({"eval_suites": ["no-such-suite"]}, "eval_suites", "no-such-suite"),
    ],
)
async def test_a_request_that_cannot_run_is_refused_at_publish(
    api: tuple[Any, httpx.AsyncClient],
    tiny: Path,
    change: dict[str, Any],
    field: str,
    says: str,
) -> None:
    h, c = api
    r = await c.post(
        "/v1/messages", json={"type": "finetune.requested", "data": request(tiny, **change)}
    )
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    assert message.startswith(field) and says in message
    assert not await h.log.query(EventQuery(types=["finetune.requested"]))  # nothing stored


async def test_a_request_that_can_run_is_accepted(
    api: tuple[Any, httpx.AsyncClient], tiny: Path
) -> None:
    _, c = api
    body = {"type": "finetune.requested", "data": request(tiny, eval_suites=["tiny"])}
    r = await c.post("/v1/messages", json=body)
    assert r.status_code == 202, r.text
