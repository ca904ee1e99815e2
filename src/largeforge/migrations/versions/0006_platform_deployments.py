"""Deployments (managed serving processes), usage records, and registry version pins.

Revision ID: 0006_platform_deployments
Revises: 0005_platform_resources
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from largeforge.db import UTCDateTime

revision = "0006_platform_deployments"
down_revision = "0005_platform_resources"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The registry's own table, created here because deployments are its first holders.
    op.create_table(
        "version_pins",
        sa.Column("version_id", sa.String(32), sa.ForeignKey("model_versions.id"), primary_key=True),
        sa.Column("holder", sa.String(200), primary_key=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_version_pins_holder", "version_pins", ["holder"])
    op.create_table(
        "deployments",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "project_id", sa.String(32), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("model_ref", sa.String(300), nullable=False),
        sa.Column("version_ref", sa.String(300), nullable=False),
        sa.Column("served_model_name", sa.String(128), nullable=False),
        sa.Column("adapters", sa.JSON(), nullable=False),
        sa.Column("engine", sa.String(16), nullable=False),
        sa.Column("replicas", sa.Integer(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("desired_state", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("internal_key", sa.String(64), nullable=False),
        sa.Column("supervisor_id", sa.String(64), nullable=True),
        sa.Column("supervisor_seen_at", UTCDateTime(), nullable=True),
        sa.Column("created_by", sa.String(32), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_deployments_project_id", "deployments", ["project_id"])
    op.create_index("ix_deployments_supervisor_id", "deployments", ["supervisor_id"])
    op.create_table(
        "deployment_replicas",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "deployment_id",
            sa.String(32),
            sa.ForeignKey("deployments.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("endpoint", sa.String(200), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("restarts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_deployment_replicas_deployment_id", "deployment_replicas", ["deployment_id"])
    op.create_table(
        "usage_records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("time", UTCDateTime(), nullable=False),
        sa.Column(
            "project_id", sa.String(32), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("deployment_id", sa.String(32), nullable=True),
        sa.Column("api_key_id", sa.String(32), nullable=True),
        sa.Column("user_id", sa.String(32), nullable=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("total_tokens", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("streamed", sa.Boolean(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
    )
    for column in ("time", "project_id", "deployment_id", "api_key_id"):
        op.create_index(f"ix_usage_records_{column}", "usage_records", [column])


def downgrade() -> None:
    for table in ("usage_records", "deployment_replicas", "deployments", "version_pins"):
        op.drop_table(table)
