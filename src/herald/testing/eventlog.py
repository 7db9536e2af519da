"""The event-log contract kit: what every :class:`~herald.bus.base.EventLog` adapter must do.

Subclass :class:`EventLogContract` in a test module and provide a ``make_log`` fixture: a
callable that returns a new, **not yet started** log over the test's storage. The first call
gets an empty log; later calls (only made when ``shared_across_processes`` is true) open a
second handle on the *same* storage, as a second worker process would::

    import pytest
    from herald.testing import EventLogContract
    from acme_herald import RedisEventLog

    class TestRedisLog(EventLogContract):
        @pytest.fixture
        def make_log(self, redis_url):
            return lambda: RedisEventLog(redis_url)

        @pytest.fixture
        def log_url(self, redis_url):  # the kill test opens it in a subprocess
            return redis_url

Declared capabilities (class attributes) replace silent skips:

``shared_across_processes``
    ``True`` (default): several processes share one log, sensor ownership is exclusive across
    them and is freed when its owner closes or dies. The kit then also needs a ``log_url``
    fixture that ``herald.bus.open_event_log`` opens in a subprocess. ``False`` (a memory log):
    the kit asserts the port's documented single-process default instead (the log owns every
    sensor, ``owners() == 1``).
``counts_owners``
    ``True`` (default, only read when ``shared_across_processes``): ``owners()`` counts the live
    processes sharing the log, which runners use to take a fair share of the sensors. ``False``:
    the adapter answers 1 whatever the number of processes (each process then tries to own
    every sensor; ownership stays exclusive, only the balancing is lost).

The checks are ``async`` bodies driven on a fresh event loop per test, so the kit needs pytest
only (no pytest-asyncio).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest

from herald.bus.base import (
    DeadLetter,
    EventLog,
    EventQuery,
    JobSpec,
    LeaseLost,
    Outcome,
    PageKey,
    page_key,
)
from herald.errors import Conflict, NotFound
from herald.messages import Envelope
from herald.testing._support import rename, run

__all__ = ["EventLogContract", "LogFactory"]

LogFactory = Callable[[], EventLog]
Body = Callable[[Any, EventLog], Awaitable[None]]


def ev(type_: str = "t.created", **kw: Any) -> Envelope:
    """An envelope of ``type_`` with a small payload (``data=`` overrides it)."""
    data = kw.pop("data", {"n": 1})
    return Envelope(type=type_, data=data, **kw)


def spec(name: str = "work", executor: str = "inline", **kw: Any) -> JobSpec:
    """A job request with a fresh id."""
    return JobSpec(id=uuid.uuid4().hex, name=name, params={"x": 1}, executor=executor, **kw)


def _check(body: Body) -> Callable[[Any, LogFactory], None]:
    """Turn ``async def test_x(self, log)`` into a sync test taking the ``make_log`` fixture:
    the log is started before the body and closed after it, on one fresh event loop."""

    def test(self: EventLogContract, make_log: LogFactory) -> None:
        self.make_log = make_log

        async def main() -> None:
            log = make_log()
            await log.start()
            try:
                await body(self, log)
            finally:
                await log.close()

        run(main())

    rename(test, body)
    return test


class EventLogContract:
    """The observable contract of :class:`~herald.bus.base.EventLog` (see the module doc)."""

    shared_across_processes: ClassVar[bool] = True
    counts_owners: ClassVar[bool] = True
    make_log: LogFactory

    async def _second(self) -> EventLog:
        other = self.make_log()
        await other.start()
        return other

    # appending and reading ----------------------------------------------------------------
    @_check
    async def test_append_assigns_increasing_global_sequence(self, log: EventLog) -> None:
        first = await log.append([ev(), ev()])
        second = await log.append([ev()])
        assert [e.seq for e in first + second] == [1, 2, 3]
        assert await log.head() == 3

    @_check
    async def test_append_is_atomic_and_rejects_duplicate_ids(self, log: EventLog) -> None:
        a = ev()
        await log.append([a])
        with pytest.raises(Conflict):
            await log.append([ev(), ev(id=a.id)])
        assert await log.head() == 1
        assert len(await log.read(0)) == 1

    @_check
    async def test_roundtrip_preserves_envelope(self, log: EventLog) -> None:
        e = ev(
            subject="orders/1",
            correlationid="flow-1",
            causationid="cause-1",
            data={"a": [1, {"b": "é"}]},
        )
        [stored] = await log.append([e])
        got = await log.get(e.id)
        assert got is not None
        assert got.model_dump() == stored.model_dump()
        assert got.data == {"a": [1, {"b": "é"}]}
        assert got.correlationid == "flow-1" and got.causationid == "cause-1"
        assert abs((got.time - e.time).total_seconds()) < 1e-3
        assert await log.get("missing") is None

    @_check
    async def test_read_after_cursor_with_type_filter(self, log: EventLog) -> None:
        await log.append([ev("a.x"), ev("b.x"), ev("a.x"), ev("c.x")])
        assert [e.seq for e in await log.read(0)] == [1, 2, 3, 4]
        assert [e.seq for e in await log.read(1, types=["a.x"])] == [3]
        assert [e.seq for e in await log.read(0, limit=2)] == [1, 2]
        assert await log.read(4) == []

    @_check
    async def test_query_by_type_subject_correlation_and_time(self, log: EventLog) -> None:
        t0 = datetime(2026, 1, 1, tzinfo=UTC)
        await log.append(
            [
                ev("a.x", subject="s1", correlationid="c1", time=t0),
                ev("b.x", subject="s2", correlationid="c1", time=t0 + timedelta(hours=1)),
                ev("a.x", subject="s2", correlationid="c2", time=t0 + timedelta(hours=2)),
            ]
        )
        q = log.query
        assert [e.seq for e in await q(EventQuery(types=["a.x"]))] == [1, 3]
        assert [e.seq for e in await q(EventQuery(subject="s2"))] == [2, 3]
        assert [e.seq for e in await q(EventQuery(correlationid="c1"))] == [1, 2]
        assert [e.seq for e in await q(EventQuery(since=t0 + timedelta(minutes=30)))] == [2, 3]
        assert [e.seq for e in await q(EventQuery(until=t0 + timedelta(minutes=30)))] == [1]
        assert [e.seq for e in await q(EventQuery(after=1, limit=1))] == [2]
        assert [e.seq for e in await q(EventQuery(descending=True, limit=2))] == [3, 2]

    @_check
    async def test_wait_returns_as_soon_as_an_event_commits(self, log: EventLog) -> None:
        head = await log.head()

        async def later() -> None:
            await asyncio.sleep(0.05)
            await log.append([ev()])

        task = asyncio.create_task(later())
        # pushed by the commit: a log that only woke at its (hour-long) timeout misses the
        # generous deadline
        new_head = await asyncio.wait_for(log.wait(head, timeout=3600), 30)
        assert new_head == head + 1
        await task
        assert await log.wait(head, timeout=0.01) == head + 1

    @_check
    async def test_concurrent_appends_keep_a_gapless_total_order(self, log: EventLog) -> None:
        await asyncio.gather(*(log.append([ev(), ev()]) for _ in range(50)))
        seqs = [e.seq for e in await log.read(0, limit=1000)]
        assert seqs == list(range(1, 101))

    # sensors ------------------------------------------------------------------------------
    @_check
    async def test_sensor_registration_starts_at_latest_or_earliest(self, log: EventLog) -> None:
        await log.append([ev(), ev()])
        latest = await log.register_sensor("s.latest", "latest")
        earliest = await log.register_sensor("s.earliest", "earliest")
        assert (latest.cursor, earliest.cursor) == (2, 0)
        again = await log.register_sensor("s.latest", "earliest")
        assert again.cursor == 2  # durable: registration never resets a cursor
        assert [s.name for s in await log.sensors()] == ["s.earliest", "s.latest"]

    @_check
    async def test_enable_disable_sensor(self, log: EventLog) -> None:
        await log.register_sensor("s", "latest")
        assert (await log.set_sensor_enabled("s", False)).enabled is False
        assert [s.enabled for s in await log.sensors()] == [False]
        assert (await log.set_sensor_enabled("s", True)).enabled is True
        with pytest.raises(NotFound):
            await log.set_sensor_enabled("nope", True)

    @_check
    async def test_commit_is_effectively_once_per_sensor_and_event(self, log: EventLog) -> None:
        [trigger] = await log.append([ev("order.placed")])
        await log.register_sensor("ship", "earliest")
        out = ev("order.shipped", causationid=trigger.id, correlationid=trigger.correlationid)
        outcome = Outcome(
            sensor="ship", event_id=trigger.id, event_seq=trigger.seq or 0, emitted=[out]
        )
        stored = await log.commit(outcome)
        assert stored is not None and stored[0].seq == 2
        again = Outcome(
            sensor="ship",
            event_id=trigger.id,
            event_seq=trigger.seq or 0,
            emitted=[ev("order.shipped")],
        )
        assert await log.commit(again) is None
        assert [e.type for e in await log.read(0)] == ["order.placed", "order.shipped"]
        [state] = await log.sensors()
        assert state.cursor == 1 and state.processed == 1
        # another sensor may react to the same event
        await log.register_sensor("bill", "earliest")
        assert await log.commit(Outcome(sensor="bill", event_id=trigger.id, event_seq=1)) == []

    @_check
    async def test_commit_many_is_all_or_nothing_in_order(self, log: EventLog) -> None:
        a, b = await log.append([ev("in.x"), ev("in.x")])
        await log.register_sensor("s", "earliest")
        results = await log.commit_many(
            [
                Outcome(sensor="s", event_id=a.id, event_seq=1, emitted=[ev("out.a")]),
                Outcome(sensor="s", event_id=b.id, event_seq=2, emitted=[ev("out.b")]),
                Outcome(sensor="s", event_id=a.id, event_seq=1, emitted=[ev("out.again")]),
            ]
        )
        assert [None if r is None else [e.type for e in r] for r in results] == [
            ["out.a"],
            ["out.b"],
            None,  # the repeat of an outcome committed earlier in the same batch
        ]
        assert [e.type for e in await log.read(2)] == ["out.a", "out.b"]
        assert (await log.sensors())[0].cursor == 2

    @_check
    async def test_concurrent_commits_of_same_outcome_store_once(self, log: EventLog) -> None:
        [trigger] = await log.append([ev()])
        await log.register_sensor("s", "earliest")

        def outcome() -> Outcome:
            return Outcome(sensor="s", event_id=trigger.id, event_seq=1, emitted=[ev("out.x")])

        results = await asyncio.gather(*(log.commit(outcome()) for _ in range(10)))
        assert sum(r is not None for r in results) == 1
        assert len(await log.read(0, types=["out.x"])) == 1

    @_check
    async def test_cursor_never_moves_backwards(self, log: EventLog) -> None:
        await log.register_sensor("s", "earliest")
        await log.advance_cursor("s", 5)
        await log.advance_cursor("s", 3)
        [state] = await log.sensors()
        assert state.cursor == 5

    @_check
    async def test_dead_letter_and_replay(self, log: EventLog) -> None:
        [trigger] = await log.append([ev()])
        await log.register_sensor("s", "earliest")
        dl = _dead_letter("dl-1", trigger, error="boom", attempts=3)
        await log.commit(Outcome(sensor="s", event_id=trigger.id, event_seq=1, dead_letter=dl))
        [got] = await log.dead_letters()
        assert (got.id, got.status, got.error, got.attempts) == ("dl-1", "dead", "boom", 3)
        assert (await log.sensors())[0].failed == 1
        assert (await log.request_replay("dl-1")).status == "replay_requested"
        assert [d.id for d in await log.dead_letters(status="replay_requested")] == ["dl-1"]
        # the replayed run commits even though (sensor, event) was recorded before
        stored = await log.commit(
            Outcome(
                sensor="s",
                event_id=trigger.id,
                event_seq=1,
                emitted=[ev("fixed.x")],
                replay_of="dl-1",
            )
        )
        assert stored is not None and len(stored) == 1
        [done] = await log.dead_letters()
        assert done.status == "replayed" and done.replayed_at is not None
        with pytest.raises(Conflict):
            await log.request_replay("dl-1")
        with pytest.raises(NotFound):
            await log.request_replay("nope")

    @_check
    async def test_dead_letters_keyset_pages_and_concurrent_inserts(self, log: EventLog) -> None:
        at = datetime(2026, 3, 1, 12, 0, 0, 999_999, tzinfo=UTC)
        await log.register_sensor("s", "earliest")
        ids = []
        for i, t in enumerate(await log.append([ev() for _ in range(9)])):
            # pairs of rows share a timestamp, so the id has to break ties
            dl = _dead_letter(f"dl-{i:03d}", t, created_at=at + timedelta(microseconds=i // 2))
            await log.commit(
                Outcome(sensor="s", event_id=t.id, event_seq=t.seq or 0, dead_letter=dl)
            )
            ids.append(dl.id)
        everything = await log.dead_letters()
        assert [d.id for d in everything] == sorted(ids, reverse=True)  # newest first
        assert [d.id for d in await log.dead_letters(limit=4)] == sorted(ids, reverse=True)[:4]
        for limit in (1, 2, 4, 9):
            snapshot = [d.id for d in await log.dead_letters(sensor="s")]
            assert snapshot[-len(ids) :] == sorted(ids, reverse=True)
            seen: list[str] = []
            before: PageKey | None = None
            while True:
                rows = await log.dead_letters(sensor="s", limit=limit, before=before)
                seen += [d.id for d in rows]
                if len(rows) < limit:
                    break
                before = page_key(rows[-1].created_at, rows[-1].id)
                # a newer dead letter arriving between pages is not part of this walk
                [t] = await log.append([ev()])
                late = _dead_letter(f"late-{t.id}", t, error="late")
                await log.commit(
                    Outcome(sensor="s", event_id=t.id, event_seq=t.seq or 0, dead_letter=late)
                )
            assert seen == snapshot, limit
        # filters still apply with a cursor
        await log.request_replay("dl-004")
        key = page_key(everything[0].created_at, everything[0].id)
        got = await log.dead_letters(status="replay_requested", before=key, limit=10)
        assert [d.id for d in got] == ["dl-004"]

    # sensor ownership ---------------------------------------------------------------------
    @_check
    async def test_sensor_ownership_is_exclusive_and_moves_on_release(self, log: EventLog) -> None:
        assert await log.try_own("ship")
        assert await log.try_own("ship")  # confirming is idempotent
        if not self.shared_across_processes:
            # declared single-process log: it owns every sensor, always
            await log.release("ship")
            assert await log.try_own("ship") and await log.try_own("bill")
            assert await log.owners() == 1
            return
        other = await self._second()
        try:
            assert not await other.try_own("ship")
            assert await other.try_own("bill")  # ownership is per sensor
            assert not await log.try_own("bill")
            assert await log.owners() == (2 if self.counts_owners else 1)
            await log.release("ship")
            await log.release("ship")  # releasing twice is harmless
            assert await other.try_own("ship")
            assert not await log.try_own("ship")
        finally:
            await other.close()  # closing releases everything it owned
        assert await log.try_own("ship")
        assert await log.try_own("bill")
        assert await log.owners() == 1

    def test_sensor_ownership_is_freed_when_the_owner_is_killed(
        self, make_log: LogFactory, request: pytest.FixtureRequest
    ) -> None:
        if not self.shared_across_processes:
            pytest.skip("declared shared_across_processes = False: one process per log")
        url = str(request.getfixturevalue("log_url"))
        code = (
            "import asyncio, sys\n"
            "from herald.bus import open_event_log\n"
            "async def main():\n"
            "    log = open_event_log(sys.argv[1]); await log.start()\n"
            "    print(await log.try_own('ship'), flush=True)\n"
            "    await asyncio.sleep(600)\n"
            "asyncio.run(main())\n"
        )
        proc = subprocess.Popen(
            [sys.executable, "-c", code, url], stdout=subprocess.PIPE, text=True
        )
        try:
            run(self._killed_owner(make_log(), proc))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            if proc.stdout is not None:
                proc.stdout.close()

    async def _killed_owner(self, log: EventLog, proc: subprocess.Popen[str]) -> None:
        await log.start()
        try:
            assert proc.stdout is not None
            assert (await asyncio.to_thread(proc.stdout.readline)).strip() == "True"
            assert not await log.try_own("ship")
            os.kill(proc.pid, signal.SIGKILL)
            await asyncio.to_thread(proc.wait, 10)
            for _ in range(100):  # a database may end the dead client's session asynchronously
                if await log.try_own("ship"):
                    break
                await asyncio.sleep(0.1)
            else:
                pytest.fail("ownership was not freed after the owner was killed")
            if self.counts_owners:
                assert await log.owners() == 1
        finally:
            await log.close()

    # the job queue ------------------------------------------------------------------------
    @_check
    async def test_sensor_outcome_queues_jobs_with_requested_event(self, log: EventLog) -> None:
        [trigger] = await log.append([ev(correlationid="flow")])
        await log.register_sensor("s", "earliest")
        sp = spec(sensor="s")
        stored = await log.commit(
            Outcome(sensor="s", event_id=trigger.id, event_seq=1, jobs=[(sp, trigger)])
        )
        assert stored is not None
        [requested] = stored
        assert requested.type == "job.requested"
        assert requested.causationid == trigger.id and requested.correlationid == "flow"
        job = await log.get_job(sp.id)
        assert job is not None and job.status == "queued" and job.requested_event == requested.id
        assert [j.id for j in await log.jobs(status="queued")] == [sp.id]
        assert [j.id for j in await log.jobs(correlationid="flow")] == [sp.id]
        assert await log.get_job("nope") is None

    @_check
    async def test_job_lease_lifecycle_and_fencing(self, log: EventLog) -> None:
        cause = (await log.append([ev()]))[0]
        sp = spec(executor="local")
        await log.submit_job(sp, cause)
        assert await log.lease_job("w1", 30, ["inline"]) is None  # executor filter
        lease = await log.lease_job("w1", 30, ["local"])
        assert lease is not None and lease.job.id == sp.id and lease.job.attempt == 1
        assert lease.started_event.type == "job.started"
        assert await log.lease_job("w2", 30, ["local"]) is None  # no double lease
        job = await log.heartbeat(sp.id, lease.token, 30)
        assert job.status == "running"
        with pytest.raises(LeaseLost):
            await log.heartbeat(sp.id, "stale-token", 30)
        done = await log.finish_job(
            sp.id, lease.token, "succeeded", [ev("job.done.x")], result={"ok": 1}
        )
        assert done.status == "succeeded" and done.result == {"ok": 1}
        with pytest.raises(LeaseLost):  # a late result is fenced off
            await log.finish_job(sp.id, lease.token, "failed", [ev("late.x")], error="late")
        assert await log.read(0, types=["late.x"]) == []
        types = [e.type for e in await log.read(0)]
        assert types == ["t.created", "job.requested", "job.started", "job.done.x"]

    @_check
    async def test_concurrent_leases_hand_each_job_to_one_worker(self, log: EventLog) -> None:
        for _ in range(3):
            await log.submit_job(spec())
        leases = await asyncio.gather(*(log.lease_job(f"w{i}", 30, ["inline"]) for i in range(8)))
        got = [lease.job.id for lease in leases if lease is not None]
        assert len(got) == 3 and len(set(got)) == 3

    @_check
    async def test_expired_lease_is_requeued_and_old_lease_fenced(self, log: EventLog) -> None:
        cause = (await log.append([ev()]))[0]
        sp = spec(max_attempts=2)
        await log.submit_job(sp, cause)
        first = await log.lease_job("dead-worker", 0.05, ["inline"])
        assert first is not None
        await asyncio.sleep(0.1)
        second = await log.lease_job("w2", 30, ["inline"])
        assert second is not None and second.job.attempt == 2 and second.token != first.token
        with pytest.raises(LeaseLost):
            await log.finish_job(sp.id, first.token, "succeeded", [])
        failed = await log.read(0, types=["job.failed"])
        assert len(failed) == 1 and failed[0].data["will_retry"] is True
        await log.finish_job(sp.id, second.token, "succeeded", [])
        job = await log.get_job(sp.id)
        assert job is not None and job.status == "succeeded"

    @_check
    async def test_expired_lease_on_last_attempt_fails_the_job(self, log: EventLog) -> None:
        cause = (await log.append([ev()]))[0]
        sp = spec(max_attempts=1)
        await log.submit_job(sp, cause)
        assert await log.lease_job("w", 0.01, ["inline"]) is not None
        await asyncio.sleep(0.05)
        assert await log.lease_job("w", 30, ["inline"]) is None
        job = await log.get_job(sp.id)
        assert job is not None and job.status == "failed" and "lease expired" in (job.error or "")

    @_check
    async def test_retry_with_backoff_then_manual_retry(self, log: EventLog) -> None:
        cause = (await log.append([ev()]))[0]
        sp = spec(max_attempts=1)
        await log.submit_job(sp, cause)
        lease = await log.lease_job("w", 30, ["inline"])
        assert lease is not None
        later = datetime.now(UTC) + timedelta(hours=1)
        queued = await log.finish_job(sp.id, lease.token, "failed", [], error="x", retry_at=later)
        assert queued.status == "queued"
        assert await log.lease_job("w", 30, ["inline"]) is None  # not before retry_at
        with pytest.raises(Conflict):
            await log.retry_job(sp.id)  # only failed or cancelled jobs are retried

    @_check
    async def test_cancel_queued_and_running_jobs(self, log: EventLog) -> None:
        cause = (await log.append([ev()]))[0]
        a, b = spec(), spec()
        await log.submit_job(a, cause)
        cancelled = await log.cancel_job(a.id)
        assert cancelled.status == "cancelled"
        with pytest.raises(Conflict):
            await log.cancel_job(a.id)
        await log.submit_job(b, cause)
        lease = await log.lease_job("w", 30, ["inline"])
        assert lease is not None and lease.job.id == b.id
        flagged = await log.cancel_job(b.id)
        assert flagged.status == "running" and flagged.cancel_requested
        hb = await log.heartbeat(b.id, lease.token, 30)
        assert hb.cancel_requested
        done = await log.finish_job(b.id, lease.token, "cancelled", [])
        assert done.status == "cancelled"
        retried = await log.retry_job(b.id)
        assert retried.status == "queued" and not retried.cancel_requested
        with pytest.raises(NotFound):
            await log.cancel_job("nope")
        with pytest.raises(NotFound):
            await log.retry_job("nope")

    @_check
    async def test_job_logs_and_progress(self, log: EventLog) -> None:
        cause = (await log.append([ev()]))[0]
        sp = spec()
        await log.submit_job(sp, cause)
        lease = await log.lease_job("w", 30, ["inline"])
        assert lease is not None
        await log.append_logs(sp.id, [("stdout", "hello"), ("stderr", "warn")])
        await log.append_logs(sp.id, [("stdout", "bye")])
        lines = await log.logs(sp.id)
        assert [(ln.seq, ln.stream, ln.line) for ln in lines] == [
            (1, "stdout", "hello"),
            (2, "stderr", "warn"),
            (3, "stdout", "bye"),
        ]
        assert [ln.line for ln in await log.logs(sp.id, after=2)] == ["bye"]
        prog = ev(
            "job.progressed",
            data={"job_id": sp.id, "name": sp.name, "progress": 0.5, "message": "half"},
        )
        job = await log.heartbeat(sp.id, lease.token, 30, events=[prog])
        assert job.progress == 0.5 and job.progress_message == "half"
        with pytest.raises(NotFound):
            await log.logs("nope")

    # keyset paging of jobs ----------------------------------------------------------------
    @_check
    async def test_jobs_keyset_pages_return_each_job_once_in_order(self, log: EventLog) -> None:
        ids = [(await log.submit_job(spec())).id for _ in range(11)]
        everything = await log.jobs(limit=1000)
        assert sorted(j.id for j in everything) == sorted(ids)
        newest_first = [j.id for j in everything]
        keys = [page_key(j.created_at, j.id) for j in everything]
        assert keys == sorted(keys, reverse=True)  # a strict total order, ties broken by id
        assert len(set(keys)) == len(keys)
        for limit in (1, 3, 4, 11):
            assert await _walk_jobs(log, limit) == newest_first, limit
        # the filter and the cursor combine; a cursor past the oldest row gives an empty page
        assert await _walk_jobs(log, 2, name="work") == newest_first
        assert await log.jobs(before=keys[-1]) == []

    @_check
    async def test_jobs_paging_ignores_jobs_inserted_between_pages(self, log: EventLog) -> None:
        for _ in range(9):
            await log.submit_job(spec())
        before_walk = [j.id for j in await log.jobs(limit=1000)]
        walked = await _walk_jobs(log, 2, between=2)
        assert walked == before_walk  # no duplicates, no skips, no late jobs mid-walk
        late = await log.jobs(name="late", limit=1000)
        assert len(late) >= 2 * (len(before_walk) // 2)

    @_check
    async def test_jobs_paging_breaks_created_at_ties_by_id(self, log: EventLog) -> None:
        # rows with the same timestamp must still page without loss: the id decides among them
        await log.submit_job(spec())
        [only] = await log.jobs()
        us, _ = page_key(only.created_at, only.id)
        assert await log.jobs(before=(us, only.id)) == []
        assert [j.id for j in await log.jobs(before=(us, only.id + "z"))] == [only.id]
        assert [j.id for j in await log.jobs(before=(us + 1, ""))] == [only.id]


def _dead_letter(
    dl_id: str,
    trigger: Envelope,
    *,
    error: str = "boom",
    attempts: int = 1,
    created_at: datetime | None = None,
) -> DeadLetter:
    return DeadLetter(
        id=dl_id,
        sensor="s",
        event_id=trigger.id,
        event_seq=trigger.seq or 0,
        event_type=trigger.type,
        error=error,
        attempts=attempts,
        created_at=created_at or datetime.now(UTC),
    )


async def _walk_jobs(log: EventLog, limit: int, between: int = 0, **filters: Any) -> list[str]:
    """Every job id, page by page via ``before``; ``between`` new jobs are submitted after each
    page (they are newer than any cursor, so they must not show up or shift later pages)."""
    seen: list[str] = []
    before: PageKey | None = None
    while True:
        rows = await log.jobs(limit=limit, before=before, **filters)
        seen += [j.id for j in rows]
        if len(rows) < limit:
            return seen
        before = page_key(rows[-1].created_at, rows[-1].id)
        for _ in range(between):
            await log.submit_job(spec("late"))
