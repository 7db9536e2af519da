"""Evaluation settings: ``HERALD_EVALUATION__<FIELD>`` environment variables (or ``evaluation:``
in herald.yaml once the main settings tree carries :class:`EvaluationSettings`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict

from herald.settings import EvaluationSettings

__all__ = ["EvaluationSettings", "evaluation_settings", "suite_search_paths"]


class _EvalEnv(EvaluationSettings, BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HERALD_EVALUATION__", extra="ignore")


def evaluation_settings(settings: Any = None) -> EvaluationSettings:
    """The ``evaluation`` section of Herald's settings when present, else the env variables."""
    section = getattr(settings, "evaluation", None)
    if isinstance(section, EvaluationSettings):
        return section
    return EvaluationSettings.model_validate(_EvalEnv().model_dump())


def suite_search_paths(home: Path, settings: EvaluationSettings) -> list[Path]:
    return [home / "evaluations" / "suites", *(Path(p) for p in settings.suite_paths)]
