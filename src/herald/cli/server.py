"""``herald up|api|worker|serve`` and ``herald db``: run Herald's processes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from herald.cli.common import (
    err,
    fail,
    out,
    print_json,
)
from herald.errors import HeraldError

if TYPE_CHECKING:
    from herald.bootstrap import Herald

from herald.cli.app import app, db_app

dump = print_json


# herald up / api / worker -----------------------------------------------------------------------
def _settings(host: str | None, port: int | None, config: Path | None) -> Any:
    import os

    from herald.settings import load_settings

    if config is not None:
        if not config.is_file():
            fail(f"config file not found: {config}")
        os.environ["HERALD_CONFIG"] = str(config)
    overrides: dict[str, Any] = {}
    try:
        settings = load_settings()
        api = settings.api.model_copy(
            update={k: v for k, v in {"host": host, "port": port}.items() if v is not None}
        )
        settings = settings.model_copy(update={"api": api, **overrides})
        from herald.security.files import record_server_cwd

        return record_server_cwd(settings, settings.api.host)  # cwd readable on loopback only
    except HeraldError as exc:
        fail(exc.message)


PREFLIGHT_TIMEOUT_S = 20.0
STARTUP_ERROR = 2  # exit code: a backend named in the configuration cannot be reached


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {PREFLIGHT_TIMEOUT_S:.0f} s"
    text = exc.message if isinstance(exc, HeraldError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:600]


def _preflight(settings: Any) -> None:
    """Reach the database and the artifact store before starting a role: exit 2 with the URL
    and what to check, instead of a traceback from deep inside start-up."""
    import asyncio
    import concurrent.futures
    import contextlib
    import time

    from herald.artifacts.registry import open_artifact_store
    from herald.bus.registry import open_event_log
    from herald.store.shared import safe_url

    db = settings.resolved_database_url

    async def check_database() -> None:
        log = open_event_log(db)
        try:
            await asyncio.wait_for(log.start(), PREFLIGHT_TIMEOUT_S)
        finally:
            with contextlib.suppress(Exception):  # a log that never opened: keep the cause
                await log.close()

    for attempt in range(1, 4):
        # a second try covers processes started together on a fresh database: the one that
        # loses the race to create the schema fails once, then finds it migrated
        try:
            asyncio.run(check_database())
            break
        except Exception as exc:
            if attempt < 3 and not isinstance(exc, TimeoutError):
                time.sleep(1.0)
                continue
            fail(
                f"cannot reach the database {safe_url(db)}: {_reason(exc)}\n"
                "  check HERALD_DATABASE_URL (or database_url in herald.yaml): is the server "
                "running and reachable from this host (host, port, firewall), are the user, "
                "password and database name right, and may the user create tables (Herald "
                "migrates on start; `herald db upgrade` does it ahead)?",
                code=STARTUP_ERROR,
            )
    arts = settings.resolved_artifacts_url
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        store = open_artifact_store(arts, cache_dir=settings.home / "cache" / "artifacts")
        # a lookup of a key that need not exist: it reaches the store without writing to it
        pool.submit(store.exists, "herald-preflight").result(PREFLIGHT_TIMEOUT_S)
    except Exception as exc:
        fail(
            f"cannot reach the artifact store {safe_url(arts)}: {_reason(exc)}\n"
            "  check HERALD_ARTIFACTS_URL (or artifacts_url in herald.yaml): for s3:// the "
            "endpoint_url, the bucket and the credentials (AWS_ACCESS_KEY_ID / "
            "AWS_SECRET_ACCESS_KEY or a profile); for a local path that it is a writable folder.",
            code=STARTUP_ERROR,
        )
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _serve(
    host: str | None,
    port: int | None,
    load: list[str] | None,
    config: Path | None,
    *,
    sensors: bool,
    workers: bool,
    factory: Callable[[Herald, str], Any] | None = None,
) -> None:
    import logging

    from herald.server import serve

    settings = _settings(host, port, config)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    _preflight(settings)
    try:
        serve(settings, load=load or [], sensors=sensors, workers=workers, app_factory=factory)
    except HeraldError as exc:
        fail(exc.message)
    except OSError as exc:
        fail(f"cannot start the server: {exc}")


HostOpt = Annotated[str | None, typer.Option("--host", help="Bind address (default 127.0.0.1).")]
PortOpt = Annotated[int | None, typer.Option("--port", help="Port (default 8700).")]
LoadOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--load",
        "-l",
        help="Plugin to load: a .py file, a YAML rule file or a module (repeatable).",
    ),
]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="herald.yaml to use.")]


@app.command()
def up(
    host: HostOpt = None, port: PortOpt = None, load: LoadOpt = None, config: ConfigOpt = None
) -> None:
    """Run everything in one process tree: API, sensors and job workers (embedded defaults)."""
    _serve(host, port, load, config, sensors=True, workers=True)


@app.command()
def api(
    host: HostOpt = None, port: PortOpt = None, load: LoadOpt = None, config: ConfigOpt = None
) -> None:
    """Run only the API (sensors and workers run elsewhere against the same database)."""
    _serve(host, port, load, config, sensors=False, workers=False)


@app.command("serve")
def serve_models(
    host: HostOpt = None, port: PortOpt = None, load: LoadOpt = None, config: ConfigOpt = None
) -> None:
    """Run only model servers: the OpenAI data plane and deployments (no sensors, no workers)."""
    from herald.api.serving_role import create_serving_app

    _serve(host, port, load, config, sensors=False, workers=False, factory=create_serving_app)


@app.command()
def worker(
    load: LoadOpt = None,
    config: ConfigOpt = None,
    host: HostOpt = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            help="Also answer /healthz, /readyz and /metrics on this port (default: no HTTP).",
        ),
    ] = None,
) -> None:
    """Run sensors and job workers without the HTTP API (against a shared database)."""
    if host is not None and port is None:
        fail("--host needs --port (the worker answers HTTP only on a port you choose)")
    if port is not None:
        from herald.api.worker_role import create_worker_app

        _serve(host, port, load, config, sensors=True, workers=True, factory=create_worker_app)
        return
    import asyncio
    import logging
    import signal

    from herald.bootstrap import Herald

    settings = _settings(None, None, config)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    _preflight(settings)

    async def run() -> None:
        h = Herald(settings, load=load or [])
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await h.start()
        err.print(f"worker running on {settings.resolved_database_url} (Ctrl+C to stop)")
        try:
            await stop.wait()
        finally:
            await h.stop()

    try:
        asyncio.run(run())
    except HeraldError as exc:
        fail(exc.message)


# db & misc --------------------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None) -> None:
    """Apply database migrations (herald up does this itself)."""
    import asyncio

    from herald.bus.registry import open_event_log

    settings = _settings(None, None, config)

    async def run() -> None:
        log = open_event_log(settings.resolved_database_url)
        await log.start()
        await log.close()

    try:
        asyncio.run(run())
    except HeraldError as exc:
        fail(exc.message)
    out.print(f"schema up to date: {settings.resolved_database_url}")
