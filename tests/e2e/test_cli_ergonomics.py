"""The CLI against a real `herald up` at 80 columns (issue 14, "CLI ergonomics"): every id kind
takes a unique prefix, ambiguous and unknown prefixes are one clear line, every show/list
command's ``--json`` parses, and every table line fits 80 columns with ids whole and errors
cut after a whole word."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from herald.cli.main import app
from herald.evaluation.store import EvaluationStore
from herald.registry import Registry
from tests.e2e.conftest import Server

from .cli_ergonomics_plugin import REFUSAL
from .test_cli_server import ROOT

pytestmark = pytest.mark.slow
PLUGINS = [
    str(ROOT / "tests" / "integration" / "jobs_plugin.py"),
    str(ROOT / "tests" / "e2e" / "cli_ergonomics_plugin.py"),
]
JOB_ERROR = (
    "the checkpoint folder of step one hundred was not written because the disk of the "
    "worker was full when the job tried to save it"
)
EVALS = ("e0a1" + "1" * 28, "e0a1" + "2" * 28)  # share a four-character prefix
RUNS = ("ergo-run-alpha", "ergo-run-beta")


class Cli:
    def __init__(self, server: Server, home: Path) -> None:
        self.env = {
            "HERALD_URL": server.url,
            "HERALD_API_KEY": server.key,
            "HERALD_HOME": str(home),
            "COLUMNS": "80",
        }

    def __call__(self, *args: str, code: int = 0) -> Any:
        result = CliRunner().invoke(app, list(args), env=self.env)
        assert result.exit_code == code, (args, result.output)
        assert "Traceback" not in result.output
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)

    def table(self, *args: str) -> str:
        shown = self(*args).stdout
        wide = [line for line in shown.splitlines() if len(line) > 80]
        assert not wide, (args, wide)
        return str(shown)


def _wait(what: str, check: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _shared_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _unique(mine: str, other: str) -> str:
    """The shortest prefix of ``mine`` (4 characters at least) that ``other`` lacks, plus 2."""
    return mine[: max(len(_shared_prefix(mine, other)) + 2, 6)]


def _words_intact(shown: str, text: str) -> None:
    """No word of ``text`` appears cut in ``shown`` (a token that is a proper prefix of one of
    its words, and not a word itself)."""
    words = set(text.split())
    for token in shown.split():
        bare = token.rstrip("…")
        if bare and bare not in words:
            assert not any(w.startswith(bare) for w in words), (token, shown)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("ergonomics") / "home"
    server = Server(
        home,
        PLUGINS,
        {
            "HERALD_SENSORS__MAX_ATTEMPTS": "1",
            "HERALD_JOBS__MAX_ATTEMPTS": "1",
            "HERALD_SERVING__BUNDLED": "false",
        },
    )
    server.start(timeout=90)
    try:
        with server.client() as c:
            jobs = [
                c.post("/v1/jobs", json={"name": n, "params": p, "executor": "inline"}).json()["id"]
                for n, p in (("square", {"n": 3}), ("explode", {"reason": JOB_ERROR}))
            ]
            pokes = [
                c.post("/v1/messages", json={"type": "test.ergonomics.poke", "data": {"n": i}})
                for i in range(2)
            ]
            flows = [p.json()["correlationid"] for p in pokes]
            approvals = [
                c.post(
                    "/v1/messages",
                    json={
                        "type": "approval.requested",
                        "data": {
                            "action_type": "model.promote",
                            "action": {"name": "m", "version": i, "alias": "champion"},
                            "reason": "the accuracy of the candidate rose above the floor",
                        },
                    },
                ).json()["id"]
                for i in (1, 2)
            ]
            _wait(
                "jobs",
                lambda: all(
                    c.get(f"/v1/jobs/{j}").json()["status"] in ("succeeded", "failed") for j in jobs
                ),
            )
            dead = _wait(
                "dead letters",
                lambda: (lambda d: d if len(d) == 2 else None)(
                    c.get("/v1/dead-letters").json()["data"]
                ),
            )
        reg = Registry(f"sqlite:///{home / 'herald.db'}")
        for i, run in enumerate(RUNS):
            reg.create_run(run, name="sweep", params={"lr": 0.1 * (i + 1)})
            reg.log_metrics(run, 1, {"loss": 2.0 - i})
        reg.close()
        store = EvaluationStore(EvaluationStore.default_path(home))
        for i, eid in enumerate(EVALS):
            store.begin(eid, suite="qa", target=f"models:/demo/{i + 1}")
            store.finish(
                eid,
                status="completed",
                metrics={"exact": {"value": 0.5 + i / 4, "n": 4, "errors": 0}},
                primary_metric="exact",
                passed=True,
            )
        store.close()
        cli = Cli(server, home)
        key = cli.json("keys", "create", "ergonomics-team")["id"]
        yield {
            "cli": cli,
            "jobs": jobs,
            "flows": flows,
            "approvals": approvals,
            "dead": [d["id"] for d in dead],
            "key": key,
        }
    finally:
        server.stop()


def test_tables_fit_80_columns_with_ids_whole(seeded: dict[str, Any]) -> None:
    cli = seeded["cli"]
    jobs = cli.table("jobs")
    assert all(j in jobs for j in seeded["jobs"])
    _words_intact(jobs, JOB_ERROR)
    assert "checkpoint" in jobs  # the error is there, from its start (wrapped)
    dead = cli.table("dead-letters")
    assert all(d in dead for d in seeded["dead"])
    _words_intact(dead, REFUSAL)
    assert "refused" in dead or "downstream" in dead
    approvals = cli.table("approvals", "list")
    assert all(a in approvals for a in seeded["approvals"])
    evals = cli.table("eval", "list")
    assert all(e in evals for e in EVALS)
    assert EVALS[0] in cli.table("eval", "leaderboard", "qa")
    runs = cli.table("runs", "list")
    assert all(r in runs for r in RUNS)
    assert seeded["key"] in cli.table("keys", "list")
    assert "grumpy" in cli.table("sensors")
    assert "approval.requested" in cli.table("catalog")
    cli.table("runs", "compare", *RUNS)
    cli.table("eval", "compare", *EVALS)
    events = cli.table("events", "-n", "50")
    assert "test.ergonomics.poke" in events


def test_every_id_kind_takes_a_unique_prefix(seeded: dict[str, Any]) -> None:
    cli = seeded["cli"]
    # evaluations: show and compare
    assert cli.json("eval", "show", EVALS[0][:6])["evaluation"]["id"] == EVALS[0]
    compared = cli.json("eval", "compare", EVALS[0][:6], EVALS[1][:6])
    assert compared["comparisons"][0]["candidate"] == EVALS[1]
    # runs: show, metrics, compare
    assert cli.json("runs", "show", "ergo-run-a")["id"] == RUNS[0]
    assert cli.json("runs", "metrics", "ergo-run-b")["loss"][0]["value"] == 1.0
    assert [r["id"] for r in cli.json("runs", "compare", "ergo-run-a", "ergo-run-b")["runs"]] == [
        *RUNS
    ]
    # jobs
    square, explode = seeded["jobs"]
    assert cli.json("jobs", "show", _unique(square, explode))["id"] == square
    # flows (correlation ids)
    flow, other_flow = seeded["flows"]
    graph = cli.json("flow", _unique(flow, other_flow))
    assert {n["correlationid"] for n in graph["nodes"] if "correlationid" in n} <= {flow}
    assert graph["nodes"]
    # dead letters: replay
    dead, other_dead = seeded["dead"]
    assert cli.json("dead-letters", "replay", _unique(dead, other_dead))["id"] == dead
    # approvals: grant
    granted, other = seeded["approvals"]
    decided = cli.json("approvals", "grant", _unique(granted, other))
    assert decided["event"]["data"]["approval_id"] == granted
    # keys: revoke
    key = seeded["key"]
    revoked = cli.json("keys", "revoke", key[:6])
    assert revoked["id"] == key and revoked["revoked_at"]


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (("eval", "show"), "evaluation"),
        (("runs", "show"), "run"),
        (("jobs", "logs"), "job"),
        (("dead-letters", "replay"), "dead letter"),
        (("keys", "revoke"), "API key"),
        (("approvals", "deny"), "approval request"),
        (("flow",), "flow"),
    ],
)
def test_an_unknown_id_is_one_clear_line(
    seeded: dict[str, Any], args: tuple[str, ...], what: str
) -> None:
    result = seeded["cli"](*args, "zzzz9999", code=1)
    assert f"no {what} 'zzzz9999'" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1


def test_an_ambiguous_prefix_names_the_candidates(seeded: dict[str, Any]) -> None:
    cli = seeded["cli"]
    said = cli("eval", "show", "e0a1", code=1).output
    assert "is ambiguous" in said and EVALS[0] in said and EVALS[1] in said
    said = cli("runs", "metrics", "ergo-run", code=1).output
    assert "is ambiguous" in said and all(r in said for r in RUNS)
    common = _shared_prefix(*seeded["jobs"])
    if len(common) >= 4:  # ids made in the same minute share their first characters
        said = cli("jobs", "show", common, code=1).output
        assert "is ambiguous" in said and all(j in said for j in seeded["jobs"])


@pytest.mark.parametrize(
    "args",
    [
        ("jobs",),
        ("dead-letters",),
        ("sensors",),
        ("catalog",),
        ("approvals", "list"),
        ("eval", "list"),
        ("eval", "leaderboard", "qa"),
        ("runs", "list"),
        ("runs", "show", RUNS[0]),
        ("runs", "metrics", RUNS[0]),
        ("keys", "list"),
        ("models", "list"),
        ("datasets", "list"),
        ("deploy", "list"),
        ("monitors", "list"),
        ("prompts", "list"),
        ("rag", "list"),
    ],
)
def test_json_output_parses_whole(seeded: dict[str, Any], args: tuple[str, ...]) -> None:
    data = seeded["cli"].json(*args)
    assert isinstance(data, list | dict)
    if args == ("jobs",):
        explode = next(j for j in data if j["name"] == "explode")
        assert JOB_ERROR in explode["error"]  # whole, not cut to the table's width
    if args == ("dead-letters",):
        assert any(REFUSAL in d["error"] for d in data), data  # (one may be replayed by now)
