"""Artifact stores by URL scheme; third parties add schemes through the
``herald.artifact_stores`` entry-point group (``scheme = "package.module:StoreClass"``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from herald.adapters import Adapters
from herald.artifacts.base import ArtifactStore
from herald.errors import ConfigurationError

StoreFactory = Callable[..., ArtifactStore]

#: Built-in adapters, imported on first use (s3fs is optional).
BUILTIN_STORES: dict[str, str] = {
    "file": "herald.artifacts.local:LocalArtifactStore",
    "s3": "herald.artifacts.s3:S3ArtifactStore",
    "s3a": "herald.artifacts.s3:S3ArtifactStore",
}
ARTIFACT_STORES: Adapters[StoreFactory] = Adapters(
    "artifact store", "herald.artifact_stores", BUILTIN_STORES, check=callable
)


def register_artifact_store(scheme: str, factory: StoreFactory) -> None:
    """Add (or replace) the adapter for URLs of ``scheme``."""
    ARTIFACT_STORES.register(scheme, factory)


def store_factory(scheme: str) -> StoreFactory:
    if scheme not in ARTIFACT_STORES:
        raise ConfigurationError(
            f"no artifact store for {scheme}:// URLs (known: {', '.join(ARTIFACT_STORES.names())}"
            "); install a plugin that provides it (entry point group herald.artifact_stores)"
        )
    return ARTIFACT_STORES.load(scheme)


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
