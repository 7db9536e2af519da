"""`herald approvals grant|deny` report the decision in plain English (issue 14: "denyed")."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from herald.cli import monitoring


@pytest.mark.parametrize(("command", "printed"), [("deny", "denied"), ("grant", "granted")])
def test_the_decision_is_reported_in_english(
    monkeypatch: pytest.MonkeyPatch, command: str, printed: str
) -> None:
    calls: list[tuple[str, str]] = []

    def fake_request(method: str, path: str, **_: Any) -> dict[str, Any]:
        calls.append((method, path))
        return {"event": {"id": "evt-1"}}

    monkeypatch.setattr(monitoring, "_request", fake_request)
    monkeypatch.setattr(monitoring, "resolve_id", lambda c, kind, given: given)  # a whole id
    result = CliRunner().invoke(monitoring.approvals_app, [command, "ap-1"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{printed} ap-1: evt-1"
    assert calls == [("POST", f"/v1/approvals/ap-1/{command}")]
