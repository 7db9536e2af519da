"""Issue 14's dashboard defects, measured in a real headless Chromium against a real `herald up`:
a long deployment name on the overview wraps at its hyphens (never letter by letter) at 1280 and
800 px; a RAG answer in the playground lists each source once; a job's hundred progress messages
are one node each per type in the flow graph."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import Server
from .test_dashboard import DOC_SHOTS, PLUGIN, ROOT, login, page, wait_until  # noqa: F401  (page: Chromium)

KEY = "hk_dashboard_views_key_0123456789"
LONG = "smollm2-facts-production-canary"
MODEL = "smollm2-facts"  # the split's labels: "smollm2-facts/1 90%"
HANDBOOK = ROOT / "examples" / "rag" / "handbook"
DOCS = ("vacation-policy.md", "sick-leave.md")
BOT = "handbook-bot"
REPLY = "Employees get 25 days [1] [2]."
STEPS = 50  # demo.curves reports job.progressed and training.progressed every step

pytestmark = pytest.mark.slow


def shots(tmp_path: Path) -> Path:
    """Where screenshots go: the docs' images with HERALD_UPDATE_SCREENSHOTS=1, else tmp."""
    return DOC_SHOTS if os.environ.get("HERALD_UPDATE_SCREENSHOTS") == "1" else tmp_path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the three views: two deployments (one with a long name) on the fake
    backend, and a handbook collection of two documents (hash embeddings: no model download)."""
    home = tmp_path_factory.mktemp("views")
    s = Server(
        home,
        [PLUGIN],
        {
            "HERALD_API_KEY": KEY,
            "HERALD_JOBS__DEFAULT_EXECUTOR": "inline",  # rag.ingest in the server: no torch start-up
            "HERALD_JOBS__OVERRIDE_LOCAL": "1",
            # the RAG chain's inner model: a fake chat model that cites both passages' markers
            "HERALD_SERVING__MODELS": json.dumps(
                {BOT: {"backend": "fake", "model": "fake", "options": {"reply": REPLY}}}
            ),
            "HERALD_SERVING__BUNDLED": "false",
        },
    )
    s.start()
    try:
        with s.client() as api:
            for v in (1, 2):
                reg = {"name": MODEL, "artifact_uri": (home / "models" / str(v)).as_uri()}
                r = api.post("/v1/messages", json={"type": "model.register", "data": reg})
                assert r.status_code == 202, r.text
            wait_until(lambda: api.get(f"/v1/registry/models/{MODEL}/versions/2").is_success)
            fake = {"backend": "fake", "options": {"reply": "stable answer"}}
            for name, targets in (
                (LONG, [(f"models:/{MODEL}/1", 90), (f"models:/{MODEL}/2", 10)]),
                ("chat", [(f"models:/{MODEL}/1", 100)]),
            ):
                body = {
                    "name": name,
                    "targets": [{"model": m, "weight": w, **fake} for m, w in targets],
                }
                r = api.post("/v1/deployments", json=body)
                assert r.status_code == 202, r.text
            body = {"name": "handbook", "embedding_model": "hash:64", "chunk_size": 64}
            r = api.post("/v1/collections", json=body)
            assert r.status_code == 201, r.text
            for doc in DOCS:
                source = {"source": str(HANDBOOK / doc)}
                r = api.post("/v1/collections/handbook/documents", json=source)
                assert r.status_code == 202, r.text
            wait_until(
                lambda: all(
                    api.get(f"/v1/deployments/{n}").json()["status"] == "ready"
                    for n in (LONG, "chat")
                ),
                60,
            )
            wait_until(
                lambda: len(api.get("/v1/collections/handbook/documents").json()["data"]) == 2,
                120,
            )
        yield s
    finally:
        s.stop()
        print(s.log.read_text(errors="replace")[-4000:])  # shown by pytest only on failure


# each character's line box top: where the browser broke the name into lines
LINE_TOPS = """(node) => {
  const text = node.firstChild, r = document.createRange(), tops = [];
  for (let i = 0; i < text.length; i++) {
    r.setStart(text, i); r.setEnd(text, i + 1);
    tops.push(Math.round(r.getBoundingClientRect().top));
  }
  return tops;
}"""


@pytest.mark.parametrize("width", [1280, 1220, 800])
def test_long_deployment_name_wraps_at_hyphens_not_letters(
    server: Server,
    page: Any,  # noqa: F811
    width: int,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    page.set_viewport_size({"width": width, "height": 800})
    login(page, server)
    row = page.locator(f'#overview-deployments tr[data-deployment="{LONG}"]')
    expect(row).to_contain_text("90%")
    name = row.locator("td").first.locator("a")
    tops: list[int] = name.evaluate(LINE_TOPS)
    assert len(tops) == len(LONG)
    breaks = [i for i in range(1, len(tops)) if tops[i] > tops[i - 1]]
    # a break only ever follows a hyphen: "smollm2-facts-" / "production-" / "canary"
    assert [LONG[i - 1] for i in breaks] == ["-"] * len(breaks), (width, breaks, tops)
    assert len(breaks) <= 2, (width, breaks)  # three lines at most: the column is not squeezed
    # the table stays inside its card (no sideways scrolling to read the traffic split)
    card = row.locator("xpath=ancestor::section[1]")
    sizes = card.evaluate("(c) => [c.scrollWidth, c.clientWidth]")
    assert sizes[0] <= sizes[1], sizes
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], widths  # nor does the page
    expect(name).to_have_attribute("title", LONG)  # the full name, whatever the layout
    split = row.locator(".split")
    assert split.bounding_box()["width"] >= 100  # the traffic split is still readable
    page.screenshot(path=str(tmp_path / f"overview-{width}.png"), full_page=True)


def test_rag_answer_lists_each_source_once(server: Server, page: Any, tmp_path: Path) -> None:  # noqa: F811
    from playwright.sync_api import expect

    login(page, server)
    page.goto(server.url + "/#/playground")
    model = f"rag/handbook@{BOT}"
    expect(page.locator(f'#pg-model option[value="{model}"]')).to_be_attached()
    page.select_option("#pg-model", model)
    page.fill("#pg-prompt", "How many vacation days and sick days do employees get?")
    with page.expect_response(lambda r: r.url.endswith("/v1/chat/completions")) as resp:
        page.click("#pg-form button[type=submit]")
    passages = resp.value.all_headers()["x-herald-rag-citations"]
    expect(page.locator("#pg-usage")).to_contain_text("completion tokens")
    sources = {c["source"] for c in json.loads(passages)}
    assert sources == {(HANDBOOK / d).as_uri() for d in DOCS}, sources
    answer = page.locator("#pg-transcript .msg.assistant")
    expect(answer.locator(".answer")).to_have_text(REPLY)
    expect(answer.locator(".citations li")).to_have_count(len(sources))
    text = answer.inner_text()
    for source in sources:
        assert text.count(source) == 1, (source, text)
    for doc in DOCS:
        assert text.count(doc) == 1, (doc, text)
    # the markers the answer used are marked cited on their source
    expect(answer.locator(".citations li.cited")).not_to_have_count(0)
    page.screenshot(path=str(tmp_path / "playground-rag-fake.png"), full_page=True)


def test_flow_graph_draws_one_progress_node_per_job(
    server: Server,
    page: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    with server.client() as api:
        r = api.post("/v1/messages", json={"type": "demo.train", "data": {"steps": STEPS}})
        assert r.status_code == 202, r.text
        flow_id = r.json()["correlationid"]
        wait_until(
            lambda: api.get(
                "/v1/messages", params={"type": "job.succeeded", "correlationid": flow_id}
            ).json()["data"],
            120,
        )
        full = api.get(f"/v1/flows/{flow_id}").json()
    assert len(full["nodes"]) > 2 * STEPS  # every progress message is a node of the full graph

    login(page, server)
    page.goto(f"{server.url}/#/flow/{flow_id}")
    canvas = page.locator("#flow-canvas")
    expect(canvas.locator('g.node[data-type="job.succeeded"]')).to_be_visible()
    progress = canvas.locator("g.node.progress")
    expect(progress).to_have_count(2)  # job.progressed and training.progressed, one node each
    for kind in ("job.progressed", "training.progressed"):
        node = canvas.locator(f'g.node.progress[data-type="{kind}"]')
        expect(node).to_have_attribute("data-count", str(STEPS))
        expect(node.locator("title")).to_contain_text(f"{STEPS} {kind} messages")
    expect(canvas.locator('g.node[data-type="job.progressed"]')).to_have_count(1)
    nodes = canvas.locator("g.node").count()
    assert nodes <= 8, nodes  # train, job.requested/started/succeeded, the job, 2 progress
    # a click shows the count, the last progress and a link to the job
    canvas.locator('g.node.progress[data-type="job.progressed"]').click()
    detail = page.locator("#flow-detail")
    expect(detail).to_contain_text(f"step {STEPS}/{STEPS}")
    expect(detail).to_contain_text("100%")
    [job] = [n["id"] for n in full["nodes"] if n["kind"] == "job"]
    expect(detail.locator("a")).to_have_attribute("href", "#/jobs/" + job.removeprefix("job:"))
    page.screenshot(path=str(shots(tmp_path) / "flow-progress.png"), full_page=True)
