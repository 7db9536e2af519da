"""One manifest (herald.capabilities): the composition root, the API and the CLI read the same
list, and an installed package adds a capability through one entry point."""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import EntryPoint
from typing import Any

import pytest

from herald import capabilities as manifest
from herald.capabilities import Capability, capabilities, cli_groups, plugin_modules
from herald.errors import ConfigurationError


def test_every_declared_module_exists_and_has_its_part() -> None:
    for cap in capabilities():
        for module in cap.plugins:
            import_module(module)
        for module in cap.routes:
            assert callable(import_module(module).router), module
        for _, module in cap.cli:
            assert import_module(module).app is not None, module


def test_the_cli_has_exactly_the_manifests_groups() -> None:
    from herald.cli.main import app

    mounted = {g.name for g in app.registered_groups}
    assert {name for name, _ in cli_groups()} <= mounted


def router(h: object) -> str:  # a route module's contract, for the test below
    return f"router of {h}"


def test_the_api_mounts_the_routes_the_manifest_names(monkeypatch: pytest.MonkeyPatch) -> None:
    import herald.api.routes as routes

    monkeypatch.setattr(routes, "route_modules", lambda: (__name__, __name__))
    assert routes.capability_routers("h") == ["router of h", "router of h"]  # type: ignore[arg-type]


def _with_entry_points(monkeypatch: pytest.MonkeyPatch, *eps: EntryPoint) -> None:
    def fake(group: str) -> list[EntryPoint]:
        return list(eps) if group == manifest.ENTRY_POINT_GROUP else []

    monkeypatch.setattr(manifest, "entry_points", fake)


BILLING = Capability("billing", plugins=("json",), cli=(("billing", "json"),))


def test_an_installed_package_adds_a_capability(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_entry_points(
        monkeypatch,
        EntryPoint("billing", f"{__name__}:BILLING", manifest.ENTRY_POINT_GROUP),
    )
    assert capabilities()[-1] == BILLING
    assert plugin_modules()[-1] == "json"
    assert cli_groups()[-1] == ("billing", "json")


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (f"{__name__}:NOT_A_CAPABILITY", "not a herald.capabilities.Capability"),
        (f"{__name__}:CLASHING", "CLI command declared by two capabilities: models"),
        (f"{__name__}:TWICE", "capability declared twice: registry"),
        ("no_such_module_xyz:CAP", "failed to load"),
    ],
)
def test_a_bad_entry_point_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, target: str, message: str
) -> None:
    _with_entry_points(monkeypatch, EntryPoint("bad", target, manifest.ENTRY_POINT_GROUP))
    with pytest.raises(ConfigurationError) as err:
        capabilities()
    assert message in str(err.value)


NOT_A_CAPABILITY: Any = {"name": "x"}
CLASHING = Capability("clash", cli=(("models", "json"),))
TWICE = Capability("registry")
