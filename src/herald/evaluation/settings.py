"""Evaluation settings: the ``evaluation`` section of Herald's settings tree (``herald.yaml``,
``HERALD_EVALUATION__<FIELD>`` variables, or programmatic :class:`~herald.settings.Settings`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from herald.settings import EvaluationSettings, Settings

__all__ = ["EvaluationSettings", "evaluation_settings", "suite_search_paths"]


def evaluation_settings(settings: Any = None) -> EvaluationSettings:
    """The ``evaluation`` section of ``settings``; without them (a handler called with a
    hand-made context), the section of ``herald.yaml`` and ``HERALD_EVALUATION__*`` variables."""
    section = getattr(settings, "evaluation", None)
    if isinstance(section, EvaluationSettings):
        return section
    return Settings().evaluation


def suite_search_paths(home: Path, settings: EvaluationSettings) -> list[Path]:
    return [home / "evaluations" / "suites", *(Path(p) for p in settings.suite_paths)]
