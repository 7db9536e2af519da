"""The event-log contract: every adapter (memory, SQLite, PostgreSQL) must pass this suite."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from herald.bus import EventLog, EventQuery, JobSpec, LeaseLost, Outcome
from herald.bus.base import DeadLetter, PageKey, page_key
from herald.errors import Conflict, NotFound
from herald.messages import Envelope


def ev(type_: str = "t.created", **kw: object) -> Envelope:
    data = kw.pop("data", {"n": 1})
    return Envelope(type=type_, data=data, **kw)  # type: ignore[arg-type]


def spec(name: str = "work", executor: str = "inline", **kw: object) -> JobSpec:
    return JobSpec(id=uuid.uuid4().hex, name=name, params={"x": 1}, executor=executor, **kw)  # type: ignore[arg-type]


async def test_append_assigns_increasing_global_sequence(event_log: EventLog) -> None:
    first = await event_log.append([ev(), ev()])
    second = await event_log.append([ev()])
    seqs = [e.seq for e in first + second]
    assert seqs == [1, 2, 3]
    assert await event_log.head() == 3


async def test_append_is_atomic_and_rejects_duplicate_ids(event_log: EventLog) -> None:
    a = ev()
    await event_log.append([a])
    with pytest.raises(Conflict):
        await event_log.append([ev(), ev(id=a.id)])
    assert await event_log.head() == 1
    assert len(await event_log.read(0)) == 1


async def test_roundtrip_preserves_envelope(event_log: EventLog) -> None:
    e = ev(
        subject="orders/1",
        correlationid="flow-1",
        causationid="cause-1",
        data={"a": [1, {"b": "é"}]},
    )
    [stored] = await event_log.append([e])
    got = await event_log.get(e.id)
    assert got is not None
    assert got.model_dump() == stored.model_dump()
    assert got.data == {"a": [1, {"b": "é"}]}
    assert got.correlationid == "flow-1" and got.causationid == "cause-1"
    assert abs((got.time - e.time).total_seconds()) < 1e-3
    assert await event_log.get("missing") is None


async def test_read_after_cursor_with_type_filter(event_log: EventLog) -> None:
    await event_log.append([ev("a.x"), ev("b.x"), ev("a.x"), ev("c.x")])
    assert [e.seq for e in await event_log.read(0)] == [1, 2, 3, 4]
    assert [e.seq for e in await event_log.read(1, types=["a.x"])] == [3]
    assert [e.seq for e in await event_log.read(0, limit=2)] == [1, 2]
    assert await event_log.read(4) == []


async def test_query_by_type_subject_correlation_and_time(event_log: EventLog) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    await event_log.append(
        [
            ev("a.x", subject="s1", correlationid="c1", time=t0),
            ev("b.x", subject="s2", correlationid="c1", time=t0 + timedelta(hours=1)),
            ev("a.x", subject="s2", correlationid="c2", time=t0 + timedelta(hours=2)),
        ]
    )
    q = event_log.query
    assert [e.seq for e in await q(EventQuery(types=["a.x"]))] == [1, 3]
    assert [e.seq for e in await q(EventQuery(subject="s2"))] == [2, 3]
    assert [e.seq for e in await q(EventQuery(correlationid="c1"))] == [1, 2]
    assert [e.seq for e in await q(EventQuery(since=t0 + timedelta(minutes=30)))] == [2, 3]
    assert [e.seq for e in await q(EventQuery(until=t0 + timedelta(minutes=30)))] == [1]
    assert [e.seq for e in await q(EventQuery(after=1, limit=1))] == [2]
    assert [e.seq for e in await q(EventQuery(descending=True, limit=2))] == [3, 2]


async def test_wait_returns_as_soon_as_an_event_commits(event_log: EventLog) -> None:
    head = await event_log.head()

    async def later() -> None:
        await asyncio.sleep(0.05)
        await event_log.append([ev()])

    task = asyncio.create_task(later())
    loop = asyncio.get_running_loop()
    t = loop.time()
    new_head = await event_log.wait(head, timeout=5)
    assert new_head == head + 1
    assert loop.time() - t < 4  # woken by the commit, not by the timeout
    await task
    assert await event_log.wait(head, timeout=0.01) == head + 1


async def test_sensor_registration_starts_at_latest_or_earliest(event_log: EventLog) -> None:
    await event_log.append([ev(), ev()])
    latest = await event_log.register_sensor("s.latest", "latest")
    earliest = await event_log.register_sensor("s.earliest", "earliest")
    assert (latest.cursor, earliest.cursor) == (2, 0)
    again = await event_log.register_sensor("s.latest", "earliest")
    assert again.cursor == 2  # durable: registration never resets a cursor
    assert [s.name for s in await event_log.sensors()] == ["s.earliest", "s.latest"]


async def test_enable_disable_sensor(event_log: EventLog) -> None:
    await event_log.register_sensor("s", "latest")
    assert (await event_log.set_sensor_enabled("s", False)).enabled is False
    assert [s.enabled for s in await event_log.sensors()] == [False]
    assert (await event_log.set_sensor_enabled("s", True)).enabled is True
    with pytest.raises(NotFound):
        await event_log.set_sensor_enabled("nope", True)


async def test_commit_is_effectively_once_per_sensor_and_event(event_log: EventLog) -> None:
    [trigger] = await event_log.append([ev("order.placed")])
    await event_log.register_sensor("ship", "earliest")
    out = ev("order.shipped", causationid=trigger.id, correlationid=trigger.correlationid)
    outcome = Outcome(sensor="ship", event_id=trigger.id, event_seq=trigger.seq or 0, emitted=[out])
    stored = await event_log.commit(outcome)
    assert stored is not None and stored[0].seq == 2
    again = Outcome(
        sensor="ship",
        event_id=trigger.id,
        event_seq=trigger.seq or 0,
        emitted=[ev("order.shipped")],
    )
    assert await event_log.commit(again) is None
    assert [e.type for e in await event_log.read(0)] == ["order.placed", "order.shipped"]
    [state] = await event_log.sensors()
    assert state.cursor == 1 and state.processed == 1
    # another sensor may react to the same event
    await event_log.register_sensor("bill", "earliest")
    assert await event_log.commit(Outcome(sensor="bill", event_id=trigger.id, event_seq=1)) == []


async def test_concurrent_commits_of_same_outcome_store_once(event_log: EventLog) -> None:
    [trigger] = await event_log.append([ev()])
    await event_log.register_sensor("s", "earliest")

    def outcome() -> Outcome:
        return Outcome(sensor="s", event_id=trigger.id, event_seq=1, emitted=[ev("out.x")])

    results = await asyncio.gather(*(event_log.commit(outcome()) for _ in range(10)))
    assert sum(r is not None for r in results) == 1
    assert len(await event_log.read(0, types=["out.x"])) == 1


async def test_cursor_never_moves_backwards(event_log: EventLog) -> None:
    await event_log.register_sensor("s", "earliest")
    await event_log.advance_cursor("s", 5)
    await event_log.advance_cursor("s", 3)
    [state] = await event_log.sensors()
    assert state.cursor == 5


async def test_dead_letter_and_replay(event_log: EventLog) -> None:
    [trigger] = await event_log.append([ev()])
    await event_log.register_sensor("s", "earliest")
    dl = DeadLetter(
        id="dl-1",
        sensor="s",
        event_id=trigger.id,
        event_seq=1,
        event_type=trigger.type,
        error="boom",
        attempts=3,
        created_at=datetime.now(UTC),
    )
    await event_log.commit(Outcome(sensor="s", event_id=trigger.id, event_seq=1, dead_letter=dl))
    [got] = await event_log.dead_letters()
    assert (got.id, got.status, got.error, got.attempts) == ("dl-1", "dead", "boom", 3)
    assert (await event_log.sensors())[0].failed == 1
    assert (await event_log.request_replay("dl-1")).status == "replay_requested"
    assert [d.id for d in await event_log.dead_letters(status="replay_requested")] == ["dl-1"]
    # the replayed run commits even though (sensor, event) was recorded before
    stored = await event_log.commit(
        Outcome(
            sensor="s", event_id=trigger.id, event_seq=1, emitted=[ev("fixed.x")], replay_of="dl-1"
        )
    )
    assert stored is not None and len(stored) == 1
    [done] = await event_log.dead_letters()
    assert done.status == "replayed" and done.replayed_at is not None
    with pytest.raises(Conflict):
        await event_log.request_replay("dl-1")
    with pytest.raises(NotFound):
        await event_log.request_replay("nope")


async def test_sensor_outcome_queues_jobs_with_requested_event(event_log: EventLog) -> None:
    [trigger] = await event_log.append([ev(correlationid="flow")])
    await event_log.register_sensor("s", "earliest")
    sp = spec(sensor="s")
    stored = await event_log.commit(
        Outcome(sensor="s", event_id=trigger.id, event_seq=1, jobs=[(sp, trigger)])
    )
    assert stored is not None
    [requested] = stored
    assert requested.type == "job.requested"
    assert requested.causationid == trigger.id and requested.correlationid == "flow"
    job = await event_log.get_job(sp.id)
    assert job is not None and job.status == "queued" and job.requested_event == requested.id
    assert [j.id for j in await event_log.jobs(status="queued")] == [sp.id]
    assert [j.id for j in await event_log.jobs(correlationid="flow")] == [sp.id]


async def test_job_lease_lifecycle_and_fencing(event_log: EventLog) -> None:
    cause = (await event_log.append([ev()]))[0]
    sp = spec(executor="local")
    await event_log.submit_job(sp, cause)
    assert await event_log.lease_job("w1", 30, ["inline"]) is None  # executor filter
    lease = await event_log.lease_job("w1", 30, ["local"])
    assert lease is not None and lease.job.id == sp.id and lease.job.attempt == 1
    assert lease.started_event.type == "job.started"
    assert await event_log.lease_job("w2", 30, ["local"]) is None  # no double lease
    job = await event_log.heartbeat(sp.id, lease.token, 30)
    assert job.status == "running"
    with pytest.raises(LeaseLost):
        await event_log.heartbeat(sp.id, "stale-token", 30)
    done = await event_log.finish_job(
        sp.id, lease.token, "succeeded", [ev("job.done.x")], result={"ok": 1}
    )
    assert done.status == "succeeded" and done.result == {"ok": 1}
    with pytest.raises(LeaseLost):  # a late result is fenced off
        await event_log.finish_job(sp.id, lease.token, "failed", [ev("late.x")], error="late")
    assert await event_log.read(0, types=["late.x"]) == []
    types = [e.type for e in await event_log.read(0)]
    assert types == ["t.created", "job.requested", "job.started", "job.done.x"]


async def test_expired_lease_is_requeued_and_old_lease_fenced(event_log: EventLog) -> None:
    cause = (await event_log.append([ev()]))[0]
    sp = spec(max_attempts=2)
    await event_log.submit_job(sp, cause)
    first = await event_log.lease_job("dead-worker", 0.05, ["inline"])
    assert first is not None
    await asyncio.sleep(0.1)
    second = await event_log.lease_job("w2", 30, ["inline"])
    assert second is not None and second.job.attempt == 2 and second.token != first.token
    with pytest.raises(LeaseLost):
        await event_log.finish_job(sp.id, first.token, "succeeded", [])
    failed = await event_log.read(0, types=["job.failed"])
    assert len(failed) == 1 and failed[0].data["will_retry"] is True
    await event_log.finish_job(sp.id, second.token, "succeeded", [])
    assert (await event_log.get_job(sp.id)).status == "succeeded"  # type: ignore[union-attr]


async def test_expired_lease_on_last_attempt_fails_the_job(event_log: EventLog) -> None:
    cause = (await event_log.append([ev()]))[0]
    sp = spec(max_attempts=1)
    await event_log.submit_job(sp, cause)
    assert await event_log.lease_job("w", 0.01, ["inline"]) is not None
    await asyncio.sleep(0.05)
    assert await event_log.lease_job("w", 30, ["inline"]) is None
    job = await event_log.get_job(sp.id)
    assert job is not None and job.status == "failed" and "lease expired" in (job.error or "")


async def test_retry_with_backoff_then_manual_retry(event_log: EventLog) -> None:
    cause = (await event_log.append([ev()]))[0]
    sp = spec(max_attempts=1)
    await event_log.submit_job(sp, cause)
    lease = await event_log.lease_job("w", 30, ["inline"])
    assert lease is not None
    later = datetime.now(UTC) + timedelta(hours=1)
    queued = await event_log.finish_job(sp.id, lease.token, "failed", [], error="x", retry_at=later)
    assert queued.status == "queued"
    assert await event_log.lease_job("w", 30, ["inline"]) is None  # not before retry_at
    with pytest.raises(Conflict):
        await event_log.retry_job(sp.id)


async def test_cancel_queued_and_running_jobs(event_log: EventLog) -> None:
    cause = (await event_log.append([ev()]))[0]
    a, b = spec(), spec()
    await event_log.submit_job(a, cause)
    cancelled = await event_log.cancel_job(a.id)
    assert cancelled.status == "cancelled"
    with pytest.raises(Conflict):
        await event_log.cancel_job(a.id)
    await event_log.submit_job(b, cause)
    lease = await event_log.lease_job("w", 30, ["inline"])
    assert lease is not None and lease.job.id == b.id
    flagged = await event_log.cancel_job(b.id)
    assert flagged.status == "running" and flagged.cancel_requested
    hb = await event_log.heartbeat(b.id, lease.token, 30)
    assert hb.cancel_requested
    done = await event_log.finish_job(b.id, lease.token, "cancelled", [])
    assert done.status == "cancelled"
    retried = await event_log.retry_job(b.id)
    assert retried.status == "queued" and not retried.cancel_requested
    with pytest.raises(NotFound):
        await event_log.cancel_job("nope")


async def test_job_logs_and_progress(event_log: EventLog) -> None:
    cause = (await event_log.append([ev()]))[0]
    sp = spec()
    await event_log.submit_job(sp, cause)
    lease = await event_log.lease_job("w", 30, ["inline"])
    assert lease is not None
    await event_log.append_logs(sp.id, [("stdout", "hello"), ("stderr", "warn")])
    await event_log.append_logs(sp.id, [("stdout", "bye")])
    lines = await event_log.logs(sp.id)
    assert [(ln.seq, ln.stream, ln.line) for ln in lines] == [
        (1, "stdout", "hello"),
        (2, "stderr", "warn"),
        (3, "stdout", "bye"),
    ]
    assert [ln.line for ln in await event_log.logs(sp.id, after=2)] == ["bye"]
    prog = ev(
        "job.progressed",
        data={"job_id": sp.id, "name": sp.name, "progress": 0.5, "message": "half"},
    )
    job = await event_log.heartbeat(sp.id, lease.token, 30, events=[prog])
    assert job.progress == 0.5 and job.progress_message == "half"
    with pytest.raises(NotFound):
        await event_log.logs("nope")


async def test_concurrent_appends_keep_a_gapless_total_order(event_log: EventLog) -> None:
    await asyncio.gather(*(event_log.append([ev(), ev()]) for _ in range(50)))
    seqs = [e.seq for e in await event_log.read(0, limit=1000)]
    assert seqs == list(range(1, 101))


# sensor ownership: one worker per sensor on a shared database ---------------------------------
async def _second_log(log_url: str) -> EventLog:
    from herald.bus import open_event_log

    other = open_event_log(log_url)
    await other.start()
    return other


async def test_sensor_ownership_is_exclusive_and_moves_on_release(
    event_log: EventLog, log_url: str
) -> None:
    assert await event_log.try_own("ship")
    assert await event_log.try_own("ship")  # confirming is idempotent
    if log_url.startswith("memory"):
        return  # one process per memory log: it owns every sensor
    other = await _second_log(log_url)
    try:
        assert not await other.try_own("ship")
        assert await other.try_own("bill")  # ownership is per sensor
        assert not await event_log.try_own("bill")
        await event_log.release("ship")
        await event_log.release("ship")  # releasing twice is harmless
        assert await other.try_own("ship")
        assert not await event_log.try_own("ship")
    finally:
        await other.close()  # closing releases everything it owned
    assert await event_log.try_own("ship")
    assert await event_log.try_own("bill")


async def test_sensor_ownership_is_freed_when_the_owner_is_killed(
    event_log: EventLog, log_url: str
) -> None:
    if log_url.startswith("memory"):
        pytest.skip("a memory log lives in one process")
    import os
    import signal
    import subprocess
    import sys

    code = (
        "import asyncio, sys, time\n"
        "from herald.bus import open_event_log\n"
        "async def main():\n"
        "    log = open_event_log(sys.argv[1]); await log.start()\n"
        "    print(await log.try_own('ship'), flush=True)\n"
        "    await asyncio.sleep(600)\n"
        "asyncio.run(main())\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, log_url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert (await asyncio.to_thread(proc.stdout.readline)).strip() == "True"
        assert not await event_log.try_own("ship")
        os.kill(proc.pid, signal.SIGKILL)
        await asyncio.to_thread(proc.wait, 10)
        for _ in range(100):  # PostgreSQL ends the dead client's session asynchronously
            if await event_log.try_own("ship"):
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("ownership was not freed after the owner was killed")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


# keyset paging -------------------------------------------------------------------------------
async def _walk_jobs(
    event_log: EventLog, limit: int, between: int = 0, **filters: str
) -> list[str]:
    """Every job id, page by page via ``before``; ``between`` new jobs are submitted after each
    page (they are newer than any cursor, so they must not show up or shift later pages)."""
    seen: list[str] = []
    before: PageKey | None = None
    while True:
        rows = await event_log.jobs(limit=limit, before=before, **filters)  # type: ignore[arg-type]
        seen += [j.id for j in rows]
        if len(rows) < limit:
            return seen
        before = page_key(rows[-1].created_at, rows[-1].id)
        for _ in range(between):
            await event_log.submit_job(spec("late"))


async def test_jobs_keyset_pages_return_each_job_once_in_order(event_log: EventLog) -> None:
    ids = [(await event_log.submit_job(spec())).id for _ in range(11)]
    everything = await event_log.jobs(limit=1000)
    assert sorted(j.id for j in everything) == sorted(ids)
    newest_first = [j.id for j in everything]
    keys = [page_key(j.created_at, j.id) for j in everything]
    assert keys == sorted(keys, reverse=True)  # a strict total order, ties broken by id
    assert len(set(keys)) == len(keys)
    for limit in (1, 3, 4, 11):
        assert await _walk_jobs(event_log, limit) == newest_first, limit
    # the filter and the cursor combine; a cursor past the oldest row gives an empty page
    assert await _walk_jobs(event_log, 2, name="work") == newest_first
    assert await event_log.jobs(before=keys[-1]) == []


async def test_jobs_paging_ignores_jobs_inserted_between_pages(event_log: EventLog) -> None:
    for _ in range(9):
        await event_log.submit_job(spec())
    before_walk = [j.id for j in await event_log.jobs(limit=1000)]
    walked = await _walk_jobs(event_log, 2, between=2)
    assert walked == before_walk  # no duplicates, no skips, no late jobs mid-walk
    late = await event_log.jobs(name="late", limit=1000)
    assert len(late) >= 2 * (len(before_walk) // 2)


async def test_jobs_paging_breaks_created_at_ties_by_id(event_log: EventLog) -> None:
    # rows with the same timestamp must still page without loss: the id decides among them
    await event_log.submit_job(spec())
    [only] = await event_log.jobs()
    us, _ = page_key(only.created_at, only.id)
    assert await event_log.jobs(before=(us, only.id)) == []
    assert [j.id for j in await event_log.jobs(before=(us, only.id + "z"))] == [only.id]
    assert [j.id for j in await event_log.jobs(before=(us + 1, ""))] == [only.id]


async def _dead_letters(event_log: EventLog, n: int, at: datetime) -> list[str]:
    await event_log.register_sensor("s", "earliest")
    triggers = await event_log.append([ev() for _ in range(n)])
    ids = []
    for i, t in enumerate(triggers):
        dl = DeadLetter(
            id=f"dl-{i:03d}",
            sensor="s",
            event_id=t.id,
            event_seq=t.seq or 0,
            event_type=t.type,
            error="boom",
            attempts=1,
            # pairs of rows share a timestamp, so the id has to break ties
            created_at=at + timedelta(microseconds=i // 2),
        )
        await event_log.commit(
            Outcome(sensor="s", event_id=t.id, event_seq=t.seq or 0, dead_letter=dl)
        )
        ids.append(dl.id)
    return ids


async def test_dead_letters_keyset_pages_and_concurrent_inserts(event_log: EventLog) -> None:
    at = datetime(2026, 3, 1, 12, 0, 0, 999_999, tzinfo=UTC)
    ids = await _dead_letters(event_log, 9, at)
    everything = await event_log.dead_letters()
    assert [d.id for d in everything] == sorted(ids, reverse=True)  # newest first, id tiebreak
    assert [d.id for d in await event_log.dead_letters(limit=4)] == sorted(ids, reverse=True)[:4]
    for limit in (1, 2, 4, 9):
        snapshot = [d.id for d in await event_log.dead_letters(sensor="s")]
        assert snapshot[-len(ids) :] == sorted(ids, reverse=True)
        seen: list[str] = []
        before: PageKey | None = None
        while True:
            rows = await event_log.dead_letters(sensor="s", limit=limit, before=before)
            seen += [d.id for d in rows]
            if len(rows) < limit:
                break
            before = page_key(rows[-1].created_at, rows[-1].id)
            # a newer dead letter arriving between pages is not part of this walk
            [t] = await event_log.append([ev()])
            late = DeadLetter(
                id=f"late-{t.id}",
                sensor="s",
                event_id=t.id,
                event_seq=t.seq or 0,
                event_type=t.type,
                error="late",
                attempts=1,
                created_at=datetime.now(UTC),
            )
            await event_log.commit(
                Outcome(sensor="s", event_id=t.id, event_seq=t.seq or 0, dead_letter=late)
            )
        assert seen == snapshot, limit
    # filters still apply with a cursor
    await event_log.request_replay("dl-004")
    key = page_key(everything[0].created_at, everything[0].id)
    got = await event_log.dead_letters(status="replay_requested", before=key, limit=10)
    assert [d.id for d in got] == ["dl-004"]
