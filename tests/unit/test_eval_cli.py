"""``herald eval run --local`` prints the results table with confidence intervals."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from herald.cli.evaluation import app

SUITE = Path(__file__).resolve().parents[2] / "examples" / "eval" / "tiny.yaml"


def test_local_run_prints_a_table_with_cis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_HOME", str(tmp_path))
    monkeypatch.setenv("HERALD_SERVING__BUNDLED", "false")
    monkeypatch.setenv(
        "HERALD_SERVING__MODELS",
        json.dumps({"fake-qa": {"backend": "fake", "model": "x", "options": {"reply": "Paris"}}}),
    )
    r = CliRunner().invoke(
        app,
        ["run", "--local", "--target", "fake-qa", "--suite", str(SUITE)],
        env={"COLUMNS": "160"},
    )
    assert r.exit_code == 0, r.output
    assert "95% CI" in r.output and "reference.contains *" in r.output
    assert "[0, 0.6]" in r.output or "0.2" in r.output
    # the closing line names the evaluation whole, with what to type next
    assert re.search(r"^evaluation (\S+): .*herald eval show \1 --samples$", r.output, re.M)
    r = CliRunner().invoke(app, ["run", "--local", "--target", "fake-qa", "--suite", "nope"])
    assert r.exit_code == 1 and "suite 'nope' not found" in r.output
