"""DESIGN §2 acceptance: 1,000 placed orders become exactly 1,000 shipped orders, each caused by
its order — also when the server is SIGKILLed in the middle and restarted."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

EXAMPLE = str(ROOT / "examples" / "orders.py")


def post_orders(
    client: httpx.Client, orders: list[tuple[str, str]], stop: threading.Event
) -> list[str]:
    """POST each (message id, order id); return the ids that were not acknowledged."""
    unacked = []
    for i, (msg_id, order_id) in enumerate(orders):
        if stop.is_set():
            unacked.extend(m for m, _ in orders[i:])
            break
        try:
            r = client.post(
                "/v1/messages",
                json={
                    "id": msg_id,
                    "type": "acme.order.placed",
                    "data": {"order_id": order_id, "amount": 10.0},
                },
            )
            if r.status_code not in (200, 202):
                unacked.append(msg_id)
        except httpx.HTTPError:
            unacked.append(msg_id)
    return unacked


def all_of_type(client: httpx.Client, type_name: str) -> list[dict]:
    out, after = [], 0
    while True:
        page = client.get(
            "/v1/messages", params={"type": type_name, "after": after, "limit": 1000}
        ).json()
        out.extend(page["data"])
        if len(page["data"]) < 1000:
            return out
        after = page["next_after"]


def wait_for_count(client: httpx.Client, type_name: str, n: int, timeout: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        got = all_of_type(client, type_name)
        if len(got) >= n or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def check_exactly_once(client: httpx.Client, orders: list[tuple[str, str]]) -> None:
    placed = {e["id"]: e for e in all_of_type(client, "acme.order.placed")}
    assert set(placed) == {m for m, _ in orders}  # every acknowledged or retried order stored once
    shipped = wait_for_count(client, "acme.order.shipped", len(orders))
    time.sleep(1.0)  # give any duplicate a chance to appear
    shipped = all_of_type(client, "acme.order.shipped")
    assert len(shipped) == len(orders)
    causes = [e["causationid"] for e in shipped]
    assert len(set(causes)) == len(orders)
    for e in shipped:
        cause = placed[e["causationid"]]
        assert e["data"]["order_id"] == cause["data"]["order_id"]
        assert e["correlationid"] == cause["correlationid"]


def test_thousand_orders_shipped_exactly_once(server_factory) -> None:
    server = server_factory([EXAMPLE])
    server.start()
    orders = [(str(uuid.uuid4()), f"o-{i}") for i in range(1000)]
    with server.client() as c:
        assert post_orders(c, orders, threading.Event()) == []
        check_exactly_once(c, orders)


def test_thousand_orders_survive_sigkill_and_restart(server_factory) -> None:
    server = server_factory([EXAMPLE])
    server.start()
    orders = [(str(uuid.uuid4()), f"o-{i}") for i in range(1000)]
    stop = threading.Event()
    unacked: list[str] = []
    with server.client() as c:
        worker = threading.Thread(target=lambda: unacked.extend(post_orders(c, orders, stop)))
        worker.start()
        while len(all_of_type(c, "acme.order.placed")) < 400:  # kill mid-stream, sensor busy
            time.sleep(0.02)
        server.kill()
        stop.set()
        worker.join(30)
    shipped_before = None
    server.start()  # same home, same SQLite file
    with server.client() as c:
        shipped_before = len(all_of_type(c, "acme.order.shipped"))
        # clients retry what was not acknowledged; publishing with the same id is idempotent
        retry = [o for o in orders if o[0] in set(unacked)]
        assert post_orders(c, retry, threading.Event()) == []
        check_exactly_once(c, orders)
    assert shipped_before < 1000  # the kill really happened in the middle
