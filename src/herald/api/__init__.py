"""The HTTP edge: control-plane REST API, SSE, metrics (thin over :class:`herald.Herald`)."""

from herald.api.app import create_app

__all__ = ["create_app"]
