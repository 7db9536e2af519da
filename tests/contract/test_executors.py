"""The executor kit (herald.testing.ExecutorContract) over the built-in local executors:
inline (in the worker process) and local (a subprocess per attempt). The Ray executor runs the
kit on its module's cluster in tests/integration/test_ray_executor.py."""

from __future__ import annotations

import pytest

from herald.jobs.executors.inline import InlineExecutor
from herald.jobs.executors.local import LocalExecutor
from herald.testing import KIT_PLUGIN, ExecutorContract, ExecutorFactory


class TestInlineExecutor(ExecutorContract):
    @pytest.fixture
    def make_executor(self) -> ExecutorFactory:
        return lambda: InlineExecutor(capacity=4)


class TestLocalExecutor(ExecutorContract):
    @pytest.fixture
    def make_executor(self) -> ExecutorFactory:
        return lambda: LocalExecutor(capacity=2, plugins=[KIT_PLUGIN], cancel_grace_s=2.0)
