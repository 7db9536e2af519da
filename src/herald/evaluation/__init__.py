"""The Omni-Evaluator: one request/result contract over many evaluation engines.

``evaluation.requested`` → the ``evaluation.run`` job → ``evaluation.completed`` with aggregate
scores, bootstrap confidence intervals and per-sample records (``store.py``). Engines are
plugins (``base.py``; built-ins in ``engines/``), suites are YAML (``suites.py``), targets are
reached through the OpenAI wire format (``targets.py``). See docs/guides/evaluation.md.
"""

from herald.evaluation.base import Engine, ItemContext, RunContext, engine_class, register_engine
from herald.evaluation.errors import ItemError, SuiteError, TargetError, TargetUnreachable
from herald.evaluation.runner import EvaluationPlan, run_evaluation
from herald.evaluation.store import EvaluationStore
from herald.evaluation.suites import Sample, Suite, load_samples, load_suite, parse_suite
from herald.evaluation.targets import OpenAIClient, TargetSpec, open_target, parse_target

__all__ = [
    "Engine",
    "EvaluationPlan",
    "EvaluationStore",
    "ItemContext",
    "ItemError",
    "OpenAIClient",
    "RunContext",
    "Sample",
    "Suite",
    "SuiteError",
    "TargetError",
    "TargetSpec",
    "TargetUnreachable",
    "engine_class",
    "load_samples",
    "load_suite",
    "open_target",
    "parse_suite",
    "parse_target",
    "register_engine",
    "run_evaluation",
]
