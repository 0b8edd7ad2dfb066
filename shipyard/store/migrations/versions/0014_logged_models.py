"""Logged models (MLflow 3's LoggedModel): a model logged from a run, with its own id, files, status, params
and tags, before (and whether or not) it is registered; and which runs output which logged models.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "logged_models",
        sa.Column("model_id", sa.String(64), primary_key=True),
        sa.Column("experiment_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("source_run_id", sa.String(32), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("model_type", sa.String(256), nullable=True),
        sa.Column("artifact_location", sa.Text, nullable=False),
        sa.Column("params_json", sa.Text, nullable=False, server_default="{}"),
        sa.Column("tags_json", sa.Text, nullable=False, server_default="{}"),
        sa.Column("lifecycle_stage", sa.String(16), nullable=False, server_default="active"),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_logged_models_experiment_name", "logged_models", ["experiment_id", "name"])
    op.create_index("ix_logged_models_source_run", "logged_models", ["source_run_id"])
    op.create_table(
        "logged_model_outputs",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column(
            "model_id",
            sa.String(64),
            sa.ForeignKey("logged_models.model_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("step", sa.BigInteger, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("logged_model_outputs")
    op.drop_index("ix_logged_models_source_run", table_name="logged_models")
    op.drop_index("ix_logged_models_experiment_name", table_name="logged_models")
    op.drop_table("logged_models")
