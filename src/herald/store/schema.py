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
    UniqueConstraint,
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

# model lifecycle (migration 0002): data set versions, models, aliases, experiment runs ---------
datasets = Table(
    "herald_datasets",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("fingerprint", String(128), nullable=False),
    Column("artifact_uri", Text, nullable=False),
    Column("format", String(32), nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("splits", Text, nullable=False),
    Column("stats", Text, nullable=False),
    Column("pii", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("tags", Text, nullable=False),
    Column("lineage", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    UniqueConstraint("name", "fingerprint", name="uq_herald_datasets_fingerprint"),
)

model_versions = Table(
    "herald_model_versions",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("artifact_uri", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("base_model", Text),
    Column("dataset", Text),
    Column("run_id", String(128)),
    Column("job_id", String(128)),
    Column("config", Text, nullable=False),
    Column("metrics", Text, nullable=False),
    Column("chat_template", Text),
    Column("tags", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("lineage", Text, nullable=False),
    Column("idempotency_key", String(256), unique=True),
    Column("created_us", BigInteger, nullable=False),
    Column("archived_us", BigInteger),
    Index("ix_herald_model_versions_run_id", "run_id"),
)

model_aliases = Table(
    "herald_model_aliases",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
)

alias_history = Table(
    "herald_alias_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("alias", String(64), nullable=False),
    Column("version", Integer),
    Column("previous_version", Integer),
    Column("action", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("idempotency_key", String(256), unique=True),
    Column("time_us", BigInteger, nullable=False),
    Index("ix_herald_alias_history_name_alias", "name", "alias"),
)

runs = Table(
    "herald_runs",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("job_id", String(128)),
    Column("status", String(16), nullable=False),
    Column("params", Text, nullable=False),
    Column("tags", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("finished_us", BigInteger),
    Index("ix_herald_runs_created", "created_us"),
)

run_metrics = Table(
    "herald_run_metrics",
    metadata,
    Column("run_id", String(128), primary_key=True),
    Column("key", String(256), primary_key=True),
    Column("step", BigInteger, primary_key=True, autoincrement=False),
    Column("value", Float, nullable=False),
    Column("time_us", BigInteger, nullable=False),
)

run_artifacts = Table(
    "herald_run_artifacts",
    metadata,
    Column("run_id", String(128), primary_key=True),
    Column("name", String(256), primary_key=True),
    Column("uri", Text, nullable=False),
    Column("time_us", BigInteger, nullable=False),
)

# bus outbox relay (migration 0003): the last event sequence the bus (NATS) acknowledged --------
outbox_relay = Table(
    "herald_outbox_relay",
    metadata,
    Column("stream", String(128), primary_key=True),
    Column("published_seq", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
)
