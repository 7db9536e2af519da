"""Artifact stores by URL scheme; third parties add schemes through the
``herald.artifact_stores`` entry-point group (``scheme = "package.module:StoreClass"``)."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from herald.artifacts.base import ArtifactStore
from herald.errors import ConfigurationError

StoreFactory = Callable[..., ArtifactStore]

#: Built-in adapters, imported on first use (s3fs is optional).
BUILTIN_STORES: dict[str, str] = {
    "file": "herald.artifacts.local:LocalArtifactStore",
    "s3": "herald.artifacts.s3:S3ArtifactStore",
    "s3a": "herald.artifacts.s3:S3ArtifactStore",
}
_registered: dict[str, StoreFactory] = {}


def register_artifact_store(scheme: str, factory: StoreFactory) -> None:
    """Add (or replace) the adapter for URLs of ``scheme``."""
    _registered[scheme] = factory


def _load(ref: str) -> StoreFactory:
    module, _, attr = ref.partition(":")
    factory: StoreFactory = getattr(import_module(module), attr)
    return factory


def store_factory(scheme: str) -> StoreFactory:
    if scheme in _registered:
        return _registered[scheme]
    if scheme in BUILTIN_STORES:
        return _load(BUILTIN_STORES[scheme])
    for ep in entry_points(group="herald.artifact_stores"):
        if ep.name == scheme:
            factory: StoreFactory = ep.load()
            return factory
    known = sorted({*BUILTIN_STORES, *_registered})
    raise ConfigurationError(
        f"no artifact store for {scheme}:// URLs (known: {', '.join(known)}); "
        "install a plugin that provides it (entry point group herald.artifact_stores)"
    )


def open_artifact_store(url: str | None = None, *, cache_dir: Path | None = None) -> ArtifactStore:
    """The store for ``url``; ``None`` reads HERALD_ARTIFACTS_URL (default
    ``file://$HERALD_HOME/artifacts``). A bare path means a local folder."""
    if url is None or cache_dir is None:
        from herald.settings import load_settings

        settings = load_settings()
        url = url or settings.resolved_artifacts_url
        cache_dir = cache_dir or settings.home / "cache" / "artifacts"
    scheme = urlparse(url).scheme
    if scheme in ("", "file") or len(scheme) == 1:  # a path (C: on Windows) or file://
        return _local(url)
    factory = store_factory(scheme)
    kwargs: dict[str, Any] = {"cache_dir": cache_dir} if scheme != "file" else {}
    return factory(url, **kwargs)


def _local(url: str) -> ArtifactStore:
    if not url.startswith("file:"):
        url = Path(url).expanduser().resolve().as_uri()
    return store_factory("file")(url)
