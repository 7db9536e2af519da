"""Client API keys: hashed storage, scopes per path, the token bucket (on a controlled clock),
429 with Retry-After, revocation."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from herald.errors import NotFound
from herald.serving import keys as keys_mod
from herald.serving.keys import InvalidKeyRequest, KeyStore, TokenBucket, required_scope


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(keys_mod.time, "monotonic", c)
    return c


@pytest.mark.parametrize(
    ("path", "scope"),
    [
        ("/v1/models", "inference"),
        ("/v1/models/x", "inference"),
        ("/v1/chat/completions", "inference"),
        ("/v1/completions", "inference"),
        ("/v1/embeddings", "inference"),
        ("/v1/batches", "batch"),
        ("/v1/batches/batch_1", "batch"),
        ("/v1/deployments", "admin"),
        ("/v1/keys", "admin"),
        ("/v1/messages", "admin"),
        ("/v1/modelsx", "admin"),  # a prefix is not a path segment
        ("/metrics", "admin"),
    ],
)
def test_required_scope(path: str, scope: str) -> None:
    assert required_scope(path) == scope


def test_token_bucket_burst_refill_and_wait(clock: Clock) -> None:
    b = TokenBucket(60.0, burst=3)  # one per second, bursts of 3
    assert [b.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert b.take() == pytest.approx(1.0)
    clock.now += 0.5
    assert b.take() == pytest.approx(0.5)
    clock.now += 0.5
    assert b.take() == 0.0
    clock.now += 3600  # refills only up to the burst
    assert [b.take() for _ in range(4)][-1] > 0
    assert TokenBucket(600.0).capacity == 100.0  # default burst: 10 s worth
    assert TokenBucket(3.0).capacity == 1.0


async def test_keys_are_hashed_scoped_limited_and_revocable(tmp_path: Path, clock: Clock) -> None:
    store = KeyStore(tmp_path / "state.db")
    rec, secret = store.create("team-a", ["inference"], rate_per_minute=6)
    assert secret.startswith(f"hk_c_{rec.id}_")
    conn = sqlite3.connect(tmp_path / "state.db")
    [(stored,)] = conn.execute("SELECT hash FROM herald_api_keys").fetchall()
    conn.close()
    assert stored == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in (tmp_path / "state.db").read_bytes().decode("latin-1")

    assert await store.authorize(secret, "/v1/chat/completions") is None
    status, message, _ = await store.authorize(secret, "/v1/deployments") or (0, "", {})
    assert status == 403 and "lacks the 'admin' scope" in message
    status, _, _ = await store.authorize(secret, "/v1/batches") or (0, "", {})
    assert status == 403
    assert (await store.authorize("hk_c_nope_x", "/v1/models") or (0,))[0] == 401
    assert (await store.authorize("not-a-client-key", "/v1/models") or (0,))[0] == 401

    # rate 6/min, burst 1: the next request waits 10 s
    status, message, headers = await store.authorize(secret, "/v1/models") or (0, "", {})
    assert status == 429 and headers == {"Retry-After": "10"} and "6 requests per minute" in message
    clock.now += 10
    assert await store.authorize(secret, "/v1/models") is None

    _, admin_secret = store.create("ops", ["admin"])
    assert await store.authorize(admin_secret, "/v1/keys") is None  # admin reaches everything
    assert [k.name for k in store.list()] == ["team-a", "ops"]
    revoked = store.revoke(rec.id)
    assert revoked.revoked_at is not None
    assert (await store.authorize(secret, "/v1/models") or (0,))[0] == 401
    assert [k.name for k in store.list()] == ["ops"]
    assert len(store.list(include_revoked=True)) == 2
    with pytest.raises(NotFound, match="no API key"):
        store.revoke("missing")


@pytest.mark.parametrize(
    ("name", "scopes", "rate", "message"),
    [
        ("", None, None, "name"),
        ("x" * 129, None, None, "name"),
        ("a", ["root"], None, "unknown scope"),
        ("a", None, 0.0, "positive"),
        ("a", None, float("nan"), "positive"),
    ],
)
def test_invalid_key_requests(
    tmp_path: Path, name: str, scopes: list[str] | None, rate: float | None, message: str
) -> None:
    with pytest.raises(InvalidKeyRequest, match=message):
        KeyStore(tmp_path / "s.db").create(name, scopes, rate)
