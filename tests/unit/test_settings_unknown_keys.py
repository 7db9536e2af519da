"""A typo in a nested settings key is an error that names it, in herald.yaml and in HERALD_*
variables alike (only top-level keys were refused; ``serving.max_loaded_modelz`` was ignored
and Herald ran on the default)."""

from __future__ import annotations

from pathlib import Path

import pytest

from herald.errors import ConfigurationError
from herald.settings import load_settings


@pytest.mark.parametrize(
    ("yaml_text", "named"),
    [
        ("serving:\n  max_loaded_modelz: 3\n", "serving.max_loaded_modelz"),
        ("evaluation:\n  on_registr: false\n", "evaluation.on_registr"),
        ("security:\n  limits:\n    max_body_byte: 10\n", "security.limits.max_body_byte"),
        ("nope: 1\n", "nope"),
    ],
)
def test_an_unknown_key_in_herald_yaml_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, yaml_text: str, named: str
) -> None:
    config = tmp_path / "herald.yaml"
    config.write_text(yaml_text)
    monkeypatch.setenv("HERALD_CONFIG", str(config))
    with pytest.raises(ConfigurationError) as err:
        load_settings()
    assert named in str(err.value)


def test_an_unknown_nested_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_MONITORING__SCHEDUEL", "* * * * *")
    with pytest.raises(ConfigurationError) as err:
        load_settings()
    assert "monitoring.scheduel" in str(err.value).lower()


def test_known_nested_keys_still_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "herald.yaml"
    config.write_text("serving:\n  max_loaded_models: 3\nevaluation:\n  on_register: false\n")
    monkeypatch.setenv("HERALD_CONFIG", str(config))
    s = load_settings()
    assert s.serving.max_loaded_models == 3 and s.evaluation.on_register is False
