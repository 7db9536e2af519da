"""The CLI and HTTP edges against a real `herald up` process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
ORDERS = str(ROOT / "examples" / "orders.py")
RULES = str(ROOT / "examples" / "rules.yaml")

pytestmark = pytest.mark.slow


def herald_cli(server, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HERALD_URL": server.url,
        "HERALD_HOME": str(server.home),
        "COLUMNS": "200",
    }
    env.pop("HERALD_API_KEY", None)
    proc = subprocess.run(
        [sys.executable, "-m", "herald.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_cli_emit_events_flow_sensors(server_factory) -> None:
    server = server_factory([ORDERS, RULES])
    server.start()
    out = herald_cli(
        server,
        "emit",
        "acme.order.placed",
        "--data",
        '{"order_id": "X1", "amount": 1500}',
        "--json",
    )
    env = json.loads(out.stdout)
    assert env["type"] == "acme.order.placed"
    with server.client() as c:
        for _ in range(100):
            shipped = c.get("/v1/messages", params={"type": "acme.order.shipped"}).json()["data"]
            if len(shipped) == 2:
                break
            time.sleep(0.05)
    assert sorted(e["data"]["order_id"] for e in shipped) == ["X1", "X1-express"]
    assert {e["subject"] for e in shipped} == {None, "express/X1"}
    events = herald_cli(server, "events", "--json").stdout.splitlines()
    assert [json.loads(x)["type"] for x in events] == ["acme.order.placed"] + [
        "acme.order.shipped"
    ] * 2
    tree = herald_cli(server, "flow", env["correlationid"]).stdout
    assert "acme.order.placed" in tree and tree.count("acme.order.shipped") == 2
    sensors = json.loads(herald_cli(server, "sensors", "--json").stdout)
    mine = ("orders.ship", "flag-large-orders")  # beside Herald's built-in sensors
    loaded = {s["name"]: s["kind"] for s in sensors if s["name"] in mine}
    assert loaded == {"orders.ship": "python", "flag-large-orders": "rule"}
    herald_cli(server, "sensors", "disable", "orders.ship")
    assert not next(
        s
        for s in json.loads(herald_cli(server, "sensors", "--json").stdout)
        if s["name"] == "orders.ship"
    )["enabled"]
    cat = herald_cli(server, "catalog").stdout
    assert "acme.order.placed" in cat


def test_cli_errors_are_one_readable_line(server_factory, tmp_path: Path) -> None:
    server = server_factory([ORDERS])
    server.start()
    bad = herald_cli(server, "emit", "acme.order.placed", "--data", '{"order_id": 1}', check=False)
    assert bad.returncode != 0
    assert "invalid 'acme.order.placed' payload" in bad.stderr and "Traceback" not in bad.stderr
    bad = herald_cli(server, "emit", "acme.order.placed", "--data", "{nope", check=False)
    assert bad.returncode != 0 and "--data is not valid JSON" in bad.stderr
    bad = herald_cli(server, "emit", "no.such.type", check=False)
    assert bad.returncode != 0 and "unknown message type" in bad.stderr
    bad = herald_cli(server, "jobs", "show", "nope", check=False)
    assert bad.returncode != 0 and "no job" in bad.stderr
    bad = herald_cli(server, "worker", "--host", "127.0.0.1", check=False)
    assert bad.returncode != 0 and "--host needs --port" in bad.stderr
    payload = tmp_path / "order.yaml"
    payload.write_text("order_id: Y\namount: 3\n")
    ok = herald_cli(server, "emit", "acme.order.placed", "-f", str(payload))
    assert "published acme.order.placed" in ok.stdout


def test_sse_stream_delivers_new_messages(server_factory) -> None:
    server = server_factory([ORDERS])
    server.start()
    got: list[dict] = []

    def follow() -> None:
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {server.key}"}, timeout=30
        ) as c:
            with c.stream("GET", "/v1/messages/stream", params={"type": "acme.order.shipped"}) as r:
                assert r.headers["content-type"].startswith("text/event-stream")
                for line in r.iter_lines():
                    if line.startswith("data:"):
                        got.append(json.loads(line[5:]))
                        if len(got) == 3:
                            return

    t = threading.Thread(target=follow, daemon=True)
    t.start()
    time.sleep(0.5)
    with server.client() as c:
        for i in range(3):
            c.post(
                "/v1/messages",
                json={"type": "acme.order.placed", "data": {"order_id": f"s{i}", "amount": 1}},
            )
    t.join(20)
    assert [e["data"]["order_id"] for e in got] == ["s0", "s1", "s2"]


def test_plugin_that_fails_to_import_stops_startup_with_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("import herald\n\nraise RuntimeError('misconfigured plugin')\n")
    env = {**os.environ, "HERALD_HOME": str(tmp_path / "home")}
    proc = subprocess.run(
        [sys.executable, "-m", "herald.cli.main", "up", "--port", "0", "--load", str(broken)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert f"{broken}:3" in proc.stderr and "misconfigured plugin" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_non_loopback_bind_without_key_is_refused(tmp_path: Path) -> None:
    env = {**os.environ, "HERALD_HOME": str(tmp_path / "home")}
    env.pop("HERALD_API_KEY", None)
    proc = subprocess.run(
        [sys.executable, "-m", "herald.cli.main", "up", "--host", "0.0.0.0", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0 and "refusing to listen on 0.0.0.0" in proc.stderr


def test_job_survives_worker_sigkill(server_factory, tmp_path: Path) -> None:
    plugin = ROOT / "tests" / "integration" / "jobs_plugin.py"
    server = server_factory([str(plugin)], HERALD_JOBS__LEASE_S="1.5")
    server.start()
    marker = tmp_path / "pids"
    with server.client() as c:
        job = c.post(
            "/v1/jobs", json={"name": "sleepy", "params": {"seconds": 3, "marker": str(marker)}}
        ).json()
        for _ in range(200):
            if marker.exists():
                break
            time.sleep(0.05)
        first_pid = int(marker.read_text().split()[0])
    server.kill()  # the worker dies mid-job; its child dies with it (PR_SET_PDEATHSIG)
    time.sleep(0.3)
    assert (
        not Path(f"/proc/{first_pid}").exists()
        or "Z" in Path(f"/proc/{first_pid}/stat").read_text().split()[2]
    )
    server.start()
    with server.client() as c:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = c.get(f"/v1/jobs/{job['id']}").json()
            if state["status"] == "succeeded":
                break
            time.sleep(0.2)
        assert state["status"] == "succeeded" and state["attempt"] == 2
        failed = c.get("/v1/messages", params={"type": "job.failed"}).json()["data"]
        assert (
            failed[0]["data"]["will_retry"] is True
            and "lease expired" in failed[0]["data"]["error"]
        )


def test_api_and_worker_processes_share_one_sqlite_database(server_factory, tmp_path: Path) -> None:
    home = tmp_path / "shared"
    api = server_factory([ORDERS], command="api", home=home)
    api.start()
    env = {**os.environ, "HERALD_HOME": str(home)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "herald.cli.main", "worker", "--load", ORDERS],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        with api.client() as c:
            for _ in range(300):  # the worker registers its sensor cursor at start
                sensors = {s["name"]: s for s in c.get("/v1/sensors").json()["data"]}
                if sensors.get("orders.ship", {}).get("cursor") is not None:
                    break
                time.sleep(0.1)
            c.post(
                "/v1/messages",
                json={"type": "acme.order.placed", "data": {"order_id": "W", "amount": 1}},
            )
            for _ in range(300):
                shipped = c.get("/v1/messages", params={"type": "acme.order.shipped"}).json()[
                    "data"
                ]
                if shipped:
                    break
                time.sleep(0.05)
            else:
                pytest.fail("the worker process did not ship the order within 15 s")
        assert [e["data"]["order_id"] for e in shipped] == ["W"]
    finally:
        worker.terminate()
        worker.wait(15)
    assert worker.returncode == 0, worker.stderr.read() if worker.stderr else ""


def test_worker_with_a_port_answers_probes_and_metrics(server_factory, tmp_path: Path) -> None:
    """`herald worker --port`: /healthz and /readyz for Kubernetes probes, /metrics (behind the
    key) for Prometheus, while it ships orders the API takes in."""
    home = tmp_path / "shared"
    api = server_factory([ORDERS], command="api", home=home)
    api.start()
    worker = server_factory([ORDERS], command="worker", home=home)
    worker.start()  # waits for its /readyz
    assert httpx.get(f"{worker.url}/healthz").json()["status"] == "ok"
    assert httpx.get(f"{worker.url}/metrics").status_code == 401
    with api.client() as c:
        c.post(
            "/v1/messages",
            json={"type": "acme.order.placed", "data": {"order_id": "M", "amount": 1}},
        )
        for _ in range(300):
            if c.get("/v1/messages", params={"type": "acme.order.shipped"}).json()["data"]:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the worker did not ship the order within 15 s")
    with worker.client() as w:
        text = w.get("/metrics").text
        assert w.get("/v1/messages").status_code == 404  # probes and metrics only
    lines = text.splitlines()
    assert 'herald_sensor_lag_events{sensor="orders.ship"} 0.0' in lines
    handled = [x for x in lines if x.startswith("herald_sensor_handled_total{")]
    assert any('sensor="orders.ship"' in x and not x.endswith(" 0.0") for x in handled), handled


def test_python_client(server_factory) -> None:
    import herald
    from herald.errors import MessageValidationError, NotFound, UnknownMessageType

    server = server_factory([ORDERS])
    server.start()
    with herald.Client(server.url, server.key) as c:
        assert c.health()["status"] == "ok"
        env = c.emit("acme.order.placed", {"order_id": "P1", "amount": 5}, subject="orders/P1")
        assert env.seq == 1 and env.subject == "orders/P1"
        shipped = c.wait_for("acme.order.shipped", correlationid=env.correlationid)  # README
        assert shipped.causationid == env.id
        flow = c.flow(env.correlationid)
        assert [n["type"] for n in flow["nodes"]] == ["acme.order.placed", "acme.order.shipped"]
        with pytest.raises(TimeoutError, match=r"no acme\.order\.cancelled message"):
            c.wait_for("acme.order.cancelled", correlationid=env.correlationid, timeout=0.3)
        assert c.message(env.id).data == {"order_id": "P1", "amount": 5.0}
        assert [e.type for e in c.messages(correlationid=env.correlationid)] == [
            "acme.order.placed",
            "acme.order.shipped",
        ]
        assert "orders.ship" in {s["name"] for s in c.sensors()}
        with pytest.raises(MessageValidationError) as info:
            c.emit("acme.order.placed", {"order_id": "P2"})
        assert info.value.status == 422 and info.value.details[0]["loc"] == ["amount"]
        with pytest.raises(UnknownMessageType):
            c.emit("acme.unknown", {})
        with pytest.raises(NotFound):
            c.job("nope")
    with (
        herald.Client(server.url, "wrong-key") as bad,
        pytest.raises(herald.HeraldError, match="invalid API key"),
    ):
        bad.catalog()
