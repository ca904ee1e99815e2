"""Deployments (managed serving processes) and usage records.

Revision ID: 0006_platform_deployments
Revises: 0005_platform_resources
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

from largeforge.db import UTCDateTime  # noqa: F401

revision = "0006_platform_deployments"
down_revision = "0005_platform_resources"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
