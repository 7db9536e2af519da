"""Executors by name: ``inline`` and ``local`` built in; others via ``herald.executors``
entry points (Ray and Kubernetes plug in here)."""

from herald.jobs.executors.base import Executor, JobFailure

__all__ = ["Executor", "JobFailure"]
