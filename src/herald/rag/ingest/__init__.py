"""Document ingestion: sources, loaders and the pipeline."""

from herald.rag.ingest.loaders import LOADERS, Document, loader_for
from herald.rag.ingest.pipeline import FileReport, Ingestor, IngestReport
from herald.rag.ingest.sources import SourceFile, list_sources

__all__ = [
    "LOADERS",
    "Document",
    "FileReport",
    "IngestReport",
    "Ingestor",
    "SourceFile",
    "list_sources",
    "loader_for",
]
