"""Issue 9 work sharing: one `herald api` and two `herald worker` processes on one PostgreSQL.

Each sensor is owned by one live worker at a time (EventLog.try_own); the other one waits and
takes over when the owner is SIGKILLed. 300 orders become exactly 300 shipped orders, no order
is handled by two live workers, and the orders left at the kill are shipped by the survivor.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT
from tests.e2e.test_orders_sigkill import all_of_type, check_exactly_once, post_orders

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PLUGIN = """
import os, time
import herald


class OrderPlaced(herald.Message, type="acme.order.placed"):
    order_id: str
    amount: float


class OrderShipped(herald.Message, type="acme.order.shipped"):
    order_id: str


@herald.sensor(on=OrderPlaced, where=lambda m: m.amount > 0)
def ship(msg: OrderPlaced, ctx: herald.SensorContext):
    # the side effect whose duplicates we count: one line per handler run, tagged with the pid
    fd = os.open(os.environ["HANDLED_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{os.getpid()} {msg.order_id}\\n".encode())
    finally:
        os.close(fd)
    time.sleep(0.01)  # a little work, so the kill lands in the middle
    return OrderShipped(order_id=msg.order_id)
"""


def owned_now(logfile: Path) -> int:
    """Sensors a worker runs, from its log (taken minus handed over or lost)."""
    text = logfile.read_text()
    return (
        text.count("owned by this worker")
        - text.count("handed over")
        - text.count("ownership lost to another worker")
    )


def wait_for_shares(logfiles: list[Path], timeout: float = 120, quiet_s: float = 3.0) -> None:
    """Workers split the sensors fairly and hand extras over when one joins: wait until every
    worker runs some and nothing moved for ``quiet_s``, so one sensor keeps one owner."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while True:
        counts = [owned_now(f) for f in logfiles]
        if counts != last:
            last, since = counts, time.monotonic()
        elif all(c > 0 for c in counts) and time.monotonic() - since >= quiet_s:
            return
        assert time.monotonic() < deadline, f"sensor shares did not settle: {counts}"
        time.sleep(0.1)


def handled(path: Path) -> list[tuple[int, str]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        pid, order = line.split()
        out.append((int(pid), order))
    return out


def start_worker(
    home: Path, env: dict[str, str], plugin: Path, name: str
) -> subprocess.Popen[bytes]:
    home.mkdir(parents=True, exist_ok=True)
    with (home / f"{name}.log").open("ab") as logf:
        return subprocess.Popen(
            [sys.executable, "-m", "herald.cli.main", "worker", "--load", str(plugin)],
            cwd=ROOT,
            env={**os.environ, "HERALD_HOME": str(home), **env},
            stdout=logf,
            stderr=subprocess.STDOUT,
        )


def test_two_workers_share_sensors_and_fail_over_on_sigkill(
    server_factory, fresh_postgres_url: str, tmp_path: Path
) -> None:
    plugin = tmp_path / "orders_counted.py"
    plugin.write_text(PLUGIN)
    log_path = tmp_path / "handled.log"
    env = {
        "HERALD_DATABASE_URL": fresh_postgres_url,
        "HERALD_API_KEY": "sk-scaleout-" + uuid.uuid4().hex,
        "HERALD_SENSORS__OWNERSHIP_RETRY_S": "0.5",
        "HANDLED_LOG": str(log_path),
    }
    api = server_factory([str(plugin)], command="api", **env)
    api.start()
    workers = {name: start_worker(tmp_path / name, env, plugin, name) for name in ("w1", "w2")}
    try:
        deadline = time.monotonic() + 120
        for name, p in workers.items():  # sensors are registered before this line is printed
            logfile = tmp_path / name / f"{name}.log"
            while "worker running on" not in logfile.read_text():
                assert p.poll() is None, logfile.read_text()[-3000:]
                assert time.monotonic() < deadline, f"{name} did not start"
                time.sleep(0.1)
        wait_for_shares([tmp_path / name / f"{name}.log" for name in workers])
        orders = [(str(uuid.uuid4()), f"o-{i}") for i in range(300)]
        with api.client() as c:
            unacked: list[str] = []
            poster = threading.Thread(
                target=lambda: unacked.extend(post_orders(c, orders, threading.Event()))
            )
            poster.start()
            deadline = time.monotonic() + 120
            while len(handled(log_path)) < 60:  # the owner is busy shipping
                assert time.monotonic() < deadline, "no worker handled orders"
                for name, p in workers.items():
                    assert p.poll() is None, (tmp_path / name / f"{name}.log").read_text()
                time.sleep(0.02)
            before = handled(log_path)
            owners = {pid for pid, _ in before}
            assert len(owners) == 1  # one worker owns the sensor; the other never ran it
            [owner_pid] = owners
            [victim] = [n for n, p in workers.items() if p.pid == owner_pid]
            workers[victim].kill()  # SIGKILL: no cleanup, the lock dies with the process
            workers[victim].wait(10)
            at_kill = len(handled(log_path))
            shipped_at_kill = len(all_of_type(c, "acme.order.shipped"))
            poster.join(120)
            assert not poster.is_alive() and unacked == []
            check_exactly_once(c, orders)
            shipped = all_of_type(c, "acme.order.shipped")
        runs = handled(log_path)
        [survivor] = [p.pid for n, p in workers.items() if n != victim]
        assert {pid for pid, _ in runs} == {owner_pid, survivor}  # the survivor took over
        survivor_runs = [o for pid, o in runs if pid == survivor]
        victim_runs = [o for pid, o in runs if pid == owner_pid]
        assert len(victim_runs) == at_kill
        # no order ran twice on a live worker: each worker handled each order at most once
        assert max(Counter(survivor_runs).values()) == 1
        assert max(Counter(victim_runs).values()) == 1
        # the only repeats are the victim's last, uncommitted batch (handlers run at least
        # once; their outputs exactly once), never more than one commit batch
        repeated = set(survivor_runs) & set(victim_runs)
        assert len(repeated) <= 64
        assert repeated <= set(victim_runs[-64:])
        assert {o for _, o in orders} == set(survivor_runs) | set(victim_runs)
        assert shipped_at_kill < 300 and len(survivor_runs) > 0 and len(shipped) == 300
    finally:
        for p in workers.values():
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
