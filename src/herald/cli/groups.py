"""Capability command groups of the ``herald`` CLI: the ``cli`` entries of every capability in
the manifest (:mod:`herald.capabilities`), each a ``(command, module)`` pair whose module defines
``app: typer.Typer``."""

from __future__ import annotations

from herald.capabilities import cli_groups

__all__ = ["cli_groups"]
