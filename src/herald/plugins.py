"""Loading user plugins: Python files, importable modules and YAML rule files."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import traceback
from pathlib import Path

from herald.errors import PluginLoadError
from herald.messages.catalog import Catalog, default_catalog
from herald.sensors.base import SensorRegistry, default_registry

_loaded: dict[str, str] = {}


def _module_name(path: Path) -> str:
    digest = hashlib.sha1(str(path).encode(), usedforsecurity=False).hexdigest()[:8]
    stem = "".join(c if c.isalnum() else "_" for c in path.stem)
    return f"herald_plugin_{stem}_{digest}"


def _where(exc: BaseException, path: Path) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
    if isinstance(exc, SyntaxError) and exc.lineno:
        return f"{path}:{exc.lineno}"
    return f"{path}:{frames[-1].lineno}" if frames else str(path)


def load_plugin(
    ref: str,
    *,
    catalog: Catalog | None = None,
    registry: SensorRegistry | None = None,
) -> str:
    """Load one plugin; returns its module name. Loading the same file twice is a no-op."""
    catalog = catalog or default_catalog
    registry = registry or default_registry
    if ref.endswith((".yaml", ".yml")):
        from herald.sensors.rules import load_rules

        path = Path(ref).expanduser().resolve()
        if str(path) not in _loaded:
            load_rules(path, catalog, registry)
            _loaded[str(path)] = str(path)
        return str(path)
    if ref.endswith(".py") or "/" in ref or ref.startswith("."):
        path = Path(ref).expanduser().resolve()
        if not path.is_file():
            raise PluginLoadError(f"plugin file not found: {ref}")
        if str(path) in _loaded:
            return _loaded[str(path)]
        name = _module_name(path)
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise PluginLoadError(f"cannot load {path} as a Python module")
        module = importlib.util.module_from_spec(spec)
        module.__dict__["__herald_name__"] = path.stem
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(name, None)
            raise PluginLoadError(
                f"plugin {_where(exc, path)} failed to import: {type(exc).__name__}: {exc}"
            ) from exc
        _loaded[str(path)] = name
        return name
    try:
        importlib.import_module(ref)
    except Exception as exc:
        raise PluginLoadError(
            f"plugin module {ref!r} failed to import: {type(exc).__name__}: {exc}"
        ) from exc
    return ref


def load_plugins(refs: list[str]) -> list[str]:
    """Load plugins in order; raise :class:`PluginLoadError` naming the first that fails."""
    names = [load_plugin(r) for r in refs]
    from importlib.metadata import entry_points

    for ep in entry_points(group="herald.plugins"):
        try:
            ep.load()
        except Exception as exc:
            raise PluginLoadError(
                f"plugin entry point {ep.name} ({ep.value}) failed: {exc}"
            ) from exc
    return names
