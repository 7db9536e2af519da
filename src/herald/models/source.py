"""What a model reference resolved to: :class:`ModelSource`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

SourceKind = Literal["registry", "hub", "path", "bundled"]


class ModelSource(BaseModel):
    """A resolved model reference, ready for :func:`herald.models.load_causal_lm`.

    * ``registry`` — a registered version (``name``/``version``/``uri`` set); its files are in
      ``local_dir`` (or ``gguf_file`` for a registered GGUF, converted on first load);
    * ``hub`` — a Hugging Face id (``hf_id``), loaded from the local HF cache only (offline);
    * ``path`` — a local folder with ``config.json`` (``local_dir``);
    * ``bundled`` — a model shipped in a Python package as GGUF (``gguf_file``); ``local_dir``
      is its converted safetensors folder once converted.

    A LoRA/QLoRA adapter (``adapter`` true) loads ``base`` first and applies ``local_dir`` on top.
    """

    kind: SourceKind
    ref: str = Field(description="the reference as given")
    local_dir: Path | None = None
    hf_id: str | None = None
    gguf_file: Path | None = None
    uri: str | None = Field(None, description="models:/name/version for registry sources")
    name: str | None = None
    version: int | None = None
    chat_template: str | None = None
    model_kind: str | None = Field(None, description="registry kind: base, lora, full, gguf...")
    adapter: bool = False
    base: ModelSource | None = None
    trust_remote_code: bool = False

    def lineage(self) -> dict[str, Any]:
        """The ``base_model`` entry of ``finetune.completed``: ref, uri, name, version."""
        return {
            "ref": self.ref,
            "uri": self.uri or self.hf_id or (str(self.local_dir) if self.local_dir else None),
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
        }
