"""The README's newcomer path, end to end, as a new user walks it: one real `herald up --load
examples/orders.py` (temporary HERALD_HOME, its generated admin key), the real CLI as
subprocesses, the README's Python snippets run as written, and the dashboard in real Chromium.

- Quickstart: `herald emit`, `herald events --follow` (read until the placed and the shipped
  order arrive), `herald flow <correlationid>`, `herald catalog`; the README's `Client` snippet.
- The model lifecycle in five commands, as the README lists them, with one change: the
  fine-tune gets `--set max_steps=2` (20 steps take ~5 min on 2 cores; two still train, evaluate,
  save and register the adapter through the same path). Then the README's openai-python snippet.
- The dashboard, opened and logged into as the README says: the emitted order's flow, the
  fine-tuned version with its lineage, and the jobs the lifecycle ran.

Commands and snippets are read from README.md, so the test breaks when the README drifts.
`herald demo` (the README's first block) runs against a real `herald up` in
tests/e2e/test_demo.py; it is not repeated here (it takes several minutes on its own).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.docs_blocks import ROOT, Block, blocks, commands, herald_args, logical_lines
from tests.e2e.test_demo import reuse_converted_model

pytestmark = pytest.mark.slow

README = ROOT / "README.md"
CHROMIUM = Path("/usr/bin/chromium")
# the fine-tune's one deviation from the README (CI time): 2 steps instead of 20
FINETUNE_OVERRIDES = ["--set", "max_steps=2"]


def readme_block(lang: str, containing: str) -> Block:
    found = [b for b in blocks(lang) if b.path == README and containing in b.text]
    assert len(found) == 1, f"README.md: expected one {lang} block with {containing!r}"
    return found[0]


def readme_commands(containing: str) -> list[list[str]]:
    """The herald command lines (arguments after `herald`) of the README's block."""
    block = readme_block("bash", containing)
    return [
        args
        for line in logical_lines(block)
        for tokens in commands(line)
        if (args := herald_args(tokens)) is not None
    ]


class Newcomer:
    """The README's reader: the CLI and Python from the repo, on the server's machine."""

    def __init__(self, url: str, home: Path, tmp: Path) -> None:
        self.tmp = tmp
        self.env = {**os.environ, "HERALD_URL": url, "HERALD_HOME": str(home),
                    "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}  # fmt: skip
        self.env.pop("HERALD_API_KEY", None)  # the key comes from $HERALD_HOME/admin.key

    def herald(self, *args: str, stdin: str | None = None, timeout: float = 120) -> str:
        run = subprocess.run([sys.executable, "-m", "herald.cli.main", *args], input=stdin,
                             capture_output=True, text=True, cwd=ROOT, env=self.env,
                             timeout=timeout)  # fmt: skip
        assert run.returncode == 0, f"herald {' '.join(args)}:\n{run.stdout}\n{run.stderr}"
        return run.stdout

    def follow(self, args: list[str], until: list[str], timeout: float = 60) -> str:
        """Run a streaming command until every string of ``until`` was printed, then stop it."""
        proc = subprocess.Popen([sys.executable, "-m", "herald.cli.main", *args], cwd=ROOT,
                                env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)  # fmt: skip
        lines: list[str] = []
        assert proc.stdout is not None
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
        reader.start()
        deadline = time.monotonic() + timeout
        try:
            while not all(u in "".join(lines) for u in until):
                assert proc.poll() is None, f"herald {' '.join(args)} exited:\n{''.join(lines)}"
                assert time.monotonic() < deadline, f"not printed: {until}\n{''.join(lines)}"
                time.sleep(0.1)
        finally:
            proc.terminate()
            proc.wait(10)
        return "".join(lines)

    def python(self, code: str, timeout: float = 300) -> str:
        path = self.tmp / "snippet.py"
        path.write_text(code)
        run = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                             cwd=self.tmp, env=self.env, timeout=timeout)  # fmt: skip
        assert run.returncode == 0, f"{code}\n---\n{run.stdout}\n{run.stderr}"
        return run.stdout


@pytest.fixture
def page() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install it with 'apt-get install -y chromium'")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)  # a shared 2-core machine: generous bounded waits
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        pg = browser.new_page(viewport={"width": 1280, "height": 800})
        pg.set_default_timeout(30_000)
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            yield pg
            assert errors == [], f"JavaScript errors on the pages: {errors}"
        finally:
            browser.close()


