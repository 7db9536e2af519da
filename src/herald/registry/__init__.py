"""The model registry: data set versions, model versions with aliases and lineage, model cards,
and experiment runs — on the event log's SQL database."""

from herald.registry.models import (
    DatasetVersion,
    InvalidRegistryRequest,
    ModelRef,
    ModelVersion,
    Run,
    parse_dataset_uri,
    parse_model_uri,
)
from herald.registry.store import Registry

__all__ = [
    "DatasetVersion",
    "InvalidRegistryRequest",
    "ModelRef",
    "ModelVersion",
    "Registry",
    "Run",
    "parse_dataset_uri",
    "parse_model_uri",
]
