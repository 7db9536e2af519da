"""Outbox relay: how far the committed event log has been published to the bus (NATS).

The event table is the outbox (appends are serialised, so sequence order is commit order);
this table keeps, per JetStream stream, the last sequence number the bus acknowledged.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "herald_outbox_relay",
        sa.Column("stream", sa.String(128), primary_key=True),
        sa.Column("published_seq", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("herald_outbox_relay")