@pytest.mark.timeout(1200)
def test_the_readme_newcomer_path(server_factory: Any, page: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    # terminal 1: `make up ARGS="--load examples/orders.py"` is `herald up --load …`
    [up] = readme_commands('make up ARGS="--load')
    assert up == ["up", "--load", "examples/orders.py"]
    srv = server_factory([up[2]])
    reuse_converted_model(srv.home)  # the bundled model's safetensors copy, made once per machine
    srv.start(timeout=90)
    user = Newcomer(srv.url, srv.home, tmp_path)

    # ── quickstart ────────────────────────────────────────────────────────────────────────────
    emit, follow, flow, catalog = readme_commands("herald emit acme.order.placed")
    assert [emit[0], follow, flow[0], catalog] == [
        "emit",
        ["events", "--follow"],
        "flow",
        ["catalog"],
    ]
    published = user.herald(*emit)
    event_id = re.search(r"id=(\S+)", published).group(1)  # type: ignore[union-attr]
    cid = re.search(r"correlationid=(\S+)", published).group(1)  # type: ignore[union-attr]
    stream = user.follow(follow, until=["acme.order.placed", "acme.order.shipped"])
    assert '"order_id":"A-1"' in stream.replace(" ", "")
    tree = user.herald(flow[0], cid)
    assert tree.index("acme.order.placed") < tree.index("acme.order.shipped")
    types = user.herald(*catalog)
    assert "acme.order.placed" in types and "acme.order.shipped" in types

    client_snippet = readme_block("python", "from herald import Client").text
    out = user.python(client_snippet, timeout=120)
    assert "'acme.order.shipped'" in out and "'caused'" in out  # the flow: placed → shipped

    # ── the model lifecycle in five commands ──────────────────────────────────────────────────
    lifecycle = readme_commands("$H finetune")
    assert [c[:2] for c in lifecycle] == [
        ["finetune", "-f"], ["models", "show"], ["eval", "run"], ["rag", "ingest"],
        ["chat", "smollm2-135m-instruct"],
    ]  # fmt: skip
    finetune, show, evaluate, ingest, chat = lifecycle

    trained = user.herald(*finetune, *FINETUNE_OVERRIDES, timeout=600)
    assert "registered models:/smollm2-facts/1" in trained, trained
    versions = user.herald(*show)
    assert re.search(r"^\W*1\W.*\bready\b.*\blora\b", versions, re.M), versions
    lineage = user.herald(show[0], show[1], "smollm2-facts/1")  # the README's comment
    assert "models:/smollm2-135m-instruct/1" in lineage and "datasets:/facts-chat/" in lineage
    assert "finetune_event_id=" in lineage, lineage

    scores = user.herald(*evaluate, timeout=600)
    assert re.search(r"reference\.contains\W.*\d.*\[[\d.]+, [\d.]+\]", scores), scores  # a CI

    indexed = user.herald(*ingest, timeout=600)
    docs, chunks = map(int, re.search(r"(\d+) documents, (\d+) chunks in", indexed).groups())  # type: ignore[union-attr]
    assert docs >= 10 and chunks >= docs, indexed

    talk = user.herald(*chat, stdin="What is the capital of France?\n", timeout=300)
    answer = talk.split("you> ")[1].strip()
    assert answer, talk

    openai_snippet = readme_block("python", "from openai import OpenAI").text
    assert user.python(openai_snippet).strip()  # the model's answer

    # ── the dashboard ─────────────────────────────────────────────────────────────────────────
    page.goto(srv.url + "/")
    expect(page).to_have_url(srv.url + "/login")
    page.fill("input[name=api_key]", (srv.home / "admin.key").read_text().strip())
    page.click("button[type=submit]")
    # the lifecycle's messages fill the latest 50: filter the live events by the order's types
    page.fill("input[name=type]", "acme.order.placed,acme.order.shipped")
    page.click("form.filters button[type=submit]")
    row = page.locator(f'#events tr[data-id="{event_id}"]')
    expect(row).to_be_visible()
    row.locator("a.corr").click()  # the order's flow: placed → shipped
    expect(page.locator('#flow-canvas g.node[data-type="acme.order.placed"]')).to_be_visible()
    expect(page.locator('#flow-canvas g.node[data-type="acme.order.shipped"]')).to_be_visible()

    page.goto(srv.url + "/#/registry")
    page.locator("#models a", has_text="smollm2-facts").click()
    version = page.locator('#versions tr[data-version="1"]')
    expect(version).to_contain_text("smollm2-135m-instruct")  # lineage: the base model
    expect(version.locator('a[href^="#/jobs/"]')).to_be_visible()  # … and its training job

    page.goto(srv.url + "/#/jobs")
    for job in ("finetune", "evaluation.run", "rag.ingest"):
        expect(page.locator("#jobs a", has_text=job)).to_be_visible()
