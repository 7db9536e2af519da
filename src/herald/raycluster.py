"""Joining a Ray cluster, shared by the ``ray`` executor, distributed fine-tuning and sharded
evaluation (they all join the cluster named by ``jobs.ray.address`` or an explicit address).

``ray`` is imported only inside :func:`connect`.
"""

from __future__ import annotations

import socket
import warnings
from typing import Any
from urllib.parse import urlsplit

from herald.errors import BackendUnavailable, ConfigurationError
from herald.settings import RaySettings


def host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of an explicit address; ``None`` for ``auto`` and ``local``."""
    if address in ("auto", "local", ""):
        return None
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise ConfigurationError(
            f"jobs.ray.address {address!r} is not host:port, ray://host:port, auto or local"
        )
    return parts.hostname, port


def check_reachable(address: str, timeout: float) -> None:
    """Fail fast, naming the address, when nothing listens there."""
    hp = host_port(address)
    if hp is None:
        return
    try:
        with socket.create_connection(hp, timeout=timeout):
            pass
    except OSError as exc:
        raise BackendUnavailable(
            f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}): check that "
            "the head node runs (ray start --head / a KubeRay RayCluster), that the port is the "
            "GCS port (6379 by default) or the Ray Client port (ray://…:10001), and "
            "HERALD_JOBS__RAY__ADDRESS"
        ) from None


def connect(settings: RaySettings) -> str:
    """Join the cluster (once per process); return the GCS address of the cluster joined."""
    check_reachable(settings.address, settings.connect_timeout_s)
    try:
        import ray
    except ImportError as exc:
        raise BackendUnavailable('the ray executor needs Ray: pip install "herald[ray]"') from exc
    if ray.is_initialized():
        return str(ray.get_runtime_context().gcs_address)
    kwargs: dict[str, Any] = {
        "namespace": settings.namespace,
        "log_to_driver": False,  # job logs come back through the task itself
        "configure_logging": False,
    }
    if settings.runtime_env:
        kwargs["runtime_env"] = dict(settings.runtime_env)
    if settings.address == "local":
        kwargs["include_dashboard"] = False
        if settings.local_num_cpus:
            kwargs["num_cpus"] = settings.local_num_cpus
    else:
        kwargs["address"] = settings.address
    try:
        with warnings.catch_warnings():
            # Ray warns that it cannot install its SIGTERM handler off the main thread; the
            # Herald worker handles signals itself.
            warnings.simplefilter("ignore")
            ray.init(**kwargs)
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
        where = settings.address
        raise BackendUnavailable(
            f"cannot join the Ray cluster at {where}: {exc}. Check jobs.ray.address "
            "(HERALD_JOBS__RAY__ADDRESS): host:port of the head's GCS, ray://host:10001, "
            "auto (a cluster started on this machine or $RAY_ADDRESS) or local"
        ) from None
    return str(ray.get_runtime_context().gcs_address)
