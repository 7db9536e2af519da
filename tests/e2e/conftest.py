"""Run real `herald up` processes on loopback for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A `herald up` subprocess; `kill()` sends SIGKILL, `start()` starts it again."""

    def __init__(
        self, home: Path, load: list[str], env: dict[str, str] | None = None, command: str = "up"
    ) -> None:
        self.command = command
        self.home = home
        self.load = load
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = home / "server.log"

    def start(self, timeout: float = 30) -> None:
        env = {**os.environ, "HERALD_HOME": str(self.home), **self.env}
        env.pop("HERALD_API_KEY", None) if "HERALD_API_KEY" not in self.env else None
        args = [sys.executable, "-m", "herald.cli.main", self.command, "--port", str(self.port)]
        for item in self.load:
            args += ["--load", item]
        self.home.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as logf:
            self.proc = subprocess.Popen(
                args, cwd=ROOT, env=env, stdout=logf, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"herald up exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}"
                )
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"herald up did not become ready:\n{self.log.read_text()[-3000:]}")

    @property
    def key(self) -> str:
        return self.env.get("HERALD_API_KEY") or (self.home / "admin.key").read_text().strip()

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=30
        )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[object]:
    servers: list[Server] = []

    def make(load: list[str], command: str = "up", home: Path | None = None, **env: str) -> Server:
        s = Server(home or tmp_path / f"home{len(servers)}", load, env, command)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()
        if s.log.exists():  # shown by pytest only when the test failed
            tail = s.log.read_text(errors="replace")[-6000:]
            print(f"--- {s.log} (last 6,000 characters) ---\n{tail}")
