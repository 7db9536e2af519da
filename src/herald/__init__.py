"""Herald: event-driven LLMOps — typed messages, autonomous sensors and jobs."""

from herald.bootstrap import Herald
from herald.client import Client
from herald.errors import HeraldError
from herald.jobs.context import JobContext
from herald.jobs.registry import job
from herald.messages.base import Message
from herald.messages.envelope import Envelope
from herald.sensors.base import SensorContext, sensor
from herald.sensors.cron import schedule

__version__ = "0.1.0"

__all__ = [
    "Client",
    "Envelope",
    "Herald",
    "HeraldError",
    "JobContext",
    "Message",
    "SensorContext",
    "__version__",
    "job",
    "schedule",
    "sensor",
]
