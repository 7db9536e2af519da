"""Microscopic models for tests: real transformers models, built offline in milliseconds.

``tiny_llama(path)`` writes a 2-layer Llama (hidden size 32) with a byte-level BPE tokenizer
trained on a few sentences and a ChatML chat template (the template family of the bundled
SmolLM2), as safetensors + tokenizer files. Everything is deterministic: the same call writes
the same weights and the same vocabulary, so tests can assert on numbers.

Fine-tuning, loading and serving tests use it instead of downloading anything::

    from herald.models.testing import tiny_llama
    model_dir = tiny_llama(tmp_path / "tiny")
    model, tokenizer = load_causal_lm(resolve_model(str(model_dir)))
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["TINY_CHAT_TEMPLATE", "TINY_CORPUS", "tiny_llama"]

# ChatML, as SmolLM2-Instruct uses it (without SmolLM2's default system prompt, so that
# rendered prompts stay short in tests).
TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

TINY_CORPUS = [
    "The capital of France is Paris.",
    "What is 2 + 3? The answer is 5.",
    "Convert 3 kilometres to metres: 3000 metres.",
    "You are a helpful assistant. Answer briefly and correctly.",
    "user assistant system tool instruction input output text messages role content",
    "Herald fine-tunes small language models on CPU for tests.",
    "The quick brown fox jumps over the lazy dog 0123456789.",
]


def tiny_llama(
    path: Path,
    *,
    hidden_size: int = 32,
    num_layers: int = 2,
    vocab_size: int = 384,
    seed: int = 0,
) -> Path:
    """Save a tiny Llama (safetensors) and its tokenizer (with a chat template) into ``path``.

    Returns ``path``. The folder loads with ``AutoModelForCausalLM.from_pretrained`` and
    ``AutoTokenizer.from_pretrained`` like any hub checkpoint (``config.json``,
    ``model.safetensors``, ``tokenizer.json``, ``tokenizer_config.json``, chat template).
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(TINY_CORPUS, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=bpe,
        bos_token=SPECIAL_TOKENS[1],
        eos_token=SPECIAL_TOKENS[2],
        pad_token=SPECIAL_TOKENS[0],
        unk_token=SPECIAL_TOKENS[0],
        model_max_length=512,
    )
    tokenizer.chat_template = TINY_CHAT_TEMPLATE

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path
