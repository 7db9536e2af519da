"""SQL tables of the event log, sensor state, dead letters and jobs.

Times are stored as integer microseconds since the epoch (UTC) so that SQLite and PostgreSQL
compare and index them the same way. Alembic migrations in ``migrations/`` create these tables;
``tests/unit/test_migrations.py`` checks the two agree.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

events = Table(
    "herald_events",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    ),
    Column("id", String(128), nullable=False, unique=True),
    Column("type", String(256), nullable=False),
    Column("source", String(512), nullable=False),
    Column("subject", String(512)),
    Column("time_us", BigInteger, nullable=False),
    Column("correlationid", String(128), nullable=False),
    Column("causationid", String(128)),
    Column("schemaversion", Integer, nullable=False),
    Column("datacontenttype", String(128), nullable=False),
    Column("dataschema", String(512)),
    Column("data", Text, nullable=False),
    Index("ix_herald_events_type_seq", "type", "seq"),
    Index("ix_herald_events_subject", "subject"),
    Index("ix_herald_events_correlationid", "correlationid"),
    Index("ix_herald_events_causationid", "causationid"),
    Index("ix_herald_events_time_us", "time_us"),
)

sensors = Table(
    "herald_sensors",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("cursor", BigInteger, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("processed", BigInteger, nullable=False),
    Column("failed", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
)

processed = Table(
    "herald_processed",
    metadata,
    Column("sensor", String(256), primary_key=True),
    Column("event_id", String(128), primary_key=True),
    Column("committed_us", BigInteger, nullable=False),
)

dead_letters = Table(
    "herald_dead_letters",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("sensor", String(256), nullable=False),
    Column("event_id", String(128), nullable=False),
    Column("event_seq", BigInteger, nullable=False),
    Column("event_type", String(256), nullable=False),
    Column("error", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("status", String(32), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("replayed_us", BigInteger),
    Index("ix_herald_dead_letters_sensor_status", "sensor", "status"),
)

jobs = Table(
    "herald_jobs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("params", Text, nullable=False),
    Column("executor", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Column("correlationid", String(128), nullable=False),
    Column("causationid", String(128)),
    Column("sensor", String(256)),
    Column("timeout_s", Float),
    Column("requested_event", String(128)),
    Column("started_event", String(128)),
    Column("worker", String(256)),
    Column("lease_token", String(64)),
    Column("lease_expires_us", BigInteger),
    Column("available_us", BigInteger),
    Column("started_us", BigInteger),
    Column("finished_us", BigInteger),
    Column("progress", Float),
    Column("progress_message", Text),
    Column("result", Text),
    Column("error", Text),
    Column("cancel_requested", Boolean, nullable=False),
    Index("ix_herald_jobs_status_available", "status", "available_us"),
    Index("ix_herald_jobs_correlationid", "correlationid"),
    Index("ix_herald_jobs_created", "created_us"),
)

job_logs = Table(
    "herald_job_logs",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("time_us", BigInteger, nullable=False),
    Column("stream", String(16), nullable=False),
    Column("line", Text, nullable=False),
)
