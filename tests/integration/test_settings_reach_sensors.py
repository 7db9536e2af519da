"""The settings of the Herald that runs a sensor reach it (issue 15): programmatic ``Settings``
and ``herald.yaml`` decide what the evaluation sensors do, not only ``HERALD_EVALUATION__*``
variables (``evaluation_settings()`` without arguments read the environment alone, so
``evaluation:`` in herald.yaml and ``Settings(evaluation=…)`` were ignored by the on-register and
promotion sensors)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from herald import Herald
from herald.bus import EventQuery
from herald.messages.lifecycle import ModelRegister
from herald.settings import Settings, load_settings

ON_REGISTERED = "herald.evaluation.on_registered"


@pytest.fixture(autouse=True)
def no_evaluation_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in [n for n in os.environ if n.startswith("HERALD_EVALUATION__")]:
        monkeypatch.delenv(name)


async def suites_requested(h: Herald, artifact: Path, **tags: str) -> list[str]:
    """The suites the on-register sensor asks for when a version is registered."""
    await h.start(workers=False)  # sensors only: the evaluation jobs never run
    try:
        env = await h.emit(
            ModelRegister(name="m", artifact_uri=artifact.as_uri(), kind="full", tags=tags)
        )
        cid = env.correlationid
        assert h.runner is not None
        for _ in range(400):
            registered = await h.log.query(
                EventQuery(types=["model.registered"], correlationid=cid)
            )
            cursor = {s["name"]: s["cursor"] for s in h.runner.status()}[ON_REGISTERED]
            if registered and cursor >= registered[0].seq:  # the sensor has handled it
                got = await h.log.query(
                    EventQuery(types=["evaluation.requested"], correlationid=cid)
                )
                return sorted(e.data["suite"] for e in got)
            await asyncio.sleep(0.05)
        raise AssertionError("model.registered was never handled by the on-register sensor")
    finally:
        await h.stop()


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return folder


async def test_programmatic_settings_reach_the_on_register_sensor(
    tmp_path: Path, artifact: Path
) -> None:
    settings = Settings(
        home=tmp_path / "home",
        database_url=f"sqlite:///{tmp_path / 'h.db'}",
        evaluation={"on_register_suites": ["smoke", "tiny"]},
    )
    assert await suites_requested(Herald(settings), artifact) == ["smoke", "tiny"]


async def test_herald_yaml_reaches_the_on_register_sensor(
    tmp_path: Path, artifact: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "herald.yaml"
    config.write_text("evaluation:\n  on_register_suites: [tiny]\n")
    monkeypatch.setenv("HERALD_CONFIG", str(config))
    monkeypatch.setenv("HERALD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HERALD_DATABASE_URL", f"sqlite:///{tmp_path / 'h.db'}")
    assert await suites_requested(Herald(load_settings()), artifact) == ["tiny"]


async def test_programmatic_settings_turn_the_on_register_sensor_off(
    tmp_path: Path, artifact: Path
) -> None:
    settings = Settings(
        home=tmp_path / "home",
        database_url=f"sqlite:///{tmp_path / 'h.db'}",
        evaluation={"on_register": False, "on_register_suites": ["smoke"]},
    )
    # a tagged version is evaluated whenever the sensor is on (the environment's default)
    assert await suites_requested(Herald(settings), artifact, eval_suites="tiny") == []
