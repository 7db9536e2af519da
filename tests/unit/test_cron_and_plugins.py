"""``herald.schedule`` cron validation and plugin loading (files, modules, errors, idempotence)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

import herald
from herald.errors import ConfigurationError, PluginLoadError
from herald.plugins import load_plugin
from herald.sensors import SensorContext, SensorRegistry, default_registry
from herald.sensors.cron import tick_envelope, validate_cron

# --- herald.schedule ------------------------------------------------------------------------


@pytest.mark.parametrize("cron", ["*/5 * * * *", "0 2 * * *", "0 9 * * mon-fri", "@daily"])
def test_schedule_accepts_valid_cron(cron: str) -> None:
    registry = SensorRegistry()

    @herald.schedule(cron, name="tick", registry=registry)
    def tick() -> None:
        return None

    spec = registry.get("tick")
    assert spec is not None
    assert spec.kind == "cron"
    assert spec.cron == f"{cron}|UTC"
    assert spec.types == ()


@pytest.mark.parametrize("cron", ["", "* * * *", "61 * * * *", "0 24 * * *", "every day"])
def test_schedule_rejects_invalid_cron(cron: str) -> None:
    registry = SensorRegistry()
    with pytest.raises(ConfigurationError) as info:

        @herald.schedule(cron, name="bad", registry=registry)
        def bad() -> None:
            return None

    assert "schedule bad" in info.value.message
    assert f"invalid cron expression {cron!r}" in info.value.message
    assert "*/5 * * * *" in info.value.message  # shows a valid example
    assert registry.all() == []


@pytest.mark.parametrize("tz", ["Mars/Olympus", "", "../../etc/passwd"])
def test_schedule_rejects_unknown_timezone(tz: str) -> None:
    registry = SensorRegistry()
    with pytest.raises(ConfigurationError, match="unknown time zone"):

        @herald.schedule("0 * * * *", name="bad", timezone=tz, registry=registry)
        def bad() -> None:
            return None

    assert registry.all() == []


def test_validate_cron_accepts_a_real_zone() -> None:
    validate_cron("0 2 * * *", "Europe/Paris", "here")  # no error
    with pytest.raises(ConfigurationError, match=r"^here: "):
        validate_cron("nope", "UTC", "here")


def test_schedule_handler_passes_ctx_only_when_asked() -> None:
    registry = SensorRegistry()
    seen: list[object] = []

    @herald.schedule("0 2 * * *", name="with-ctx", timezone="Europe/Paris", registry=registry)
    def with_ctx(ctx: object) -> str:
        """Nightly."""
        seen.append(ctx)
        return "done"

    @herald.schedule("0 3 * * *", name="no-ctx", registry=registry)
    def no_ctx() -> str:
        return "plain"

    a, b = registry.get("with-ctx"), registry.get("no-ctx")
    assert a is not None and b is not None
    assert a.cron == "0 2 * * *|Europe/Paris"
    assert a.description == "Nightly."
    ctx = SensorContext(event=herald.Envelope(type="herald.cron.tick"), sensor="with-ctx")
    assert a.handler(None, ctx) == "done"
    assert seen == [ctx]
    assert b.handler(None, ctx) == "plain"
    assert with_ctx("x") == "done"  # the decorator returns the function unchanged


def test_tick_envelope_is_deterministic_per_tick() -> None:
    from datetime import UTC, datetime

    registry = SensorRegistry()

    @herald.schedule("0 * * * *", name="hourly", registry=registry)
    def hourly() -> None:
        return None

    spec = registry.get("hourly")
    assert spec is not None
    tick = datetime(2026, 1, 2, 3, 0, tzinfo=UTC)
    a, b = tick_envelope(spec, tick), tick_envelope(spec, tick)
    assert a.id == b.id == f"cron:hourly:{tick.isoformat()}"
    assert a.data == {"tick": tick.isoformat()}
    assert a.time == tick


# --- plugins --------------------------------------------------------------------------------


def plugin(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source).lstrip())
    return path


GOOD = """
import os
from pathlib import Path

import herald

Path(os.environ["HERALD_TEST_MARKER"]).open("a").write("imported\\n")


class Pinged(herald.Message, type="unit.plugin.pinged"):
    n: int


