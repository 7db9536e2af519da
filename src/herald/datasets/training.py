"""Training data for the fine-tuning job: a registered version or a file, as rows in memory.

``open_training_data(ref)`` accepts what a fine-tuning config's ``dataset`` may say:

* ``datasets:/name/3`` or ``datasets:/name`` — a registered version (latest without a number);
* ``name`` — the latest registered version of that data set;
* a local path or an fsspec URL of a ``.jsonl``/``.json``/``.csv``/``.parquet`` file — read and
  prepared in memory exactly as registration would (validated, de-duplicated, split, fingerprinted),
  but not registered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from herald.datasets.errors import DatasetError
from herald.datasets.loader import FILE_FORMATS, is_url, read_table
from herald.datasets.prepare import prepare

if TYPE_CHECKING:
    from herald.artifacts import ArtifactStore
    from herald.registry import Registry

__all__ = ["TrainingData", "looks_like_file", "open_training_data"]


@dataclass
class TrainingData:
    """Rows to train on and where they came from.

    ``name``/``version`` are None for an unregistered file; ``uri`` is ``datasets:/name/version``
    for a registered version, else the path or URL as given.
    """

    train: list[dict[str, Any]]
    validation: list[dict[str, Any]]
    format: str
    name: str | None
    version: int | None
    uri: str
    fingerprint: str
    stats: dict[str, Any] = field(default_factory=dict)

    def lineage(self) -> dict[str, Any]:
        """The ``dataset`` entry of ``finetune.completed``: name, version, uri, fingerprint."""
        return {
            "name": self.name,
            "version": self.version,
            "uri": self.uri,
            "fingerprint": self.fingerprint,
        }


def looks_like_file(ref: str) -> bool:
    """Whether ``ref`` names a file (path or URL) rather than a registered data set."""
    if ref.startswith("datasets:/"):
        return False
    if is_url(ref) or "/" in ref or "\\" in ref or ref.startswith((".", "~")):
        return True
    lowered = ref.lower()
    return any(lowered.endswith(s) or lowered.endswith(s + ".gz") for s in FILE_FORMATS) or (
        Path(ref).is_file()
    )


def open_training_data(
    ref: str,
    registry: Registry | None = None,
    *,
    format: str = "auto",
    validation_fraction: float = 0.0,
    seed: int = 42,
    artifacts: ArtifactStore | None = None,
    egress: Any = None,
) -> TrainingData:
    """Rows of a registered data set version or of a file; see the module docstring.

    ``format``, ``validation_fraction`` and ``seed`` apply to files only (a registered version
    is already split). Raises :class:`DatasetError` for bad files and the registry's
    ``NotFound`` for unknown names. A registered version is read from ``artifacts`` (default:
    the store of this process's settings) after ``registry`` (default: likewise) named it; a
    URL is fetched under ``egress`` (Herald settings or an egress policy; the strict default
    without).
    """
    if not isinstance(ref, str) or not ref.strip():
        raise DatasetError(
            "dataset must be a registered data set name, datasets:/name/version, "
            "or a path/URL of a .jsonl, .csv or .parquet file"
        )
    if looks_like_file(ref):
        table = read_table(ref, egress=egress)
        prepared = prepare(
            table.rows,
            columns=table.columns,
            row_numbers=table.row_numbers,
            format=format,
            validation_fraction=validation_fraction,
            seed=seed,
            source=ref,
        )
        stem = Path(ref.split("?", 1)[0].rstrip("/")).name.split(".", 1)[0] or None
        uri = ref if is_url(ref) else str(Path(ref).expanduser().resolve())
        return TrainingData(
            train=prepared.train,
            validation=prepared.validation,
            format=prepared.format,
            name=stem,
            version=None,
            uri=uri,
            fingerprint=prepared.fingerprint,
            stats=prepared.stats,
        )
    return _open_registered(ref, registry, artifacts)


def _open_registered(
    ref: str, registry: Registry | None, store: ArtifactStore | None
) -> TrainingData:
    from herald.artifacts import open_artifact_store
    from herald.datasets.artifact import read_dataset_dir

    if registry is None:
        from herald.registry import Registry

        registry = Registry.from_settings()
    version = registry.get_dataset(ref)
    store = store or open_artifact_store()
    folder = store.local_dir(store.key_of(version.artifact_uri))
    train, validation, meta = read_dataset_dir(folder)
    if meta.get("fingerprint") not in (None, version.fingerprint):
        raise DatasetError(
            f"{version.uri}: stored rows have fingerprint {str(meta['fingerprint'])[:12]}… but "
            f"the registry records {version.fingerprint[:12]}…; re-register the data set"
        )
    return TrainingData(
        train=train,
        validation=validation,
        format=version.format,
        name=version.name,
        version=version.version,
        uri=version.uri,
        fingerprint=version.fingerprint,
        stats=dict(version.stats),
    )
