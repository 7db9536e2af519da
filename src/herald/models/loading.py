"""Load a resolved :class:`~herald.models.source.ModelSource` with transformers (and PEFT).

Safety defaults: weights load from safetensors only (``use_safetensors=True``; a folder with only
pickle ``.bin`` weights is refused), nothing is downloaded (``local_files_only=True``), and
``trust_remote_code`` stays off unless the caller turns it on for this model.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from herald.models.bundled import BUNDLED, ensure_converted
from herald.models.errors import ModelSourceError
from herald.models.lock import MODEL_BUILD_LOCK
from herald.models.source import ModelSource

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger("herald.models")

DTYPES = ("auto", "float32", "bfloat16", "float16")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")


def ensure_local(source: ModelSource) -> Path:
    """The local folder of ``source``'s own files, converting a GGUF once if needed."""
    if source.local_dir is not None:
        return source.local_dir
    if source.gguf_file is not None:
        name = source.name if source.name in BUNDLED else None
        folder = ensure_converted(source.gguf_file, name=name)
        source.local_dir = folder
        return folder
    raise ModelSourceError(f"model {source.ref!r} has no local files to load")


def _weights_dir(source: ModelSource) -> Path:
    folder = ensure_local(source)
    if not any(folder.glob("*.safetensors")):
        pickled = sorted(p.name for p in folder.glob("*.bin")) + sorted(
            p.name for p in folder.glob("*.pt")
        )
        hint = (
            f" (it has pickle weights {', '.join(pickled[:3])}; convert them to safetensors "
            "where you trust them, e.g. with save_pretrained(safe_serialization=True))"
            if pickled
            else ""
        )
        raise ModelSourceError(
            f"{folder} has no *.safetensors weights; Herald loads safetensors only{hint}"
        )
    return folder


def load_tokenizer(
    source: ModelSource, *, trust_remote_code: bool = False
) -> PreTrainedTokenizerBase:
    """The tokenizer of ``source`` (an adapter's own if it saved one, else its base's).

    The chat template recorded for the source (registry or GGUF metadata) wins over the file's,
    so prompts are formatted as in training; a missing pad token falls back to EOS.
    """
    from transformers import AutoTokenizer

    folder = ensure_local(source)
    if source.adapter and not any((folder / f).is_file() for f in TOKENIZER_FILES):
        if source.base is None:
            raise ModelSourceError(f"adapter {source.ref!r} has no tokenizer and no base model")
        tokenizer = load_tokenizer(source.base, trust_remote_code=trust_remote_code)
    else:
        try:
            tokenizer = AutoTokenizer.from_pretrained(
                folder, trust_remote_code=trust_remote_code, local_files_only=True
            )
        except (OSError, ValueError) as exc:
            raise ModelSourceError(
                f"cannot load the tokenizer of {source.ref!r} from {folder}: {exc}"
            ) from exc
    if source.chat_template:
        tokenizer.chat_template = source.chat_template
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _torch_dtype(dtype: str) -> Any:
    if dtype not in DTYPES:
        raise ModelSourceError(f"unknown dtype {dtype!r}: use one of {', '.join(DTYPES)}")
    if dtype == "auto":
        return "auto"
    import torch

    return getattr(torch, dtype)


def load_causal_lm(
    source: ModelSource,
    *,
    dtype: str = "auto",
    device: str | None = None,
    trust_remote_code: bool = False,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """(model, tokenizer) of ``source``; an adapter is loaded on top of its base (PeftModel).

    ``dtype``: auto (as saved) | float32 | bfloat16 | float16. ``device``: e.g. ``"cpu"``,
    ``"cuda:0"`` (None: where transformers puts it, the CPU without accelerate's device_map).
    """
    with MODEL_BUILD_LOCK:  # see herald.models.lock
        started = time.monotonic()
        torch_dtype = _torch_dtype(dtype)
        if source.adapter:
            if source.base is None:
                raise ModelSourceError(f"adapter {source.ref!r} does not name its base model")
            base, _ = load_causal_lm(
                source.base, dtype=dtype, device=device, trust_remote_code=trust_remote_code
            )
            from peft import PeftModel

            folder = ensure_local(source)
            if not (folder / "adapter_model.safetensors").is_file():
                raise ModelSourceError(f"adapter {folder} has no adapter_model.safetensors")
            with warnings.catch_warnings():
                # peft reads transformers' deprecated is_gradient_checkpointing (transformers 5.x)
                warnings.filterwarnings("ignore", ".*is_gradient_checkpointing.*", FutureWarning)
                model: Any = PeftModel.from_pretrained(base, folder, is_trainable=False)
        else:
            from transformers import AutoModelForCausalLM

            folder = _weights_dir(source)
            try:
                model = AutoModelForCausalLM.from_pretrained(
                    folder,
                    dtype=torch_dtype,
                    use_safetensors=True,
                    trust_remote_code=trust_remote_code,
                    local_files_only=True,
                )
            except (OSError, ValueError) as exc:
                raise ModelSourceError(
                    f"cannot load model {source.ref!r} from {folder}: {exc}"
                ) from exc
        if device is not None:
            model = model.to(device)
        tokenizer = load_tokenizer(source, trust_remote_code=trust_remote_code)
    log.info("loaded %s in %.1f s", source.ref, time.monotonic() - started)
    return model, tokenizer
