"""Content-hashed artifact storage (local folder or S3) with verified reads.

>>> store = open_artifact_store("file:///tmp/artifacts")        # doctest: +SKIP
>>> ref = store.put_dir("models/demo/1", Path("out/adapter"))   # doctest: +SKIP
>>> store.local_dir(ref.key)                                    # doctest: +SKIP
"""

from herald.artifacts.base import (
    ArtifactCorrupted,
    ArtifactError,
    ArtifactNotFound,
    ArtifactRef,
    ArtifactStore,
    InvalidArtifactKey,
    UnsafeArtifact,
    validate_key,
)
from herald.artifacts.registry import open_artifact_store, register_artifact_store

__all__ = [
    "ArtifactCorrupted",
    "ArtifactError",
    "ArtifactNotFound",
    "ArtifactRef",
    "ArtifactStore",
    "InvalidArtifactKey",
    "UnsafeArtifact",
    "open_artifact_store",
    "register_artifact_store",
    "validate_key",
]
