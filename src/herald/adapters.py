"""One registry for every pluggable port: event logs, buses, artifact stores, vector stores,
embedders, serving backends, evaluation engines and job executors.

Each port has one :class:`Adapters` with its built-ins (``"module:attr"`` targets, imported only
when first used, so heavy libraries load late) and an entry-point group where installed packages
add theirs::

    [project.entry-points."herald.serving_backends"]
    mybackend = "acme.serving:MyBackend"

Lookup order: adapters registered at run time (:meth:`Adapters.register`, for plugins and
tests), then the built-ins, then entry points — a package cannot silently replace a built-in.
An unknown name is a :class:`~herald.errors.ConfigurationError` listing the known ones; a
built-in whose optional dependency is missing is a :class:`~herald.errors.BackendUnavailable`
naming the extra to install. :mod:`herald.testing` holds a contract kit per port.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from herald.errors import BackendUnavailable, ConfigurationError, HeraldError

__all__ = ["Adapters"]

T = TypeVar("T")


class Adapters(Generic[T]):
    """The adapters of one port, by name."""

    def __init__(
        self,
        port: str,
        group: str,
        builtin: Mapping[str, str],
        *,
        check: Callable[[Any], bool] | None = None,
        install_hint: Mapping[str, str] | None = None,
        error: type[HeraldError] = ConfigurationError,
    ) -> None:
        self.port = port  # "serving backend", in messages
        self.group = group  # the entry-point group
        self.builtin = dict(builtin)
        self.check = check  # is a loaded object an adapter of this port?
        self.install_hint = dict(install_hint or {})
        self.error = error  # what an unknown name raises (e.g. SuiteError for engines)
        self._extra: dict[str, Any] = {}

    def register(self, name: str, target: Any) -> None:
        """Add ``target`` (an adapter, or ``"module:attr"``) under ``name`` at run time."""
        self._extra[name] = target

    def unregister(self, name: str) -> None:
        self._extra.pop(name, None)

    def _entry_points(self) -> dict[str, str]:
        return {ep.name: ep.value for ep in entry_points(group=self.group)}

    def targets(self) -> dict[str, Any]:
        """Every known name and what it loads, in lookup order (later ones lose)."""
        return {**self._entry_points(), **self.builtin, **self._extra}

    def names(self) -> list[str]:
        return sorted(self.targets())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.targets()

    def load(self, name: str) -> T:
        """The adapter registered under ``name``."""
        known = self.targets()
        if name not in known:
            raise self.error(
                f"unknown {self.port} {name!r} (known: {', '.join(sorted(known)) or 'none'})"
            )
        target = known[name]
        obj = (
            _import(target, self.port, name, self.install_hint.get(name))
            if isinstance(target, str)
            else target
        )
        if self.check is not None and not self.check(obj):
            raise ConfigurationError(f"{target} is not a herald {self.port}")
        loaded: T = obj
        return loaded


def _import(target: str, port: str, name: str, hint: str | None) -> Any:
    module, _, attr = target.partition(":")
    try:
        obj = import_module(module)
    except ImportError as exc:
        missing = f" ({exc.name})" if exc.name else ""
        raise BackendUnavailable(
            f"{port} {name!r} needs a missing package{missing}"
            + (f": {hint}" if hint else f": {exc}")
        ) from exc
    for part in attr.split(".") if attr else []:
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigurationError(f"{port} {name!r}: {target} does not exist") from None
    return obj
