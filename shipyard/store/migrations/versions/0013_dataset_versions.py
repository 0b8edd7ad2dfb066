"""Dataset versions: named datasets, their numbered immutable snapshots and each snapshot's manifest (path,
size, sha256 per file; the files are content-addressed blobs in the artifact store).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("dataset_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("last_version", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "dataset_id",
            sa.String(32),
            sa.ForeignKey("datasets.dataset_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("num_files", sa.Integer, nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("tags_json", sa.Text, nullable=False, server_default="{}"),
        sa.Column("created_by", sa.String(256), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_dataset_version"),
    )
    op.create_index("ix_dataset_versions_sha", "dataset_versions", ["dataset_id", "sha256"])
    op.create_table(
        "dataset_files",
        sa.Column(
            "version_pk",
            sa.Integer,
            sa.ForeignKey("dataset_versions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("path", sa.Text, primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
    )
    op.create_index("ix_dataset_files_sha", "dataset_files", ["sha256"])


def downgrade() -> None:
    op.drop_index("ix_dataset_files_sha", table_name="dataset_files")
    op.drop_table("dataset_files")
    op.drop_index("ix_dataset_versions_sha", table_name="dataset_versions")
    op.drop_table("dataset_versions")
    op.drop_table("datasets")
