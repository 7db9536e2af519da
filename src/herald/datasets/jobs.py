"""The ``dataset.register`` job and the sensor that runs it (a built-in plugin).

    dataset.register (message) ──sensor──▶ dataset.register (job, local executor)
        read → validate → prepare → artifact store → registry ──▶ dataset.registered

The job writes the version's folder (``train.jsonl``, ``validation.jsonl``, ``dataset.json``,
``stats.json``) under the content-addressed key ``datasets/<name>/<fingerprint[:16]>``, then
records it in the registry; registering identical content again returns the existing version
(``created`` false) and rewrites nothing. An invalid data set raises :class:`DatasetError`: the
job fails with the row errors in ``job.failed.error`` and is not retried (``max_attempts=1``:
repeating a validation gives the same answer).

Importing this module is cheap: it registers the job, the sensor and nothing else.
"""

from __future__ import annotations

import inspect
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from herald.jobs.context import JobContext
from herald.jobs.registry import job
from herald.messages.lifecycle import DatasetFormat, DatasetRegister, DatasetRegistered
from herald.security.files import FilePolicy
from herald.security.pii import PIIPolicy
from herald.sensors.base import SensorContext, sensor
from herald.services import Services

if TYPE_CHECKING:
    from herald.artifacts import ArtifactStore

JOB_NAME = "dataset.register"


def _readable(source: str, store: ArtifactStore) -> str:
    """``source``, or for a URI inside Herald's artifact store the store's local copy: the
    store knows its endpoint and credentials (an S3 endpoint set in the store URL's query
    is not something a bare fsspec URL carries)."""
    from herald.artifacts import ArtifactError
    from herald.datasets.loader import is_url

    if not is_url(source):
        return source
    try:
        key = store.key_of(source)
    except ArtifactError:
        return source
    return str(store.local_file(key))


@job(name=JOB_NAME, executor="local", max_attempts=1)
def register_dataset(
    name: str,
    source: str,
    format: DatasetFormat = "auto",
    validation_fraction: float = 0.0,
    seed: int = 42,
    dedupe: bool = True,
    redact_pii: bool = False,
    description: str = "",
    tags: dict[str, str] | None = None,
    tokenizer: str | None = None,
    ctx: JobContext | None = None,
) -> DatasetRegistered:
    """Read, validate and prepare a data set file and register it as a new version.

    ``source``: a local path or fsspec URL (.jsonl/.json/.csv/.tsv/.parquet, optionally
    compressed). ``tokenizer``: a model reference whose tokenizer counts tokens for the
    statistics (default: whitespace tokens).
    """
    return register_dataset_version(
        Services.of_job(ctx),
        name,
        source,
        format=format,
        validation_fraction=validation_fraction,
        seed=seed,
        dedupe=dedupe,
        redact_pii=redact_pii,
        description=description,
        tags=tags,
        tokenizer=tokenizer,
        ctx=ctx,
    )


def register_dataset_version(
    services: Services,
    name: str,
    source: str,
    *,
    format: DatasetFormat = "auto",
    validation_fraction: float = 0.0,
    seed: int = 42,
    dedupe: bool = True,
    redact_pii: bool = False,
    description: str = "",
    tags: dict[str, str] | None = None,
    tokenizer: str | None = None,
    ctx: JobContext | None = None,
) -> DatasetRegistered:
    """What the ``dataset.register`` job does, in ``services``' registry and artifact store
    (``ctx``, when given, gets progress and the job id for the lineage)."""
    from herald.datasets.artifact import write_dataset_dir
    from herald.datasets.loader import read_table
    from herald.datasets.prepare import prepare
    from herald.registry.models import check_name

    def progress(fraction: float, message: str) -> None:
        if ctx is not None:
            ctx.progress(fraction, message)

    check_name(name, "data set")
    pii = PIIPolicy.from_settings(services.settings)  # its kinds; redact_ingest forces redaction
    redact_pii = redact_pii or pii.redact_ingest
    tok: Any = None
    if tokenizer:
        from herald.models import load_tokenizer, resolve_model

        tok = load_tokenizer(
            resolve_model(tokenizer, services.registry, artifacts=services.artifacts)
        )
    # the same file policy as the publish edge: 403 for a path outside the allowed roots
    store = services.artifacts
    policy = FilePolicy.from_settings(services.settings)
    table = read_table(
        _readable(policy.source(source, purpose="source"), store), egress=services.settings
    )
    progress(0.3, f"read {len(table.rows)} rows ({table.file_format})")
    prepared = prepare(
        table.rows,
        columns=table.columns,
        row_numbers=table.row_numbers,
        format=format,
        validation_fraction=validation_fraction,
        seed=seed,
        dedupe=dedupe,
        redact_pii=redact_pii,
        pii_kinds=pii.kinds,
        tokenizer=tok,
        source=source,
    )
    progress(0.6, f"{prepared.rows} rows valid ({prepared.format})")

    registry = services.registry
    key = f"datasets/{name}/{prepared.fingerprint[:16]}"
    if store.exists(key):
        artifact_uri = store.uri(key)
    else:
        with tempfile.TemporaryDirectory(prefix="herald-dataset-") as tmp:
            folder = write_dataset_dir(
                prepared,
                Path(tmp) / "dataset",
                name=name,
                source=source,
                description=description,
                tags=tags,
            )
            artifact_uri = store.put_dir(key, folder).uri
    progress(0.9, f"stored {artifact_uri}")
    version, created = registry.add_dataset_version(
        name,
        fingerprint=prepared.fingerprint,
        artifact_uri=artifact_uri,
        format=prepared.format,
        rows=prepared.rows,
        splits=prepared.splits,
        stats=prepared.stats,
        pii=prepared.pii,
        source=source,
        description=description,
        tags=tags,
        lineage={
            "job_id": ctx.job_id if ctx is not None else None,
            "file_format": table.file_format,
            "input_rows": prepared.input_rows,
            "duplicates_removed": prepared.duplicates_removed,
            "pii_redacted": prepared.pii_redacted,
            "ignored_columns": prepared.ignored_columns,
            "validation_fraction": validation_fraction,
            "seed": seed,
        },
    )
    return DatasetRegistered(
        name=version.name,
        version=version.version,
        uri=version.uri,
        fingerprint=version.fingerprint,
        format=version.format,
        artifact_uri=version.artifact_uri,
        rows=version.rows,
        splits=version.splits,
        stats=version.stats,
        pii=version.pii,
        created=created,
    )


@sensor(on=DatasetRegister, name="datasets.register")
def on_dataset_register(msg: DatasetRegister, ctx: SensorContext) -> None:
    """Run the ``dataset.register`` job for a ``dataset.register`` request."""
    accepted = inspect.signature(register_dataset).parameters
    params = {k: v for k, v in msg.payload().items() if k in accepted and v is not None}
    ctx.run_job(JOB_NAME, params)
