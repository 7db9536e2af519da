"""Errors of the RAG capability (all :class:`herald.errors.HeraldError` subclasses).

HeraldError
├── NotFound
│   └── CollectionNotFound     no collection of that name                       (404)
├── Conflict
│   └── CollectionExists       create with a name already taken                 (409)
└── RagError                   a request the RAG layer refuses                  (400)
    ├── InvalidFilter          unknown field or malformed metadata filter        (400)
    ├── DimensionMismatch      vector length differs from the collection's       (400)
    └── DocumentError          a file could not be read (unsupported, corrupt, empty)
"""

from __future__ import annotations

from herald.errors import Conflict, HeraldError, NotFound


class RagError(HeraldError):
    code = "invalid_request_error"
    status = 400


class InvalidFilter(RagError):
    code = "invalid_filter"


class DimensionMismatch(RagError):
    code = "dimension_mismatch"


class DocumentError(RagError):
    code = "document_error"


class CollectionNotFound(NotFound):
    code = "collection_not_found"


class CollectionExists(Conflict):
    code = "collection_exists"
