"""Resolve a model reference — registry URI or name, local folder, hub id, bundled name.

Order for a reference ``ref``:

1. ``models:/name``, ``models:/name/3``, ``models:/name@alias`` → the registry;
2. an existing local folder with ``config.json`` (a model) or ``adapter_config.json`` (a PEFT
   adapter on top of its base), or an existing ``.gguf`` file → a path source;
3. a plain name (``my-model``, ``my-model@champion``) → the registry; if not registered there
   and it is a bundled model's name → the bundled model;
4. ``org/name`` → a Hugging Face hub id, used only from the local HF cache: Herald never
   downloads weights at run time.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from herald.errors import NotFound
from herald.models.bundled import BUNDLED, bundled_gguf, converted_dir, gguf_metadata, is_converted
from herald.models.errors import ModelNotFound, ModelSourceError
from herald.models.source import ModelSource

if TYPE_CHECKING:
    from herald.artifacts import ArtifactStore
    from herald.registry import ModelVersion, Registry

HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}(@[A-Za-z][A-Za-z0-9_-]{0,63}|/\d+)?$")
ADAPTER_KINDS = ("lora", "qlora")
MAX_DEPTH = 4


def resolve_model(
    ref: str, registry: Registry | None = None, *, artifacts: ArtifactStore | None = None
) -> ModelSource:
    """What ``ref`` names (see the module docstring); raises :class:`ModelNotFound`.

    Registered versions are looked up in ``registry`` and their files fetched from
    ``artifacts`` (a job passes its ``ctx.services``'; default: those of this process's
    settings, opened when needed)."""
    return _resolve(ref, registry, artifacts, 0)


def _resolve(
    ref: str, registry: Registry | None, artifacts: ArtifactStore | None, depth: int
) -> ModelSource:
    if not isinstance(ref, str) or not ref.strip():
        raise ModelSourceError(
            "base model reference is empty: pass a registered name, models:/name@alias, a local "
            "folder, a hub id (org/name) or a bundled model name"
        )
    if "\x00" in ref:
        raise ModelSourceError("model reference contains a NUL byte")
    if depth > MAX_DEPTH:
        raise ModelSourceError(f"adapter chain deeper than {MAX_DEPTH} at {ref!r}")
    ref = ref.strip()
    if ref.startswith("models:/"):
        return _from_registry(ref, _registry(registry), artifacts, depth)
    if ref.startswith("file://"):
        return _from_path(Path(unquote(urlsplit(ref).path)), ref, registry, artifacts, depth)
    path = Path(ref).expanduser()
    if path.exists() and (not _is_registry_name(ref) or _is_model_path(path)):
        return _from_path(path, ref, registry, artifacts, depth)
    if _is_registry_name(ref):
        reg = _registry(registry)
        try:
            return _from_registry(ref, reg, artifacts, depth)
        except NotFound:
            base_name = ref.split("@")[0]
            if base_name in BUNDLED and base_name == ref:
                return bundled_source(ref)
            raise ModelNotFound(_not_found_message(ref, reg)) from None
    if HUB_ID.match(ref):
        return _from_hub(ref)
    if ref.startswith(("/", ".", "~")) or "\\" in ref:
        raise ModelNotFound(f"model folder {ref!r} does not exist")
    raise ModelSourceError(
        f"cannot read model reference {ref!r}: expected models:/name[@alias|/version], a "
        "registered name, a local folder, a hub id (org/name) or a bundled model name"
    )


def _is_registry_name(ref: str) -> bool:
    """``name``, ``name@alias`` or ``name/3`` (``org/name`` is a hub id)."""
    return bool(NAME.match(ref)) and (not HUB_ID.match(ref) or ref.split("/")[-1].isdigit())


def _is_model_path(path: Path) -> bool:
    if path.is_file():
        return path.suffix.lower() == ".gguf"
    return (path / "config.json").is_file() or (path / "adapter_config.json").is_file()


def _registry(registry: Registry | None) -> Registry:
    if registry is not None:
        return registry
    from herald.registry import Registry

    return Registry.from_settings()


def _not_found_message(ref: str, registry: Registry) -> str:
    try:
        names = sorted({m["name"] for m in registry.list_models()})
    except Exception:  # the message is a hint; never mask the original problem
        names = []
    known = ", ".join(names[:20]) or "none"
    return (
        f"no model {ref!r}: not a registered model (registered: {known}), not a local folder, "
        f"not a bundled model ({', '.join(sorted(BUNDLED))})"
    )


def bundled_source(name: str) -> ModelSource:
    """The bundled model ``name`` (its GGUF; ``local_dir`` set once converted)."""
    gguf = bundled_gguf(name)
    folder = converted_dir(gguf, name=name)
    return ModelSource(
        kind="bundled",
        ref=name,
        name=name,
        gguf_file=gguf,
        local_dir=folder if is_converted(folder) else None,
        hf_id=BUNDLED[name].hf_id,
        chat_template=gguf_metadata(gguf)["chat_template"],
        model_kind="gguf",
    )


def _from_path(
    path: Path, ref: str, registry: Registry | None, artifacts: ArtifactStore | None, depth: int
) -> ModelSource:
    path = path.resolve()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelSourceError(
                f"{path} is a file: pass a model folder (config.json + *.safetensors) or a .gguf"
            )
        folder = converted_dir(path)
        return ModelSource(
            kind="path",
            ref=ref,
            gguf_file=path,
            local_dir=folder if is_converted(folder) else None,
            chat_template=gguf_metadata(path)["chat_template"],
            model_kind="gguf",
        )
    if (path / "adapter_config.json").is_file():
        base_ref = _adapter_base(path)
        base = _resolve(base_ref, registry, artifacts, depth + 1)
        return ModelSource(
            kind="path", ref=ref, local_dir=path, adapter=True, base=base, model_kind="lora"
        )
    if not (path / "config.json").is_file():
        raise ModelSourceError(
            f"{path} has no config.json: a model folder holds config.json and *.safetensors "
            "(as written by save_pretrained)"
        )
    return ModelSource(kind="path", ref=ref, local_dir=path, chat_template=_template_in(path))


def _adapter_base(folder: Path) -> str:
    try:
        cfg: dict[str, Any] = json.loads((folder / "adapter_config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ModelSourceError(f"{folder}/adapter_config.json is unreadable: {exc}") from None
    base = cfg.get("base_model_name_or_path")
    if not isinstance(base, str) or not base:
        raise ModelSourceError(f"{folder}/adapter_config.json does not name its base model")
    return base


def _template_in(folder: Path) -> str | None:
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    cfg = folder / "tokenizer_config.json"
    if cfg.is_file():
        try:
            value = json.loads(cfg.read_text(encoding="utf-8")).get("chat_template")
        except ValueError:
            return None
        return value if isinstance(value, str) else None
    return None


def _artifact_path(mv: ModelVersion, store: ArtifactStore | None) -> Path:
    uri = mv.artifact_uri
    if uri.startswith("file://"):
        path = Path(unquote(urlsplit(uri).path))
        if path.exists():
            return path
    from herald.artifacts import ArtifactError, open_artifact_store

    store = store or open_artifact_store()
    try:
        key = store.key_of(uri)
    except ArtifactError:
        if mv.tags.get("source") == "bundled" and mv.name in BUNDLED:
            return bundled_gguf(mv.name)  # the package moved (new venv): use the installed file
        raise ModelSourceError(
            f"{mv.uri}: its files at {uri} are neither a local path nor in the artifact store "
            f"{store.url}"
        ) from None
    if mv.kind == "gguf":
        return store.local_file(key)
    return store.local_dir(key)


def _from_registry(
    ref: str, registry: Registry, artifacts: ArtifactStore | None, depth: int
) -> ModelSource:
    mv = registry.resolve(ref)
    path = _artifact_path(mv, artifacts)
    common: dict[str, Any] = {
        "kind": "registry",
        "ref": ref,
        "uri": mv.uri,
        "name": mv.name,
        "version": mv.version,
        "model_kind": mv.kind,
        "hf_id": mv.config.get("hf_id") if isinstance(mv.config.get("hf_id"), str) else None,
    }
    if mv.kind == "gguf" or path.suffix.lower() == ".gguf":
        folder = converted_dir(path, name=mv.name if mv.name in BUNDLED else None)
        return ModelSource(
            **common,
            gguf_file=path,
            local_dir=folder if is_converted(folder) else None,
            chat_template=mv.chat_template or gguf_metadata(path)["chat_template"],
        )
    template = mv.chat_template or _template_in(path)
    if mv.kind in ADAPTER_KINDS or (path / "adapter_config.json").is_file():
        base_ref = mv.base_model or _adapter_base(path)
        base = _resolve(base_ref, registry, artifacts, depth + 1)
        return ModelSource(
            **common, local_dir=path, adapter=True, base=base, chat_template=template
        )
    return ModelSource(**common, local_dir=path, chat_template=template)


def _from_hub(hf_id: str) -> ModelSource:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = Path(snapshot_download(hf_id, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        raise ModelNotFound(
            f"{hf_id!r} looks like a Hugging Face hub id, but it is not in the local Hugging "
            "Face cache and Herald does not download models at run time (no hub is reachable "
            "from this machine). Download it where a network is available "
            f"(huggingface-cli download {hf_id}) and copy the cache (HF_HOME), or pass the "
            "path of a local model folder (config.json + *.safetensors), or a registered model."
        ) from None
    if not (folder / "config.json").is_file():
        raise ModelSourceError(f"cached hub model {hf_id} has no config.json in {folder}")
    return ModelSource(
        kind="hub", ref=hf_id, hf_id=hf_id, local_dir=folder, chat_template=_template_in(folder)
    )
