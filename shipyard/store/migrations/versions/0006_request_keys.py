"""Idempotency keys: a write a client retries (its answer lost to a dropped connection or a killed server
worker) is stored once.

A metric batch, a run's end and a run's creation carry a key; the store records it in the same transaction
as the write, so a retry with the same key finds it and stores nothing twice (a created run's id is kept as
``result`` so the retry answers with the same run). Keys older than a day are pruned.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "request_keys",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("result", sa.String(64), nullable=True),
    )
    op.create_index("ix_request_keys_created", "request_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_request_keys_created", table_name="request_keys")
    op.drop_table("request_keys")
