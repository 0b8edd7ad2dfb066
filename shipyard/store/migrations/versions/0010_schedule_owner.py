"""Pipeline schedules record who created them, and their runs are recorded as that user's.

A platform server runs due schedules itself: without an owner, their pipeline runs were recorded as the
server's operating-system user, not the signed-in user who set them up. Schedules from before keep no owner
(their runs stay the scheduler's).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pipeline_schedules") as batch:
        batch.add_column(sa.Column("created_by", sa.String(256), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pipeline_schedules") as batch:
        batch.drop_column("created_by")
