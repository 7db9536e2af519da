"""Model lifecycle: data set versions, model versions, aliases and their history, runs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "herald_datasets",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("fingerprint", sa.String(128), nullable=False),
        sa.Column("artifact_uri", sa.Text, nullable=False),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("splits", sa.Text, nullable=False),
        sa.Column("stats", sa.Text, nullable=False),
        sa.Column("pii", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("lineage", sa.Text, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("name", "fingerprint", name="uq_herald_datasets_fingerprint"),
    )
    op.create_table(
        "herald_model_versions",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("artifact_uri", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("base_model", sa.Text),
        sa.Column("dataset", sa.Text),
        sa.Column("run_id", sa.String(128)),
        sa.Column("job_id", sa.String(128)),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("metrics", sa.Text, nullable=False),
        sa.Column("chat_template", sa.Text),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("lineage", sa.Text, nullable=False),
        sa.Column("idempotency_key", sa.String(256), unique=True),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("archived_us", sa.BigInteger),
    )
    op.create_index("ix_herald_model_versions_run_id", "herald_model_versions", ["run_id"])
    op.create_table(
        "herald_model_aliases",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("alias", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "herald_alias_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer),
        sa.Column("previous_version", sa.Integer),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("idempotency_key", sa.String(256), unique=True),
        sa.Column("time_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_herald_alias_history_name_alias", "herald_alias_history", ["name", "alias"])
    op.create_table(
        "herald_runs",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("job_id", sa.String(128)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("finished_us", sa.BigInteger),
    )
    op.create_index("ix_herald_runs_created", "herald_runs", ["created_us"])
    op.create_table(
        "herald_run_metrics",
        sa.Column("run_id", sa.String(128), primary_key=True),
        sa.Column("key", sa.String(256), primary_key=True),
        sa.Column("step", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("time_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "herald_run_artifacts",
        sa.Column("run_id", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("uri", sa.Text, nullable=False),
        sa.Column("time_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "herald_run_artifacts",
        "herald_run_metrics",
        "herald_runs",
        "herald_alias_history",
        "herald_model_aliases",
        "herald_model_versions",
        "herald_datasets",
    ):
        op.drop_table(table)
