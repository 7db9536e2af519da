"""model.registered → evaluation.requested: which suites a new version is evaluated on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from herald.errors import ConfigurationError
from herald.evaluation.jobs import on_model_registered
from herald.messages.envelope import Envelope
from herald.messages.lifecycle import ModelRegistered
from herald.registry import Registry
from herald.sensors.base import SensorContext
from herald.services import Services
from herald.settings import Settings


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    settings = Settings(home=tmp_path, evaluation={"on_register_suites": ["smoke"]})
    registry = Registry(f"sqlite:///{tmp_path / 'r.db'}")
    yield Services(settings, registry=registry)
    registry.close()


def suites_for(services: Services, **kw: object) -> list[tuple[str, str]]:
    reg = services.registry
    mv, _ = reg.register_model_version("m", artifact_uri="file:///a", kind="lora", **kw)  # type: ignore[arg-type]
    msg = ModelRegistered(name="m", version=mv.version, uri=f"models:/m/{mv.version}",
                          artifact_uri="file:///a", kind="lora", created=True)  # fmt: skip
    event = Envelope(type="model.registered", source="t", data={})
    ctx = SensorContext(event=event, sensor="t", services=services)
    return [(r.target, r.suite) for r in on_model_registered(msg, ctx)]


def test_a_version_is_evaluated_on_the_suites_its_finetune_was_watched_on(
    services: Services,
) -> None:
    got = suites_for(services, config={"eval_suites": ["tiny", "smoke"], "lora_r": 4})
    assert got == [("models:/m/1", "smoke"), ("models:/m/1", "tiny")]  # settings first, once each


def test_without_finetune_suites_the_settings_decide(services: Services) -> None:
    assert suites_for(services, config={"lora_r": 4}) == [("models:/m/1", "smoke")]


def test_a_version_tag_overrides_both(services: Services) -> None:
    got = suites_for(services, config={"eval_suites": ["tiny"]}, tags={"eval_suites": "a, b"})
    assert got == [("models:/m/1", "a"), ("models:/m/1", "b")]


def test_a_hand_made_context_without_services_says_what_it_needs() -> None:
    msg = ModelRegistered(name="m", version=1, uri="models:/m/1", artifact_uri="file:///a",
                          kind="lora", created=True)  # fmt: skip
    ctx = SensorContext(event=Envelope(type="model.registered", source="t", data={}), sensor="t")
    with pytest.raises(ConfigurationError, match=r"services=Services\(settings"):
        on_model_registered(msg, ctx)
