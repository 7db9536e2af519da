"""``herald approvals …`` (defined with the monitoring commands in :mod:`herald.cli.monitoring`)."""

from herald.cli.monitoring import approvals_app as app

__all__ = ["app"]
