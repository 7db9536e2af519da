"""Unit-test isolation: every test leaves Herald's process-wide registries as it found them."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from herald import plugins
from herald.jobs.registry import default_jobs
from herald.messages.catalog import default_catalog
from herald.sensors.base import default_registry


@pytest.fixture(autouse=True)
def _restore_global_registries() -> Iterator[None]:
    """Message classes, decorators and plugins register globally; undo that after each test."""
    types = dict(default_catalog._types)
    specs = dict(default_registry._specs)
    jobs = dict(default_jobs._jobs)
    loaded = dict(plugins._loaded)
    modules = set(sys.modules)
    try:
        yield
    finally:
        default_catalog._types.clear()
        default_catalog._types.update(types)
        default_registry._specs.clear()
        default_registry._specs.update(specs)
        default_jobs._jobs.clear()
        default_jobs._jobs.update(jobs)
        plugins._loaded.clear()
        plugins._loaded.update(loaded)
        for name in set(sys.modules) - modules:
            if name.startswith("herald_plugin_"):
                del sys.modules[name]


@pytest.fixture
def herald_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No HERALD_* variables, no ./herald.yaml and a private HERALD_HOME."""
    import os

    for key in list(os.environ):
        if key.startswith("HERALD_"):
            monkeypatch.delenv(key)
    cwd = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("HERALD_HOME", str(tmp_path_factory.mktemp("home")))
