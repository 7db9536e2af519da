"""Capability routers mounted under ``/v1``.

Each module named in :data:`ROUTE_MODULES` defines ``router(h: Herald) -> fastapi.APIRouter``.
A capability adds its REST surface by adding its module here; nothing else in ``api/`` changes.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import APIRouter

    from herald.bootstrap import Herald

ROUTE_MODULES: tuple[str, ...] = (
    "herald.api.routes.serving",
    "herald.api.routes.registry",
    "herald.api.routes.rag",
    "herald.api.routes.evaluation",
    "herald.api.routes.deployments",
    "herald.api.routes.monitoring",
    "herald.api.routes.prompts",
    "herald.api.routes.dashboard",
    "herald.api.routes.uploads",
)


def capability_routers(h: Herald) -> list[APIRouter]:
    return [import_module(name).router(h) for name in ROUTE_MODULES]
