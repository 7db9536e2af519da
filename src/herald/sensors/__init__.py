"""Sensors: the decorator, YAML rules (CEL), cron schedules and the runner."""

from herald.sensors.base import (
    JobRequest,
    SensorContext,
    SensorRegistry,
    SensorSpec,
    default_registry,
    sensor,
)
from herald.sensors.cron import schedule

__all__ = [
    "JobRequest",
    "SensorContext",
    "SensorRegistry",
    "SensorSpec",
    "default_registry",
    "schedule",
    "sensor",
]
