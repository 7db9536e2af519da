"""Run Herald's HTTP server (API + sensors + workers in one process tree)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

import uvicorn

from herald.api import create_app
from herald.auth import check_bind, check_key_strength, ensure_api_key, key_path
from herald.bootstrap import Herald
from herald.settings import Settings

log = logging.getLogger("herald")


def serve(
    settings: Settings,
    *,
    load: list[str] | None = None,
    sensors: bool = True,
    workers: bool = True,
    announce: bool = True,
    app_factory: Callable[[Herald, str], Any] | None = None,
) -> None:
    """Start Herald and block until SIGINT/SIGTERM; ``app_factory(h, key)`` replaces the full
    app (``herald serve`` mounts only the data plane)."""
    host, port = settings.api.host, settings.api.port
    check_bind(host, settings.api_key is not None)
    check_key_strength(settings.api_key, settings.security.auth.min_api_key_length)
    h = Herald(settings, load=load)
    key, created = ensure_api_key(settings.home, settings.api_key)
    if "HERALD_URL" not in os.environ:
        # this server's jobs (local subprocesses) reach it here, e.g. deployment:NAME
        # evaluation targets; they fell back to port 8700 — someone else's on a shared host
        os.environ["HERALD_URL"] = own_url(host, port)
    if announce:
        print(
            f"Herald {_version()} — http://{host}:{port}  (home: {settings.home})", file=sys.stderr
        )
        if created:
            print(
                f"Generated admin API key (stored in {key_path(settings.home)}, shown once):\n  {key}",
                file=sys.stderr,
            )
        specs = h.sensor_registry.all()
        if specs:
            print(f"Sensors: {', '.join(s.name for s in specs)}", file=sys.stderr)
    if app_factory is not None:
        app = app_factory(h, key)
    else:
        app = create_app(h, key, sensors=sensors, workers=workers)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    asyncio.run(server.serve())
    if not server.started:
        raise SystemExit(1)


def own_url(host: str, port: int) -> str:
    """The URL a process on this machine reaches a server bound to ``host:port`` at (a
    wildcard bind is reached on loopback)."""
    if host in ("", "0.0.0.0"):
        return f"http://127.0.0.1:{port}"
    if host == "::":
        return f"http://[::1]:{port}"
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"http://[{host}]:{port}"
    except ValueError:
        pass  # a host name
    return f"http://{host}:{port}"


def _version() -> str:
    from herald import __version__

    return __version__
