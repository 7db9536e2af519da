"""model.registered → evaluation.requested: which suites a new version is evaluated on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from herald.evaluation.jobs import on_model_registered
from herald.messages.envelope import Envelope
from herald.messages.lifecycle import ModelRegistered
from herald.registry import Registry
from herald.registry import sensors as registry_sensors
from herald.sensors.base import SensorContext


@pytest.fixture
def reg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    monkeypatch.setenv("HERALD_HOME", str(tmp_path))
    monkeypatch.setenv("HERALD_EVALUATION__ON_REGISTER_SUITES", '["smoke"]')
    r = Registry(f"sqlite:///{tmp_path / 'r.db'}")
    registry_sensors.bind_registry(r)
    yield r
    registry_sensors.bind_registry(None)


def suites_for(reg: Registry, **kw: object) -> list[tuple[str, str]]:
    mv, _ = reg.register_model_version("m", artifact_uri="file:///a", kind="lora", **kw)  # type: ignore[arg-type]
    msg = ModelRegistered(name="m", version=mv.version, uri=f"models:/m/{mv.version}",
                          artifact_uri="file:///a", kind="lora", created=True)  # fmt: skip
    ctx = SensorContext(event=Envelope(type="model.registered", source="t", data={}), sensor="t")
    return [(r.target, r.suite) for r in on_model_registered(msg, ctx)]


def test_a_version_is_evaluated_on_the_suites_its_finetune_was_watched_on(reg: Registry) -> None:
    got = suites_for(reg, config={"eval_suites": ["tiny", "smoke"], "lora_r": 4})
    assert got == [("models:/m/1", "smoke"), ("models:/m/1", "tiny")]  # settings first, once each


def test_without_finetune_suites_the_settings_decide(reg: Registry) -> None:
    assert suites_for(reg, config={"lora_r": 4}) == [("models:/m/1", "smoke")]


def test_a_version_tag_overrides_both(reg: Registry) -> None:
    got = suites_for(reg, config={"eval_suites": ["tiny"]}, tags={"eval_suites": "a, b"})
    assert got == [("models:/m/1", "a"), ("models:/m/1", "b")]
