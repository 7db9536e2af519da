"""Factories of the built-in executors (targets of :data:`herald.jobs.executors.EXECUTORS`)."""

from __future__ import annotations

from herald.jobs.executors import ExecutorSetup
from herald.jobs.executors.base import Executor
from herald.jobs.executors.inline import InlineExecutor
from herald.jobs.executors.local import LocalExecutor


def inline(setup: ExecutorSetup) -> Executor:
    return InlineExecutor(setup.settings.jobs.inline_concurrency, setup.services)


def local(setup: ExecutorSetup) -> Executor:
    js = setup.settings.jobs
    return LocalExecutor(js.local_concurrency, setup.plugins, js.cancel_grace_s)


def kubernetes(setup: ExecutorSetup) -> Executor | None:
    js = setup.settings.jobs
    if not js.kubernetes.enabled:
        return None
    from herald.jobs.executors.kubernetes import KubernetesExecutor  # the kubernetes client

    return KubernetesExecutor(js.kubernetes, setup.plugins)


def ray(setup: ExecutorSetup) -> Executor | None:
    js = setup.settings.jobs
    if not js.ray.enabled:
        return None
    from herald.jobs.executors.ray import RayExecutor, job_environment  # ray (heavy)

    env = job_environment(setup.settings, forward=js.ray.forward_env)
    return RayExecutor(js.ray, setup.plugins, env=env, cancel_grace_s=js.cancel_grace_s)
