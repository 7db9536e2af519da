"""Alerting: forward alert messages (drift, SLO, budget, rollbacks, dead letters…) to webhooks.

See :mod:`herald.alerting.webhooks` and ``docs/guides/monitoring.md`` (Alerting).
"""

from herald.alerting.webhooks import sign, verify

__all__ = ["sign", "verify"]
