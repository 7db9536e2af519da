"""The services a sensor or job reaches other capabilities through.

The composition root (:class:`herald.bootstrap.Herald`) builds one :class:`Services` and the
sensor runner hands it to every handler as ``ctx.services``, so a sensor reads the settings and
the registry of the Herald that runs it — ``herald.yaml`` and programmatic ``Settings`` included —
instead of a process global or the environment alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from herald.artifacts.base import ArtifactStore
    from herald.bus.base import EventLog
    from herald.registry import Registry
    from herald.settings import Settings

__all__ = ["Services"]


@dataclass(frozen=True)
class Services:
    """Built once per process by the composition root; read-only for handlers."""

    settings: Settings
    registry: Registry
    artifacts: ArtifactStore
    event_log: EventLog
