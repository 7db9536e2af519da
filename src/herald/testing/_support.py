"""Plumbing shared by the kits: running a coroutine body from a plain (sync) pytest test.

The kits do not depend on pytest-asyncio or anyio: an async check is written as ``async def``
and wrapped into a sync test that drives it on a fresh event loop (or on the class's loop,
for kits whose adapter is expensive to load once per class).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def rename(test: Callable[..., Any], body: Callable[..., Any]) -> None:
    """Give ``test`` the name and docstring of ``body`` without ``functools.wraps``: pytest
    follows ``__wrapped__`` to find fixture names, and the wrapper's own signature is the one
    that must count."""
    test.__name__ = body.__name__
    test.__qualname__ = body.__qualname__
    test.__doc__ = body.__doc__
    test.__module__ = body.__module__


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a new event loop (one per test: adapters hold loop-bound resources)."""
    return asyncio.run(coro)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def norm(v: Sequence[float]) -> float:
    return math.sqrt(sum(x * x for x in v))
