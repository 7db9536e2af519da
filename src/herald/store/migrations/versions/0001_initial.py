"""Event log, sensors, processed (dedupe), dead letters, jobs and job logs.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "herald_events",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=False),
        sa.Column("id", sa.String(128), nullable=False, unique=True),
        sa.Column("type", sa.String(256), nullable=False),
        sa.Column("source", sa.String(512), nullable=False),
        sa.Column("subject", sa.String(512)),
        sa.Column("time_us", sa.BigInteger, nullable=False),
        sa.Column("correlationid", sa.String(128), nullable=False),
        sa.Column("causationid", sa.String(128)),
        sa.Column("schemaversion", sa.Integer, nullable=False),
        sa.Column("datacontenttype", sa.String(128), nullable=False),
        sa.Column("dataschema", sa.String(512)),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_index("ix_herald_events_type_seq", "herald_events", ["type", "seq"])
    op.create_index("ix_herald_events_subject", "herald_events", ["subject"])
    op.create_index("ix_herald_events_correlationid", "herald_events", ["correlationid"])
    op.create_index("ix_herald_events_causationid", "herald_events", ["causationid"])
    op.create_index("ix_herald_events_time_us", "herald_events", ["time_us"])

    op.create_table(
        "herald_sensors",
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("cursor", sa.BigInteger, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("processed", sa.BigInteger, nullable=False),
        sa.Column("failed", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "herald_processed",
        sa.Column("sensor", sa.String(256), primary_key=True),
        sa.Column("event_id", sa.String(128), primary_key=True),
        sa.Column("committed_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "herald_dead_letters",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("sensor", sa.String(256), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("event_seq", sa.BigInteger, nullable=False),
        sa.Column("event_type", sa.String(256), nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("replayed_us", sa.BigInteger),
    )
    op.create_index(
        "ix_herald_dead_letters_sensor_status", "herald_dead_letters", ["sensor", "status"]
    )
    op.create_table(
        "herald_jobs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("executor", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
        sa.Column("correlationid", sa.String(128), nullable=False),
        sa.Column("causationid", sa.String(128)),
        sa.Column("sensor", sa.String(256)),
        sa.Column("timeout_s", sa.Float),
        sa.Column("requested_event", sa.String(128)),
        sa.Column("started_event", sa.String(128)),
        sa.Column("worker", sa.String(256)),
        sa.Column("lease_token", sa.String(64)),
        sa.Column("lease_expires_us", sa.BigInteger),
        sa.Column("available_us", sa.BigInteger),
        sa.Column("started_us", sa.BigInteger),
        sa.Column("finished_us", sa.BigInteger),
        sa.Column("progress", sa.Float),
        sa.Column("progress_message", sa.Text),
        sa.Column("result", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
    )
    op.create_index("ix_herald_jobs_status_available", "herald_jobs", ["status", "available_us"])
    op.create_index("ix_herald_jobs_correlationid", "herald_jobs", ["correlationid"])
    op.create_index("ix_herald_jobs_created", "herald_jobs", ["created_us"])
    op.create_table(
        "herald_job_logs",
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("time_us", sa.BigInteger, nullable=False),
        sa.Column("stream", sa.String(16), nullable=False),
        sa.Column("line", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "herald_job_logs",
        "herald_jobs",
        "herald_dead_letters",
        "herald_processed",
        "herald_sensors",
        "herald_events",
    ):
        op.drop_table(table)
