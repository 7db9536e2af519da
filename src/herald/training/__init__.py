"""Fine-tuning: LoRA / QLoRA / full fine-tuning of causal LMs as a Herald job.

``finetune.requested`` → sensor ``training.finetune`` → job ``finetune`` → ``training.progressed``
… → ``finetune.completed``. The job's signature (:func:`herald.training.job.finetune`) is the
config schema; :func:`load_finetune_config` reads a YAML file against it. Importing this package
is cheap: torch, transformers and peft load inside the job.
"""

from herald.training.config import load_finetune_config, parse_overrides
from herald.training.errors import FinetuneConfigError, TrainingCancelled, TrainingError

__all__ = [
    "FinetuneConfigError",
    "TrainingCancelled",
    "TrainingError",
    "load_finetune_config",
    "parse_overrides",
]
