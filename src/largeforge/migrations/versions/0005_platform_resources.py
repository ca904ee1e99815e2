"""Project ownership of datasets and registered models.

Revision ID: 0005_platform_resources
Revises: 0004_platform_jobs
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from largeforge.db import UTCDateTime

revision = "0005_platform_resources"
down_revision = "0004_platform_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "project_dataset_versions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "project_id", sa.String(32), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(32), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("project_id", "name", "number", name="uq_project_dataset_versions_number"),
        sa.UniqueConstraint("project_id", "name", "version_id", name="uq_project_dataset_versions_version"),
    )
    op.create_index("ix_project_dataset_versions_project_id", "project_dataset_versions", ["project_id"])
    op.create_index("ix_project_dataset_versions_version_id", "project_dataset_versions", ["version_id"])
    op.create_table(
        "project_models",
        sa.Column("registry_name", sa.String(128), primary_key=True),
        sa.Column(
            "project_id", sa.String(32), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_project_models_project_id", "project_models", ["project_id"])


def downgrade() -> None:
    op.drop_table("project_models")
    op.drop_table("project_dataset_versions")
