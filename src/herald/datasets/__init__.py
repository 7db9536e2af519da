"""Data sets: read, validate, clean, split, fingerprint and register training data.

Pure core (no I/O): :func:`prepare` turns raw rows into a :class:`PreparedDataset`
(format detection, row-level validation, PII scan/redaction, de-duplication, split, fingerprint,
statistics). Thin edges: :func:`read_table` reads JSONL/JSON/CSV/Parquet from paths and fsspec
URLs; :func:`open_training_data` gives the fine-tuning job its rows; the ``dataset.register`` job
(``herald.datasets.jobs``) stores a version in the artifact store and the registry.
"""

from herald.datasets.errors import DatasetError, RowError
from herald.datasets.formats import FORMATS, detect_format
from herald.datasets.loader import RawTable, read_table
from herald.datasets.pii import redact_text, scan_text
from herald.datasets.prepare import PreparedDataset, fingerprint, prepare, split_rows
from herald.datasets.training import TrainingData, open_training_data

__all__ = [
    "FORMATS",
    "DatasetError",
    "PreparedDataset",
    "RawTable",
    "RowError",
    "TrainingData",
    "detect_format",
    "fingerprint",
    "open_training_data",
    "prepare",
    "read_table",
    "redact_text",
    "scan_text",
    "split_rows",
]
