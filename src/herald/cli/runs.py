"""``herald runs …`` (defined with the registry commands in :mod:`herald.cli.registry`)."""

from herald.cli.registry import runs_app as app

__all__ = ["app"]
