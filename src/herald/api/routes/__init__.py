"""Capability routers mounted under ``/v1``: the ``routes`` of every capability in the manifest
(:mod:`herald.capabilities`), each module defining ``router(h: Herald) -> fastapi.APIRouter``."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from herald.capabilities import route_modules

if TYPE_CHECKING:
    from fastapi import APIRouter

    from herald.bootstrap import Herald


def capability_routers(h: Herald) -> list[APIRouter]:
    return [import_module(name).router(h) for name in route_modules()]
