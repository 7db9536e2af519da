"""Cron expressions and time zones, checked where they are configured (settings, rules,
``@herald.schedule``) — a leaf module, so the settings tree need not import the sensors."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from herald.errors import ConfigurationError

__all__ = ["validate_cron"]


def validate_cron(expr: str, tz: str, where: str) -> None:
    """Raise a :class:`ConfigurationError` naming ``where`` for a bad expression or zone."""
    if not croniter.is_valid(expr):
        raise ConfigurationError(f"{where}: invalid cron expression {expr!r} (e.g. '*/5 * * * *')")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(f"{where}: unknown time zone {tz!r}") from None
