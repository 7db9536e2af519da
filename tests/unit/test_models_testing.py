"""The microscopic test model other tests build on: loads, chats, and is deterministic."""

from __future__ import annotations

from pathlib import Path

from herald.models.testing import tiny_llama


def test_tiny_llama_is_a_loadable_safetensors_checkpoint(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = tiny_llama(tmp_path / "tiny")
    names = {p.name for p in path.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)
    model = AutoModelForCausalLM.from_pretrained(path, use_safetensors=True)
    tok = AutoTokenizer.from_pretrained(path)
    assert model.config.num_hidden_layers == 2 and model.config.hidden_size == 32
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "Hi ünïcode 42"}], tokenize=False, add_generation_prompt=True
    )
    assert prompt == "<|im_start|>user\nHi ünïcode 42<|im_end|>\n<|im_start|>assistant\n"
    ids = tok(prompt)["input_ids"]
    assert tok.decode(ids) == prompt  # byte-level: any text round-trips, no unknown tokens
    assert tok.eos_token == "<|im_end|>" and tok.pad_token_id is not None


def test_tiny_llama_is_deterministic(tmp_path: Path) -> None:
    a = tiny_llama(tmp_path / "a") / "model.safetensors"
    b = tiny_llama(tmp_path / "b") / "model.safetensors"
    assert a.read_bytes() == b.read_bytes()
