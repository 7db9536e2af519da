"""RAG settings: ``HERALD_RAG__<FIELD>`` environment variables (or ``rag:`` in herald.yaml once
the main settings tree carries :class:`RagSettings` as its ``rag`` field)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict

from herald.settings import BUNDLED_EMBEDDER, RagSettings

__all__ = [
    "BUNDLED_EMBEDDER",
    "RagSettings",
    "default_catalog_url",
    "default_store_url",
    "rag_settings",
]


class _RagEnv(RagSettings, BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HERALD_RAG__", extra="ignore")


def rag_settings(settings: Any = None) -> RagSettings:
    """The ``rag`` section of Herald's settings when present, else ``HERALD_RAG__*`` variables."""
    section = getattr(settings, "rag", None)
    if isinstance(section, RagSettings):
        return section
    return RagSettings.model_validate(_RagEnv().model_dump())


def default_store_url(home: Path) -> str:
    return "local://" + str((home / "rag" / "stores").resolve())


def default_catalog_url(home: Path) -> str:
    return f"sqlite:///{(home / 'rag' / 'catalog.db').resolve()}"
