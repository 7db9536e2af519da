"""The real bundled SmolLM2: registered at start, converted once to safetensors, then fast loads."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from herald.models import load_causal_lm, register_bundled_models, resolve_model
from herald.registry import Registry

pytestmark = pytest.mark.slow


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    monkeypatch.setenv("HERALD_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HERALD_ARTIFACTS_URL", raising=False)
    reg = Registry(f"sqlite:///{tmp_path / 'reg.db'}")
    yield reg
    reg.close()


def test_bundled_smollm2_converts_once_and_answers(registry: Registry, tmp_path: Path) -> None:
    import torch

    [mv] = register_bundled_models(registry)
    source = resolve_model("models:/smollm2-135m-instruct/1", registry)
    assert source.gguf_file is not None and source.local_dir is None  # not converted yet

    t0 = time.monotonic()
    model, tok = load_causal_lm(source)
    first = time.monotonic() - t0
    folder = source.local_dir
    assert folder is not None and folder.parent == tmp_path / "home" / "models"
    assert folder.name.startswith("smollm2-135m-instruct-")
    names = {p.name for p in folder.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "herald_conversion.json"} <= names
    assert not any(n.endswith((".bin", ".pt")) for n in names)
    assert tok.chat_template == mv.chat_template

    enc = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=12, do_sample=False)
    answer = tok.decode(out[0][enc["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer

    t1 = time.monotonic()
    again = resolve_model("smollm2-135m-instruct", registry)
    assert again.local_dir == folder  # the cached conversion is found at resolve time
    load_causal_lm(again)
    second = time.monotonic() - t1
    print(f"\nSmolLM2 load: first (GGUF → safetensors) {first:.1f} s, cached {second:.1f} s")
