"""Rows of the SQL event log's tables and the records they hold (events, jobs, sensors, dead
letters): conversions both ways, and the keyset condition of the paged listings."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, or_
from sqlalchemy.engine import Row

from herald.bus.base import DeadLetter, JobRecord, PageKey, SensorState
from herald.messages.envelope import Envelope


def to_us(t: datetime | None) -> int | None:
    if t is None:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp() * 1_000_000)


def from_us(us: int | None) -> datetime | None:
    if us is None:
        return None
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


def now_us() -> int:
    return time.time_ns() // 1000


def event_row(e: Envelope, seq: int) -> dict[str, Any]:
    return {
        "seq": seq,
        "id": e.id,
        "type": e.type,
        "source": e.source,
        "subject": e.subject,
        "time_us": to_us(e.time),
        "correlationid": e.correlationid,
        "causationid": e.causationid,
        "schemaversion": e.schemaversion,
        "datacontenttype": e.datacontenttype,
        "dataschema": e.dataschema,
        "data": json.dumps(e.data, separators=(",", ":")),
    }


def envelope_of(r: Row[Any]) -> Envelope:
    return Envelope.model_construct(
        specversion="1.0",
        id=r.id,
        source=r.source,
        type=r.type,
        subject=r.subject,
        time=from_us(r.time_us) or datetime.now(UTC),
        datacontenttype=r.datacontenttype,
        dataschema=r.dataschema,
        correlationid=r.correlationid,
        causationid=r.causationid,
        schemaversion=r.schemaversion,
        seq=r.seq,
        data=json.loads(r.data),
    )


_JOB_TIMES = {
    "created_at": "created_us",
    "updated_at": "updated_us",
    "lease_expires_at": "lease_expires_us",
    "available_at": "available_us",
    "started_at": "started_us",
    "finished_at": "finished_us",
}


def job_row(j: JobRecord) -> dict[str, Any]:
    row = dataclasses.asdict(j)
    for attr, col in _JOB_TIMES.items():
        row[col] = to_us(row.pop(attr))
    row["params"] = json.dumps(j.params)
    row["result"] = None if j.result is None else json.dumps(j.result)
    return row


def job_of(r: Row[Any]) -> JobRecord:
    m = dict(r._mapping)
    for attr, col in _JOB_TIMES.items():
        m[attr] = from_us(m.pop(col))
    m["params"] = json.loads(m["params"])
    m["result"] = None if m["result"] is None else json.loads(m["result"])
    return JobRecord(**m)


def sensor_of(r: Row[Any]) -> SensorState:
    return SensorState(
        name=r.name,
        cursor=r.cursor,
        enabled=bool(r.enabled),
        processed=r.processed,
        failed=r.failed,
        updated_at=from_us(r.updated_us) or datetime.now(UTC),
    )


def keyset_before(created: Any, row_id: Any, key: PageKey) -> Any:
    """Rows after ``key`` in (created_us, id) descending order — the keyset condition."""
    us, kid = key
    # the redundant ``created <= us`` is what lets the created_us index start the scan at the
    # cursor (an OR alone makes the database walk every newer row first: O(depth), not O(page))
    return and_(created <= us, or_(created < us, row_id < kid))


def dead_letter_of(r: Row[Any]) -> DeadLetter:
    return DeadLetter(
        id=r.id,
        sensor=r.sensor,
        event_id=r.event_id,
        event_seq=r.event_seq,
        event_type=r.event_type,
        error=r.error,
        attempts=r.attempts,
        status=r.status,
        created_at=from_us(r.created_us) or datetime.now(UTC),
        replayed_at=from_us(r.replayed_us),
    )
