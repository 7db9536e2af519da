"""Where RAG keeps its data by default (the ``rag`` section itself, :class:`RagSettings`, lives
in :mod:`herald.settings` with every other section)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["default_catalog_url", "default_store_url"]


def default_store_url(home: Path) -> str:
    return "local://" + str((home / "rag" / "stores").resolve())


def default_catalog_url(home: Path) -> str:
    return f"sqlite:///{(home / 'rag' / 'catalog.db').resolve()}"
