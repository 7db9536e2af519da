"""Jobs: typed job functions, the queue worker and executors."""

from herald.jobs.context import JobContext
from herald.jobs.registry import JobDefinition, JobRegistry, default_jobs, job

__all__ = ["JobContext", "JobDefinition", "JobRegistry", "default_jobs", "job"]
