"""Evaluation results.

Revision ID: 0002_eval_results
Revises: 0001_registry
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from largeforge.db import UTCDateTime

revision = "0002_eval_results"
down_revision = "0001_registry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "eval_results",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("suite_name", sa.String(128), nullable=False),
        sa.Column("suite_digest", sa.String(64), nullable=False),
        sa.Column("target", sa.String(512), nullable=False),
        sa.Column("target_kind", sa.String(16), nullable=False),
        sa.Column(
            "version_id",
            sa.String(32),
            sa.ForeignKey("model_versions.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("cases", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_eval_results_suite_name", "eval_results", ["suite_name"])
    op.create_index("ix_eval_results_suite_digest", "eval_results", ["suite_digest"])
    op.create_index("ix_eval_results_target", "eval_results", ["target"])
    op.create_index("ix_eval_results_version_id", "eval_results", ["version_id"])
    op.create_index("ix_eval_results_created_at", "eval_results", ["created_at"])


def downgrade() -> None:
    op.drop_table("eval_results")