@herald.sensor(on=Pinged)
def pong(msg, ctx):
    return None


@herald.schedule("*/5 * * * *")
def every_five():
    return None
"""


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "imports.log"
    monkeypatch.setenv("HERALD_TEST_MARKER", str(path))
    return path


def test_load_plugin_registers_its_sensors_and_types(tmp_path: Path, marker: Path) -> None:
    path = plugin(tmp_path, "shop_rules.py", GOOD)
    name = load_plugin(str(path))

    assert name in sys.modules
    assert name.startswith("herald_plugin_shop_rules_")
    # sensors are named after the file stem, not the synthetic module name
    pong = default_registry.get("shop_rules.pong")
    tick = default_registry.get("shop_rules.every_five")
    assert pong is not None and pong.types == ("unit.plugin.pinged",)
    assert pong.origin == f"{name}:pong"
    assert tick is not None and tick.kind == "cron"
    assert "unit.plugin.pinged" in herald.messages.default_catalog
    assert marker.read_text() == "imported\n"


def test_loading_the_same_file_twice_is_a_no_op(
    tmp_path: Path, marker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = plugin(tmp_path, "twice.py", GOOD)
    first = load_plugin(str(path))
    specs = default_registry.all()

    monkeypatch.chdir(tmp_path)
    again = [load_plugin(str(path)), load_plugin("./twice.py"), load_plugin("twice.py")]

    assert again == [first, first, first]
    assert marker.read_text() == "imported\n"  # the module body ran once
    assert default_registry.all() == specs


def test_loading_the_same_rule_file_twice_is_a_no_op(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text('sensors:\n  - name: once\n    "on": unit.a.b\n    run_job: {name: p}\n')
    registry = SensorRegistry()
    assert load_plugin(str(rules), registry=registry) == str(rules.resolve())
    registry.remove("once")
    assert load_plugin(str(rules), registry=registry) == str(rules.resolve())
    assert registry.get("once") is None  # not compiled again


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = plugin(
        tmp_path,
        "broken.py",
        """
        import herald


        def ok():
            return 1

        def broken(:
            pass
        """,
    )
    with pytest.raises(PluginLoadError) as info:
        load_plugin(str(path))
    err = info.value
    assert isinstance(err, ConfigurationError)
    assert f"{path.resolve()}:7" in err.message
    assert "SyntaxError" in err.message
    assert not any(m.startswith("herald_plugin_broken_") for m in sys.modules)


def test_import_time_exception_names_file_and_line(tmp_path: Path) -> None:
    path = plugin(
        tmp_path,
        "explodes.py",
        """
        import herald

        SETTING = 1


        def helper():
            raise RuntimeError("no GPU today")


        helper()
        """,
    )
    with pytest.raises(PluginLoadError) as info:
        load_plugin(str(path))
    err = info.value
    assert f"{path.resolve()}:7" in err.message  # the line that raised
    assert "RuntimeError: no GPU today" in err.message
    assert isinstance(err.__cause__, RuntimeError)
    assert not any(m.startswith("herald_plugin_explodes_") for m in sys.modules)


def test_failed_plugin_can_be_loaded_after_it_is_fixed(tmp_path: Path, marker: Path) -> None:
    path = plugin(tmp_path, "later.py", "raise ImportError('missing dependency')\n")
    with pytest.raises(PluginLoadError, match=r"later\.py:1 failed to import: ImportError"):
        load_plugin(str(path))
    path.write_text(textwrap.dedent(GOOD).lstrip())
    load_plugin(str(path))
    assert default_registry.get("later.pong") is not None


def test_missing_plugin_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.py"
    with pytest.raises(PluginLoadError) as info:
        load_plugin(str(missing))
    assert "plugin file not found" in info.value.message
    assert str(missing) in info.value.message


def test_missing_plugin_module() -> None:
    with pytest.raises(PluginLoadError) as info:
        load_plugin("herald_no_such_plugin_module")
    assert "'herald_no_such_plugin_module'" in info.value.message
    assert "ModuleNotFoundError" in info.value.message


def test_missing_rule_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="rule file not found"):
        load_plugin(str(tmp_path / "absent.yaml"))
