"""Job executors by name (the executor port of :mod:`herald.adapters`): ``inline`` and ``local``
built in, ``ray`` and ``kubernetes`` when their settings enable them, and third parties through
the ``herald.executors`` entry-point group. An entry point names a factory that takes an
:class:`ExecutorSetup` and returns an :class:`Executor` (or ``None`` when its settings leave it
off)::

    [project.entry-points."herald.executors"]
    slurm = "acme.herald_slurm:make_executor"
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from herald.adapters import Adapters
from herald.jobs.executors.base import Executor, JobFailure

if TYPE_CHECKING:
    from herald.services import Services
    from herald.settings import Settings

__all__ = [
    "EXECUTORS",
    "Executor",
    "ExecutorSetup",
    "JobFailure",
    "enabled_executors",
    "make_executors",
]


@dataclass(frozen=True)
class ExecutorSetup:
    """What an executor factory builds from: the worker's settings, the plugin modules every
    job process loads, and the worker's services (for jobs that run in its process)."""

    settings: Settings
    plugins: list[str]
    services: Services


ExecutorFactory = Callable[[ExecutorSetup], Executor | None]

EXECUTORS: Adapters[ExecutorFactory] = Adapters(
    "job executor",
    "herald.executors",
    {
        "inline": "herald.jobs.executors.factories:inline",
        "local": "herald.jobs.executors.factories:local",
        "ray": "herald.jobs.executors.factories:ray",
        "kubernetes": "herald.jobs.executors.factories:kubernetes",
    },
    check=callable,
)


def enabled_executors(settings: Settings) -> tuple[str, ...]:
    """Executors jobs may name: the built-ins their settings enable, and every other one."""
    off = {
        name
        for name, on in (
            ("ray", settings.jobs.ray.enabled),
            ("kubernetes", settings.jobs.kubernetes.enabled),
        )
        if not on
    }
    first = ("inline", "local")
    return (*first, *(n for n in EXECUTORS.names() if n not in off and n not in first))


def make_executors(setup: ExecutorSetup) -> dict[str, Executor]:
    """Fresh executors for one worker, by name."""
    built: dict[str, Executor] = {}
    for name in enabled_executors(setup.settings):
        executor = EXECUTORS.load(name)(setup)
        if executor is not None:
            built[name] = executor
    return built
