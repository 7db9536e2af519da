"""Where a run keeps its checkpoints, and which one a retried attempt resumes from.

A run's folder is ``$HERALD_HOME/runs/<run_id>/`` (``run_id`` = the job id, so every attempt
of a job finds the same folder). The HF Trainer writes ``checkpoints/checkpoint-<step>/`` and
writes ``trainer_state.json`` last, after the weights (safetensors), optimizer, scheduler and
RNG states; a checkpoint is *complete* when that file parses. A folder without it was being
written when the process died: it is ignored and removed before resuming.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from herald.settings import Settings

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
STATE_FILE = "trainer_state.json"
WEIGHT_FILES = ("adapter_model.safetensors", "model.safetensors", "model.safetensors.index.json")


def run_dir(settings: Settings, run_id: str) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,128}", run_id) or run_id in (".", ".."):
        raise ValueError(f"invalid run id {run_id!r}")
    return settings.home / "runs" / run_id


def is_complete(folder: Path) -> bool:
    """True when the Trainer finished writing this checkpoint."""
    state = folder / STATE_FILE
    if not state.is_file() or not any((folder / w).is_file() for w in WEIGHT_FILES):
        return False
    try:
        data = json.loads(state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "global_step" in data


def checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of every checkpoint folder, oldest first."""
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = CHECKPOINT.match(p.name)
        if m and p.is_dir():
            found.append((int(m.group(1)), p))
    return sorted(found)


def last_complete_checkpoint(folder: Path, *, remove_partial: bool = True) -> Path | None:
    """The newest complete checkpoint; newer partial ones are deleted when ``remove_partial``."""
    best: Path | None = None
    for _step, path in reversed(checkpoints(folder)):
        if is_complete(path):
            best = path
            break
        if remove_partial:
            shutil.rmtree(path, ignore_errors=True)
    return best


def checkpoint_step(path: Path) -> int:
    m = CHECKPOINT.match(path.name)
    if not m:
        raise ValueError(f"{path} is not a checkpoint folder")
    return int(m.group(1))
