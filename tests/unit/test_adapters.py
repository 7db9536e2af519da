"""One adapter registry for every pluggable port (herald.adapters): unknown names list the known
ones, a missing optional package names what to install, installed packages plug in through
entry points without replacing a built-in, and job executors are a port like the others."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

from herald import adapters
from herald.adapters import Adapters
from herald.bus.registry import open_event_log
from herald.errors import BackendUnavailable, ConfigurationError
from herald.jobs.executors import EXECUTORS, ExecutorSetup, enabled_executors, make_executors
from herald.jobs.executors.base import Executor
from herald.services import Services
from herald.serving.backends import backend_class
from herald.settings import Settings


def _entry_points(monkeypatch: pytest.MonkeyPatch, group: str, **targets: str) -> None:
    def fake(group: str) -> list[EntryPoint]:
        return [EntryPoint(n, t, group) for n, t in targets.items()] if group == wanted else []

    wanted = group
    monkeypatch.setattr(adapters, "entry_points", fake)


class Thing:
    pass


class Other:
    pass


THINGS: Adapters[type[Thing]] = Adapters(
    "thing",
    "herald.things",
    {"builtin": f"{__name__}:Thing", "missing": "no_such_pkg_xyz.mod:Thing"},
    check=lambda cls: isinstance(cls, type) and issubclass(cls, Thing),
    install_hint={"missing": 'pip install "herald[things]"'},
)


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(
        ConfigurationError, match=r"unknown thing 'nope' \(known: builtin, missing\)"
    ):
        THINGS.load("nope")


def test_a_missing_optional_package_names_the_extra() -> None:
    with pytest.raises(BackendUnavailable) as err:
        THINGS.load("missing")
    assert "no_such_pkg_xyz" in str(err.value) and 'pip install "herald[things]"' in str(err.value)


def test_an_entry_point_adds_an_adapter_but_cannot_replace_a_builtin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Mine(Thing):
        pass

    monkeypatch.setitem(globals(), "Mine", Mine)  # importable as tests.unit.test_adapters:Mine
    _entry_points(monkeypatch, "herald.things", mine=f"{__name__}:Mine", builtin=f"{__name__}:Mine")
    assert THINGS.load("mine") is Mine
    assert THINGS.load("builtin") is Thing  # the built-in wins
    assert THINGS.names() == ["builtin", "mine", "missing"]


def test_an_object_of_another_port_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _entry_points(monkeypatch, "herald.things", other=f"{__name__}:Other")
    with pytest.raises(ConfigurationError, match="is not a herald thing"):
        THINGS.load("other")


def test_run_time_registration_comes_first() -> None:
    THINGS.register("builtin", Other)
    try:
        with pytest.raises(ConfigurationError, match="is not a herald thing"):
            THINGS.load("builtin")
    finally:
        THINGS.unregister("builtin")
    assert THINGS.load("builtin") is Thing


def test_the_event_log_and_backend_ports_use_the_registry() -> None:
    with pytest.raises(ConfigurationError, match="no event-log adapter for 'foo://x'"):
        open_event_log("foo://x")
    with pytest.raises(ConfigurationError, match="unknown serving backend 'nope'"):
        backend_class("nope")
    assert backend_class("fake").__name__ == "FakeBackend"


class CountingExecutor(Executor):
    name = "counting"
    capacity = 1

    async def run(self, *args: Any, **kwargs: Any) -> dict[str, Any]:  # pragma: no cover
        return {}


def make_counting(setup: ExecutorSetup) -> Executor:
    return CountingExecutor()


def test_a_third_party_executor_plugs_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _entry_points(monkeypatch, "herald.executors", counting=f"{__name__}:make_counting")
    settings = Settings(home=tmp_path, database_url="memory://")
    assert enabled_executors(settings) == ("inline", "local", "counting")  # ray, k8s: off
    built = make_executors(ExecutorSetup(settings, [], Services(settings)))
    assert sorted(built) == ["counting", "inline", "local"]
    assert isinstance(built["counting"], CountingExecutor)
    assert "counting" in EXECUTORS


def test_cluster_executors_are_listed_when_their_settings_enable_them(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, database_url="memory://", jobs={"ray": {"enabled": True}})
    assert enabled_executors(settings) == ("inline", "local", "ray")
