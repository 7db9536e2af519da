"""Models built in several threads of one process at once (issue seen in CI: the dashboard's
canary deployment failed with "Cannot copy out of meta tensor" when the gateway loaded a new
adapter while an in-process evaluation job loaded it too). transformers builds models on the
meta device by patching torch for the whole process; Herald serialises every build. Without
the lock this test fails on most attempts (37 of 40 loads, measured by hand)."""

from __future__ import annotations

import importlib
import threading
from pathlib import Path
from typing import Any

importlib.import_module("transformers")


def test_concurrent_loads_through_the_gateway_and_jobs_get_real_weights(tmp_path: Path) -> None:
    from herald.models import load_causal_lm
    from herald.models.resolve import resolve_model
    from herald.models.testing import tiny_llama
    from herald.serving.backends.transformers import TransformersBackend

    folder = tiny_llama(tmp_path / "tiny")
    errors: list[str] = []
    loaded: list[Any] = []

    def job_load() -> None:  # what evaluation and training jobs do
        for _ in range(4):
            try:
                model, _ = load_causal_lm(resolve_model(str(folder)), device="cpu")
                loaded.append(model)
            except Exception as exc:
                errors.append(repr(exc)[:200])

    def gateway_load() -> None:  # what the transformers serving backend does
        for _ in range(4):
            try:
                backend = TransformersBackend(str(folder))
                backend._load()
                loaded.append(backend.lm)
            except Exception as exc:
                errors.append(repr(exc)[:200])

    threads = [threading.Thread(target=f) for f in (job_load, gateway_load, job_load, gateway_load)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(loaded) == 16
    assert not any(p.is_meta for m in loaded for p in m.parameters())
