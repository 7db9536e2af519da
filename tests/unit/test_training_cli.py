"""``herald finetune``: configs are validated locally, before anything is sent."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from herald.cli.main import app

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.usefixtures("herald_env")
def test_bad_config_fails_before_contacting_a_server(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("base_model: m\ndataset: d\nmodel_name: x\nlora_target_modules: [q_proj]\n")
    r = CliRunner().invoke(app, ["finetune", "-f", str(f)])
    assert r.exit_code == 1
    assert "did you mean 'target_modules'" in r.output


@pytest.mark.usefixtures("herald_env")
def test_bad_override_and_missing_file(tmp_path: Path) -> None:
    example = str(ROOT / "examples" / "finetune" / "tiny-lora.yaml")
    r = CliRunner().invoke(app, ["finetune", "-f", example, "--set", "lora_r=-1"])
    assert r.exit_code == 1 and "lora_r" in r.output
    r = CliRunner().invoke(app, ["finetune", "-f", str(tmp_path / "none.yaml")])
    assert r.exit_code == 1 and "cannot read config" in r.output


@pytest.mark.usefixtures("herald_env")
def test_unreachable_server_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("HERALD_API_KEY", "k")
    example = str(ROOT / "examples" / "finetune" / "tiny-lora.yaml")
    r = CliRunner().invoke(app, ["finetune", "-f", example, "--no-wait"])
    assert r.exit_code == 1 and "cannot reach Herald" in r.output
