"""``herald keys …`` (defined with the deployment commands in :mod:`herald.cli.deploy`)."""

from herald.cli.deploy import keys_app as app

__all__ = ["app"]
