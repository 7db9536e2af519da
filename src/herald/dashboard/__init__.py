"""The web dashboard served at ``/``: login, live overview, flow graphs, schema-generated emit forms.

``mount(app, h, sessions)`` adds the pages and static assets to the API app; the pages call the
same ``/v1`` API with the session cookie (see :mod:`herald.dashboard.session`).
"""

from __future__ import annotations

from herald.dashboard.pages import mount
from herald.dashboard.session import Sessions

__all__ = ["Sessions", "mount"]
