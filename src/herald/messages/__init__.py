"""Typed messages, the CloudEvents envelope and the catalog (no I/O)."""

from herald.messages import builtin, lifecycle
from herald.messages.base import Message
from herald.messages.catalog import Catalog, default_catalog
from herald.messages.envelope import MAX_PAYLOAD_BYTES, Envelope, check_size, new_id

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "Catalog",
    "Envelope",
    "Message",
    "builtin",
    "check_size",
    "default_catalog",
    "lifecycle",
    "new_id",
]
