"""Resolving and loading model sources with the tiny test model and a real registry."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from herald.errors import NotFound
from herald.models import (
    ModelNotFound,
    ModelSourceError,
    load_causal_lm,
    load_tokenizer,
    resolve_model,
)
from herald.models.bundled import BUNDLED, bundled_gguf, gguf_metadata
from herald.models.testing import TINY_CHAT_TEMPLATE, tiny_llama
from herald.registry import Registry


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HERALD_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HERALD_ARTIFACTS_URL", raising=False)
    monkeypatch.delenv("HERALD_DATABASE_URL", raising=False)
    return tmp_path / "home"


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    reg = Registry(f"sqlite:///{tmp_path / 'reg.db'}")
    yield reg
    reg.close()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("models") / "tiny")


def test_local_folder(tiny: Path) -> None:
    src = resolve_model(str(tiny))
    assert src.kind == "path" and src.local_dir == tiny.resolve()
    assert src.chat_template == TINY_CHAT_TEMPLATE
    assert resolve_model(tiny.as_uri()).local_dir == tiny.resolve()
    model, tok = load_causal_lm(src, dtype="float32")
    assert model.config.num_hidden_layers == 2 and tok.chat_template == TINY_CHAT_TEMPLATE
    assert src.lineage()["uri"] == str(tiny.resolve())


def test_folder_without_config_or_safetensors(tmp_path: Path, tiny: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelSourceError, match=r"no config\.json"):
        resolve_model(str(empty))
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((tiny / "config.json").read_text())
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ModelSourceError, match=r"safetensors only \(it has pickle weights"):
        load_causal_lm(resolve_model(str(pickled)))
    with pytest.raises(ModelNotFound, match="does not exist"):
        resolve_model(str(tmp_path / "missing"))
    with pytest.raises(ModelSourceError, match="unknown dtype"):
        load_causal_lm(resolve_model(str(tiny)), dtype="float8")


def test_hub_id_without_cache_explains_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFound) as e:
        resolve_model("HuggingFaceTB/SmolLM2-360M-Instruct")
    assert "not in the local Hugging Face cache" in e.value.message
    assert "path of a local model folder" in e.value.message
    assert isinstance(e.value, NotFound)


def test_hub_id_from_the_local_cache(
    tmp_path: Path, tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Lay the tiny model out as the HF cache does (refs/main → snapshots/<commit>).
    repo = tmp_path / "hf" / "models--acme--tiny"
    commit = "0" * 40
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    for f in tiny.iterdir():
        (snap / f.name).write_bytes(f.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hf"))
    src = resolve_model("acme/tiny")
    assert src.kind == "hub" and src.hf_id == "acme/tiny" and src.local_dir == snap
    assert load_tokenizer(src).chat_template == TINY_CHAT_TEMPLATE


def test_registry_names_uris_and_aliases(home: Path, registry: Registry, tiny: Path) -> None:
    from herald.artifacts import open_artifact_store

    ref = open_artifact_store().put_dir("models/tiny-base/1", tiny)
    mv, _ = registry.register_model_version(
        "tiny-base", artifact_uri=ref.uri, kind="full", chat_template="{{ 'custom' }}"
    )
    registry.set_alias("tiny-base", "champion", mv.version)
    for r in (
        "tiny-base",
        "models:/tiny-base/1",
        "models:/tiny-base@champion",
        "tiny-base@champion",
    ):
        src = resolve_model(r, registry)
        assert src.kind == "registry" and (src.name, src.version) == ("tiny-base", 1)
        assert src.uri == "models:/tiny-base/1" and src.local_dir is not None
    src = resolve_model("tiny-base", registry)
    assert (src.local_dir / "model.safetensors").is_file()  # type: ignore[operator]
    assert load_tokenizer(src).chat_template == "{{ 'custom' }}"  # the registry's template wins
    with pytest.raises(ModelNotFound, match=r"registered: tiny-base"):
        resolve_model("no-such-model", registry)
    with pytest.raises(NotFound):
        resolve_model("models:/tiny-base/7", registry)


def test_lora_adapter_loads_on_its_base(
    home: Path, registry: Registry, tiny: Path, tmp_path: Path
) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from herald.artifacts import open_artifact_store

    store = open_artifact_store()
    base_ref = store.put_dir("models/tiny-base/1", tiny)
    registry.register_model_version("tiny-base", artifact_uri=base_ref.uri, kind="full")
    base = AutoModelForCausalLM.from_pretrained(tiny, use_safetensors=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*is_gradient_checkpointing.*", FutureWarning)
        peft_model = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.fill_(0.01)  # a non-trivial adapter
    out = tmp_path / "adapter"
    peft_model.save_pretrained(out)
    # The adapter folder alone resolves through adapter_config.json's base path.
    by_path = resolve_model(str(out))
    assert by_path.adapter and by_path.base is not None and by_path.base.local_dir == tiny.resolve()
    # Registered, it resolves its base through the registry.
    ad_ref = store.put_dir("models/tiny-chat/1", out)
    registry.register_model_version(
        "tiny-chat", artifact_uri=ad_ref.uri, kind="lora", base_model="models:/tiny-base/1"
    )
    src = resolve_model("models:/tiny-chat/1", registry)
    assert src.adapter and src.base is not None and src.base.uri == "models:/tiny-base/1"
    model, tok = load_causal_lm(src)
    ids = torch.tensor([tok("The capital")["input_ids"]])
    plain = AutoModelForCausalLM.from_pretrained(tiny, use_safetensors=True)
    assert not torch.allclose(model(ids).logits, plain(ids).logits)
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 2


def test_bundled_gguf_is_found_without_conversion(home: Path, registry: Registry) -> None:
    gguf = bundled_gguf()
    assert gguf.name == BUNDLED["smollm2-135m-instruct"].filename and gguf.stat().st_size > 1e7
    meta = gguf_metadata(gguf)
    assert meta["architecture"] == "llama" and "<|im_start|>" in meta["chat_template"]
    src = resolve_model("smollm2-135m-instruct", registry)  # not registered → bundled
    assert src.kind == "bundled" and src.gguf_file == gguf and src.hf_id
    with pytest.raises(ModelNotFound, match="no bundled model"):
        bundled_gguf("gpt-17")


def test_register_bundled_models_is_idempotent(home: Path, registry: Registry) -> None:
    from herald.models import register_bundled_models

    first = register_bundled_models(registry)
    second = register_bundled_models(registry)
    assert [m.uri for m in first] == [m.uri for m in second] == ["models:/smollm2-135m-instruct/1"]
    mv = first[0]
    assert mv.kind == "gguf" and mv.artifact_uri.endswith(".gguf") and mv.chat_template
    assert mv.tags["source"] == "bundled"
    assert len(registry.list_versions("smollm2-135m-instruct")) == 1
    src = resolve_model("smollm2-135m-instruct", registry)
    assert src.kind == "registry" and src.gguf_file == bundled_gguf()
    assert src.chat_template == mv.chat_template


def test_gguf_header_reader_matches_gguf_writer(tmp_path: Path) -> None:
    import numpy as np
    from gguf import GGUFWriter

    from herald.models.bundled import read_gguf_kv

    path = tmp_path / "m.gguf"
    w = GGUFWriter(str(path), "llama")
    w.add_context_length(128)
    w.add_chat_template("{{ messages }}")
    w.add_token_list(["a", "b", "c"])
    w.add_token_scores([0.1, 0.2, 0.3])
    w.add_float32("test.value", 1.5)
    w.add_tensor("t", np.zeros((2, 2), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    kv = read_gguf_kv(path)
    assert kv["general.architecture"] == "llama" and kv["llama.context_length"] == 128
    assert kv["tokenizer.chat_template"] == "{{ messages }}" and kv["test.value"] == 1.5
    assert "tokenizer.ggml.tokens" in kv  # arrays are skipped, not misread
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"NOPE" + bytes(40))
    with pytest.raises(ModelSourceError, match="bad magic"):
        resolve_model(str(bad))
