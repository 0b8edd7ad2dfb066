"""Run heartbeats: when a run's process last said it was alive, and which process (pid, host) that is.

A RUNNING run whose heartbeat is older than the heartbeat timeout has lost its process (killed with
``kill -9``, out of memory, a lost machine): it shows as LOST, and ``shipyard gc --stale`` ends it KILLED.
Runs from before this revision have no heartbeat (NULL) and are never judged lost.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("heartbeat_at", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("pid", sa.Integer, nullable=True))
        batch.add_column(sa.Column("host", sa.String(256), nullable=True))
    op.create_index("ix_runs_status_heartbeat", "runs", ["status", "heartbeat_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_status_heartbeat", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("host")
        batch.drop_column("pid")
        batch.drop_column("heartbeat_at")
