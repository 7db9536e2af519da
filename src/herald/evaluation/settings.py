"""Evaluation settings: ``HERALD_EVALUATION__<FIELD>`` environment variables (or ``evaluation:``
in herald.yaml once the main settings tree carries :class:`EvaluationSettings`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _shipped_suites() -> list[str]:
    """``examples/eval`` of a source checkout, when there is one."""
    here = Path(__file__).resolve().parents[3] / "examples" / "eval"
    return [str(here)] if here.is_dir() else []


class EvaluationSettings(BaseModel):
    """Defaults of evaluation runs and of the built-in evaluation sensors."""

    suite_paths: list[str] = Field(
        default_factory=_shipped_suites,
        description="Folders searched for suites given by name (<name>.yaml); "
        "$HERALD_HOME/evaluations/suites is always searched first.",
    )
    concurrency: int = Field(8, ge=1, le=256, description="Items evaluated at once (default).")
    request_timeout_s: float = Field(300.0, gt=0, description="Per-request timeout.")
    on_register: bool = Field(
        True, description="model.registered → evaluate the version on its configured suites."
    )
    on_register_suites: list[str] = Field(
        default_factory=list,
        description="Suites run for every registered version (a version's tag 'eval_suites', "
        "comma-separated, overrides). Empty: only tagged versions are evaluated.",
    )
    promotion: bool = Field(
        True,
        description="evaluation.completed → promote to `promote_alias` when significantly "
        "better than `champion_alias`.",
    )
    champion_alias: str = Field("champion", description="Alias the candidate is compared with.")
    promote_alias: str = Field("challenger", description="Alias given to a significant winner.")
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="Paired bootstrap confidence.")


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
