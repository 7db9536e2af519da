"""The control-plane REST API over ASGI: auth, publishing, validation errors, queries, flows,
catalog, sensors, jobs and dead letters."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

import herald
from herald.api import create_app

from .conftest import Env

KEY = "test-key"


class Order(herald.Message, type="api.order.placed"):
    order_id: str
    amount: float


class Shipped(herald.Message, type="api.order.shipped"):
    order_id: str


@pytest.fixture
async def api(env: Env) -> AsyncIterator[httpx.AsyncClient]:
    @herald.sensor(on=Order, where=lambda m: m.amount > 0, registry=env.sensors, name="ship")
    def ship(msg: Order) -> Shipped:
        if msg.order_id.startswith("poison"):
            raise RuntimeError("cannot ship poison")
        return Shipped(order_id=msg.order_id)

    @herald.job(name="double", executor="inline", registry=env.jobs)
    def double(x: int) -> int:
        return 2 * x

    h = await env.start()
    app = create_app(h, KEY, manage_lifecycle=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers={"Authorization": f"Bearer {KEY}"}
    ) as c:
        yield c


async def test_probes_are_public_everything_else_needs_the_key(api: httpx.AsyncClient) -> None:
    anon = {"Authorization": ""}
    assert (await api.get("/healthz", headers=anon)).status_code == 200
    assert (await api.get("/readyz", headers=anon)).json()["status"] == "ready"
    for path in ("/v1/catalog", "/v1/messages", "/metrics", "/openapi.json", "/docs"):
        r = await api.get(path, headers=anon)
        assert r.status_code == 401, path
        assert r.json()["error"]["code"] == "unauthorized"
    r = await api.get("/v1/catalog", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.json()["error"]["message"] == "invalid API key"
    assert (await api.get("/openapi.json")).json()["info"]["title"] == "Herald"


async def test_publish_returns_202_with_cloudevents_envelope(
    api: httpx.AsyncClient, env: Env
) -> None:
    r = await api.post(
        "/v1/messages",
        json={
            "type": "api.order.placed",
            "data": {"order_id": "A", "amount": 2},
            "subject": "orders/A",
        },
    )
    assert r.status_code == 202
    e = r.json()
    assert e["specversion"] == "1.0" and e["type"] == "api.order.placed" and e["seq"] >= 1
    assert e["correlationid"] == e["id"] and e["causationid"] is None and e["subject"] == "orders/A"
    assert r.headers["location"] == f"/v1/messages/{e['id']}"
    [shipped] = await env.wait_for("api.order.shipped", 1)
    assert shipped.causationid == e["id"]
    got = (await api.get(f"/v1/messages/{shipped.id}")).json()
    assert got["data"] == {"order_id": "A"}


async def test_publish_with_client_id_is_idempotent(api: httpx.AsyncClient) -> None:
    body = {"id": "fixed-1", "type": "api.order.placed", "data": {"order_id": "B", "amount": 1}}
    first = await api.post("/v1/messages", json=body)
    again = await api.post("/v1/messages", json=body)
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["seq"] == again.json()["seq"]
    clash = await api.post("/v1/messages", json={**body, "data": {"order_id": "C", "amount": 1}})
    assert clash.status_code == 409


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"type": "nope.nothing", "data": {}}, 422, "unknown_message_type"),
        ({"type": "api.order.placed", "data": {"order_id": 1}}, 422, "invalid_payload"),
        (
            {"type": "api.order.placed", "data": {"order_id": "x", "amount": 1, "extra": 1}},
            422,
            "invalid_payload",
        ),
        ({"data": {}}, 422, "invalid_request"),
        (
            {"type": "api.order.placed", "data": {"order_id": "x" * 70000, "amount": 1}},
            413,
            "payload_too_large",
        ),
    ],
)
async def test_bad_messages_are_refused_and_not_stored(
    api: httpx.AsyncClient, body: dict, status: int, code: str
) -> None:
    r = await api.post("/v1/messages", json=body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and err["message"] and err["type"] == "invalid_request_error"
    assert (await api.get("/v1/messages")).json()["head"] == 0  # nothing stored


async def test_invalid_payload_lists_every_field_error(api: httpx.AsyncClient) -> None:
    r = await api.post("/v1/messages", json={"type": "api.order.placed", "data": {"order_id": 5}})
    details = r.json()["error"]["details"]
    assert {tuple(d["loc"]) for d in details} == {("order_id",), ("amount",)}


async def test_malformed_json_and_oversized_body(api: httpx.AsyncClient) -> None:
    r = await api.post(
        "/v1/messages", content=b'{"type": ', headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = await api.post(
        "/v1/messages", content=b"x" * (2 << 20), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413


async def test_batch_publish_is_atomic(api: httpx.AsyncClient) -> None:
    ok = [{"type": "api.order.placed", "data": {"order_id": str(i), "amount": 1}} for i in range(3)]
    r = await api.post("/v1/messages", json=ok)
    assert r.status_code == 202 and [e["data"]["order_id"] for e in r.json()["data"]] == [
        "0",
        "1",
        "2",
    ]
    placed = {"type": "api.order.placed", "limit": 1000}
    before = len((await api.get("/v1/messages", params=placed)).json()["data"])
    bad = [*ok, {"type": "api.order.placed", "data": {}}]
    assert (await api.post("/v1/messages", json=bad)).status_code == 422
    assert len((await api.get("/v1/messages", params=placed)).json()["data"]) == before == 3


async def test_query_messages_and_flow(api: httpx.AsyncClient, env: Env) -> None:
    root = (
        await api.post(
            "/v1/messages",
            json={"type": "api.order.placed", "data": {"order_id": "F", "amount": 3}},
        )
    ).json()
    await env.wait_for("api.order.shipped", 1)
    r = await api.get("/v1/messages", params={"correlationid": root["correlationid"]})
    assert [e["type"] for e in r.json()["data"]] == ["api.order.placed", "api.order.shipped"]
    r = await api.get("/v1/messages", params={"type": "api.order.shipped", "limit": 1})
    assert len(r.json()["data"]) == 1
    r = await api.get("/v1/messages", params={"limit": 0})
    assert r.status_code == 422
    flow = (await api.get(f"/v1/flows/{root['correlationid']}")).json()
    assert len(flow["nodes"]) == 2
    assert flow["edges"] == [{"from": root["id"], "to": flow["nodes"][1]["id"], "kind": "caused"}]
    assert (await api.get("/v1/flows/unknown")).status_code == 404
    assert (await api.get("/v1/messages/unknown")).json()["error"]["code"] == "not_found"


async def test_catalog_and_asyncapi(api: httpx.AsyncClient) -> None:
    types = {t["type"]: t for t in (await api.get("/v1/catalog")).json()["types"]}
    assert types["api.order.placed"]["schema"]["required"] == ["order_id", "amount"]
    assert "job.requested" in types
    doc = (await api.get("/v1/catalog/asyncapi.json")).json()
    assert doc["asyncapi"] == "3.0.0" and "api_order_placed" in doc["channels"]
    assert (await api.get("/v1/catalog/api.order.placed")).json()["version"] == 1
    assert (await api.get("/v1/catalog/nope.x")).status_code == 422


async def test_sensors_toggle_and_dead_letters_replay(api: httpx.AsyncClient, env: Env) -> None:
    [s] = (await api.get("/v1/sensors")).json()["data"]
    assert s["name"] == "ship" and s["enabled"] is True and s["on"] == ["api.order.placed"]
    assert (await api.post("/v1/sensors/ship/disable")).json()["enabled"] is False
    assert (await api.post("/v1/sensors/ship/enable")).json()["enabled"] is True
    assert (await api.post("/v1/sensors/nope/enable")).status_code == 404
    await api.post(
        "/v1/messages",
        json={"type": "api.order.placed", "data": {"order_id": "poison", "amount": 1}},
    )
    await env.wait_for("sensor.deadlettered", 1)
    [dl] = (await api.get("/v1/dead-letters")).json()["data"]
    assert dl["sensor"] == "ship" and "cannot ship poison" in dl["error"]
    r = await api.post(f"/v1/dead-letters/{dl['id']}/replay")
    assert r.status_code == 202 and r.json()["status"] == "replay_requested"
    assert (await api.post("/v1/dead-letters/nope/replay")).status_code == 404


async def test_jobs_submit_list_logs_cancel_retry(api: httpx.AsyncClient, env: Env) -> None:
    r = await api.post("/v1/jobs", json={"name": "double", "params": {"x": 21}})
    assert r.status_code == 202
    job_id = r.json()["id"]
    [done] = await env.wait_for("job.succeeded", 1)
    assert done.data["result"] == 42
    job = (await api.get(f"/v1/jobs/{job_id}")).json()
    assert job["status"] == "succeeded" and job["result"] == 42 and "lease_token" not in job
    assert [
        j["id"] for j in (await api.get("/v1/jobs", params={"status": "succeeded"})).json()["data"]
    ] == [job_id]
    assert (await api.get(f"/v1/jobs/{job_id}/logs")).json() == {"data": []}
    assert (await api.post(f"/v1/jobs/{job_id}/cancel")).status_code == 409
    assert (await api.post(f"/v1/jobs/{job_id}/retry")).status_code == 409
    bad = await api.post("/v1/jobs", json={"name": "double", "params": {"x": "many"}})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "job_error"
    assert (await api.get("/v1/jobs/nope")).status_code == 404
    defs = (await api.get("/v1/jobs/definitions")).json()["data"]
    assert defs[0]["name"] == "double" and defs[0]["parameters"]["required"] == ["x"]


async def _walk(api: httpx.AsyncClient, path: str, **params: object) -> list[list[str]]:
    """Every page of a list endpoint, following next_cursor; each page's ids."""
    pages: list[list[str]] = []
    cursor = None
    while True:
        q = {**params, **({"cursor": cursor} if cursor else {})}
        r = await api.get(path, params=q)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"data", "next_cursor"}
        pages.append([x["id"] for x in body["data"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert isinstance(cursor, str) and len(pages) < 50


async def test_jobs_and_dead_letters_page_by_cursor(api: httpx.AsyncClient, env: Env) -> None:
    ids = [
        (await api.post("/v1/jobs", json={"name": "double", "params": {"x": i}})).json()["id"]
        for i in range(5)
    ]
    everything = (await api.get("/v1/jobs")).json()
    assert everything["next_cursor"] is None and sorted(j["id"] for j in everything["data"]) == (
        sorted(ids)
    )
    newest_first = [j["id"] for j in everything["data"]]
    assert await _walk(api, "/v1/jobs", limit=2) == [
        newest_first[:2],
        newest_first[2:4],
        newest_first[4:],
    ]
    # a full last page ends the walk: no trailing empty page
    assert await _walk(api, "/v1/jobs", limit=5) == [newest_first]
    assert await _walk(api, "/v1/jobs", limit=1, name="double") == [[i] for i in newest_first]
    # a job submitted mid-walk is newer than the cursor: the walk neither repeats nor skips
    first = (await api.get("/v1/jobs", params={"limit": 2})).json()
    await api.post("/v1/jobs", json={"name": "double", "params": {"x": 9}})
    rest = await _walk(api, "/v1/jobs", limit=2, cursor=first["next_cursor"])
    assert [j["id"] for j in first["data"]] + [i for p in rest for i in p] == newest_first

    for order in ("poison-1", "poison-2", "poison-3"):
        await api.post(
            "/v1/messages",
            json={"type": "api.order.placed", "data": {"order_id": order, "amount": 1}},
        )
    await env.wait_for("sensor.deadlettered", 3)
    dead = (await api.get("/v1/dead-letters")).json()
    assert len(dead["data"]) == 3 and dead["next_cursor"] is None
    assert await _walk(api, "/v1/dead-letters", limit=2, sensor="ship") == [
        [d["id"] for d in dead["data"][:2]],
        [dead["data"][2]["id"]],
    ]
    assert (await api.get("/v1/dead-letters", params={"limit": 1001})).status_code == 422


async def test_bad_or_foreign_cursors_are_422_naming_the_parameter(
    api: httpx.AsyncClient,
) -> None:
    import base64
    import json

    for _ in range(2):
        await api.post("/v1/jobs", json={"name": "double", "params": {"x": 1}})
    jobs_cursor = (await api.get("/v1/jobs", params={"limit": 1})).json()["next_cursor"]
    assert jobs_cursor

    def forge(body: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")

    bad = [
        "not a cursor!",
        "%%%",
        forge([1, 2]),
        forge({"k": "jobs", "v": ["x", 1]}),
        forge({"k": "jobs", "v": [1]}),
        forge({"k": "jobs", "v": [True, "a"]}),
        jobs_cursor[:-3],
        "A" * 5000,
    ]
    for cursor in bad:
        r = await api.get("/v1/jobs", params={"cursor": cursor})
        assert r.status_code == 422, (cursor, r.text)
        err = r.json()["error"]
        assert err["code"] == "invalid_cursor" and "'cursor'" in err["message"], err
        assert "GET /v1/jobs" in err["message"]
    # a jobs cursor is refused by another listing, and says whose it is
    r = await api.get("/v1/dead-letters", params={"cursor": jobs_cursor})
    assert r.status_code == 422
    message = r.json()["error"]["message"]
    assert "'jobs' listing" in message and "GET /v1/dead-letters" in message
    # an empty cursor is the first page
    assert (await api.get("/v1/jobs", params={"cursor": ""})).status_code == 200


async def test_metrics_exposes_backbone_counters(api: httpx.AsyncClient, env: Env) -> None:
    await api.post(
        "/v1/messages", json={"type": "api.order.placed", "data": {"order_id": "M", "amount": 1}}
    )
    await env.wait_for("api.order.shipped", 1)
    text = (await api.get("/metrics")).text
    assert 'herald_events_appended_total{type="api.order.placed"} 1.0' in text
    assert "herald_sensor_dispatch_latency_seconds_bucket" in text
    assert 'herald_sensor_lag_events{sensor="ship"}' in text
